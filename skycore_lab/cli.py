"""``skycore-lab``: the notebook jobs from a shell.

Commands
--------
``demo``      run a 3-arm DDM experiment on the sandbox and write a report
``sandbox``   run the local Skycore API sandbox until Ctrl-C
``listen``    run a postback receiver until Ctrl-C
``send``      send a saved MMS to one or many numbers (a manifest CSV for many)
``report``    turn postback logs (and a manifest) into a report file

Exit status: 0 on success, 1 when skycore-lab refused or failed (the reason
is printed on stderr, never with an API key in it), 2 on a usage error.
Every command checks the packages and output paths it will need before it
does anything (:func:`check_command`): ``report --out x.parquet`` without
pyarrow fails at once, not after reading the logs.
The API key for ``send`` comes from ``SKYCORE_API_KEY`` (a ``--api-key``
option would leave it in the shell history and the process list).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from . import __version__
from .exceptions import SkycoreError, SkycoreValidationError

__all__ = ["main", "check_command"]


def _output_folder(path: str | os.PathLike, option: str) -> None:
    folder = Path(path).parent
    if str(folder) and not folder.is_dir():
        raise SkycoreValidationError(option, f"the folder of {str(path)!r} does not exist")


def check_command(args) -> None:
    """Check, before any work, every package and output path the command ``args`` will need.

    Raises
    ------
    ImportError
        A package a requested output needs is missing; the message names the extra.
    SkycoreValidationError
        An output format that does not exist, or an output folder that does not.
    """
    if args.command == "demo":
        from .demo import check_demo_outputs

        check_demo_outputs()
    elif args.command == "report":
        from .report.export import check_report_path

        check_report_path(args.out)
        _output_folder(args.out, "--out")
        if args.manifest:
            from .manifest import check_manifest_path

            check_manifest_path(args.manifest)
    elif args.command == "send" and (args.out or args.to_file or len(args.to or ()) > 1):
        from .manifest import check_manifest_path

        check_manifest_path(args.out or _DEFAULT_MANIFEST)
        _output_folder(args.out or _DEFAULT_MANIFEST, "--out")


_DEFAULT_MANIFEST = "manifest.csv"


def _demo(args) -> int:
    from .demo import run_demo

    outcome = run_demo(args.out, numbers=args.numbers, seed=args.seed, time_scale=args.time_scale,
                       progress=not args.quiet)
    print(outcome.table().to_string())
    print()
    print(outcome.result.summary())
    print()
    print(f"{outcome.postbacks:,} postbacks received in {outcome.seconds:.0f} s. Files:")
    for path in outcome.files.values():
        print(f"  {path}")
    return 0


def _sandbox(args) -> int:
    from .sandbox import Sandbox

    sandbox = Sandbox(seed=args.seed, time_scale=args.time_scale, postback_url=args.postback_url,
                      scenario=args.scenario, port=args.port, host=args.host)
    sandbox.start()
    print(f"Skycore sandbox listening: {sandbox.url}", flush=True)
    print(f"API key (sandbox only): {sandbox.api_key}")
    print(f"shortcodes: {', '.join(map(str, sandbox.shortcodes))}; MMS ids: {', '.join(map(str, sandbox.mms_ids))}")
    print(f"postbacks to: {args.postback_url or '(none: set --postback-url)'}. Ctrl-C stops.", flush=True)
    sandbox.serve_forever()
    return 0


def _listen(args) -> int:
    from .postbacks.receiver import PostbackReceiver

    receiver = PostbackReceiver(args.log, host=args.host, port=args.port, token=args.token,
                                rotate=args.rotate, max_bytes=args.max_bytes, max_body=args.max_body,
                                rejects_log=args.rejects_log, group_commit=args.group_commit,
                                sync_interval=args.sync_interval, sync_every=args.sync_every)
    receiver.start()
    if args.url_file:  # for scripts and tests: the URL appears whole or not at all
        tmp = args.url_file + ".tmp"
        Path(tmp).write_text(receiver.url, encoding="utf-8")
        os.replace(tmp, args.url_file)
    if not args.quiet:
        print(f"postback receiver listening: {receiver.url}", flush=True)
        print(f"log: {args.log}. Ctrl-C stops.", flush=True)
    receiver.serve_forever()
    return 0


def _read_numbers(args) -> list[str]:
    numbers = list(args.to or [])
    if args.to_file:
        text = Path(args.to_file).read_text(encoding="utf-8")
        numbers += [line.split(",")[0].strip() for line in text.splitlines() if line.strip()
                    and not line.lstrip().startswith("#")]
    if not numbers:
        raise SystemExit("skycore-lab send: give --to NUMBER (repeatable) or --to-file FILE")
    return numbers


def _send(args) -> int:
    from .client import DDM, SkycoreClient

    ddm = None
    if args.ddm_text is not None:
        ddm = DDM(args.ddm_text, title=args.ddm_title, timeout_min=args.ddm_timeout, force=args.ddm_force)
    kwargs = dict(campaign_ref=args.campaign_ref, ddm=ddm, custom_subject=args.subject)
    numbers = _read_numbers(args)
    with SkycoreClient(base_url=args.url, method=args.method) as client:
        if len(numbers) == 1 and not args.out:
            result = client.send_saved_mms(args.mms_id, numbers[0], args.sender, **kwargs)
            print(f"{result.status}: tracking id {result.tracking_id} to {result.to} from {result.sender}")
            return 0
        manifest = client.send_batch(numbers, args.mms_id, args.sender, progress=not args.quiet,
                                     max_rate_per_s=args.rate, **kwargs)
    from .manifest import write_manifest

    out = write_manifest(manifest, args.out or _DEFAULT_MANIFEST)
    counts = manifest["status"].value_counts().to_dict()
    print(f"{len(manifest)} sends: " + ", ".join(f"{n} {status}" for status, n in counts.items()) + f"; manifest {out}")
    return 0 if counts.get("Success", 0) == len(manifest) else 1


def _report(args) -> int:
    from . import columns as col
    from .frames import deliveries
    from .manifest import read_manifest
    from .postbacks import read_postbacks
    from .provenance import collect_provenance
    from .report import export_report

    events = read_postbacks(args.logs)
    manifest = read_manifest(args.manifest) if args.manifest else None
    frame = deliveries(events, manifest)
    by = tuple(name for name in (col.CARRIER, col.ARM) if name in frame.columns)
    # the logs and the manifest (hashed), the counts and the design go into the report; export_report
    # adds the parameters it computed with
    provenance = collect_provenance(frame, events=events, manifest=manifest)
    export_report(frame, args.out, events=events, title=args.title, by=by, provenance=provenance)
    print(f"{len(frame):,} sends from {len(events):,} postbacks → {args.out}")
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="skycore-lab", description="Test and measure MMS delivery via Skycore.")
    parser.add_argument("--version", action="version", version=f"skycore-lab {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log what happens (API keys are masked)")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = commands.add_parser("demo", help="3-arm DDM experiment on the sandbox, with a report")
    demo.add_argument("--out", default="skycore-demo", help="output directory (default ./skycore-demo)")
    demo.add_argument("--numbers", type=int, default=3000, help="simulated recipients (default 3000)")
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--time-scale", type=float, default=720.0, help="simulated seconds per real second")
    demo.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    demo.set_defaults(run=_demo)

    sandbox = commands.add_parser("sandbox", help="run the local Skycore API sandbox")
    sandbox.add_argument("--host", default="127.0.0.1")
    sandbox.add_argument("--port", type=int, default=0, help="0 picks a free port")
    sandbox.add_argument("--postback-url", default=None)
    sandbox.add_argument("--time-scale", type=float, default=60.0)
    sandbox.add_argument("--seed", type=int, default=0)
    sandbox.add_argument("--scenario", default=None, help="scenario JSON file")
    sandbox.set_defaults(run=_sandbox)

    listen = commands.add_parser("listen", help="receive postbacks into a log")
    listen.add_argument("--log", default="postbacks.log")
    listen.add_argument("--host", default="127.0.0.1")
    listen.add_argument("--port", type=int, default=0)
    listen.add_argument("--token", default=None, help="secret path token (/postbacks/<token>)")
    listen.add_argument("--rotate", choices=("size", "daily"), default=None)
    listen.add_argument("--max-bytes", type=int, default=100 * 1024 * 1024, help="rotate size (with --rotate size)")
    listen.add_argument("--max-body", type=int, default=64 * 1024, help="larger postbacks get 413")
    listen.add_argument("--rejects-log", default=None, help="where non-postback bodies go")
    listen.add_argument("--no-group-commit", dest="group_commit", action="store_false",
                        help="one write() per postback instead of grouping concurrent ones")
    listen.add_argument("--sync-interval", type=float, default=0.1, help="fdatasync at most this many seconds late")
    listen.add_argument("--sync-every", type=int, default=100, help="fdatasync at most this many records late")
    listen.add_argument("--url-file", help="write the postback URL to this file once listening")
    listen.add_argument("-q", "--quiet", action="store_true", help="print nothing")
    listen.set_defaults(run=_listen)

    send = commands.add_parser("send", help="send a saved MMS (API key from SKYCORE_API_KEY)")
    send.add_argument("--mms-id", required=True)
    send.add_argument("--sender", required=True, help="shortcode")
    send.add_argument("--to", action="append", help="recipient, international digits (repeatable)")
    send.add_argument("--to-file", help="file with one number per line (first CSV field)")
    send.add_argument("--url", default=None, help="API URL (default SKYCORE_API_URL or production)")
    send.add_argument("--method", choices=("post", "get"), default="post")
    send.add_argument("--campaign-ref")
    send.add_argument("--subject", help="custom subject")
    send.add_argument("--ddm-text")
    send.add_argument("--ddm-title")
    send.add_argument("--ddm-timeout", type=int, help="minutes")
    send.add_argument("--ddm-force", action="store_true")
    send.add_argument("--rate", type=float, help="max sends per second")
    send.add_argument("--out", help="manifest file, .csv .json or .parquet (default manifest.csv for several numbers)")
    send.add_argument("-q", "--quiet", action="store_true")
    send.set_defaults(run=_send)

    report = commands.add_parser("report", help="postback logs → report (.html .xlsx .csv .parquet)")
    report.add_argument("logs", nargs="+", help="logs, globs or directories")
    report.add_argument("--manifest", help="send manifest: .csv, .json (also an experiment file) or .parquet "
                                           "(adds arms and pending sends)")
    report.add_argument("--out", required=True, help="output file; the suffix picks the format")
    report.add_argument("--title")
    report.set_defaults(run=_report)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``skycore-lab`` console script."""
    args = _parser().parse_args(argv)
    if args.verbose:
        from .redaction import RedactingFilter

        handler = logging.StreamHandler()
        handler.addFilter(RedactingFilter([os.environ.get("SKYCORE_API_KEY")]))
        logging.basicConfig(level=logging.INFO, handlers=[handler])
    try:
        check_command(args)
        return args.run(args)
    except KeyboardInterrupt:
        print("stopped", file=sys.stderr)
        return 130
    except SkycoreError as exc:
        print(f"skycore-lab {args.command}: {exc}", file=sys.stderr)
        return 1
    except (OSError, ImportError) as exc:
        print(f"skycore-lab {args.command}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
