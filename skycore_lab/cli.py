"""``skycore-lab``: the notebook jobs from a shell.

Commands
--------
``demo``      run a 3-arm DDM experiment on the sandbox and write a report
``sandbox``   run the local Skycore API sandbox until Ctrl-C
``listen``    run a postback receiver until Ctrl-C
``send``      send a saved MMS to one or many numbers (a manifest CSV for many)
``report``    turn postback logs (and a manifest) into a report file; ``--dataset DIR`` reads a
              Parquet dataset on a Dask cluster instead (``--scheduler ADDRESS``: an existing one)
``ingest``    append postback logs' new records to a Parquet dataset (prints the counts)

Exit status: 0 on success, 1 when skycore-lab refused or failed (the reason
is printed on stderr, never with an API key in it; an unexpected error is
one line too, its traceback shown with ``-v``), 2 on a usage error.
Every command checks the packages and output paths it will need before it
does anything (:func:`check_command`): ``report --out x.parquet`` without
pyarrow fails at once, not after reading the logs.
The API key for ``send`` comes from ``SKYCORE_API_KEY`` (a ``--api-key``
option would leave it in the shell history and the process list).

Sending safely
--------------
``send`` goes through the client's send guard (:mod:`skycore_lab.guard`):
more than 50 numbers to production need ``--yes`` (without it the command
refuses, exit 1, saying how many numbers, which MMS, which shortcode and,
with ``--price-per-mms``, the estimated cost); ``SKYCORE_TEST_NUMBERS`` (a
file or a comma list) refuses every other number, naming them, before
anything is sent. ``--dry-run`` validates everything and prints the exact
HTTP requests (API key masked) instead of sending; it needs no ``--yes``
and writes no manifest.

Usage errors
------------
Every argument is checked before anything starts, and a bad one is a usage
error (exit 2, the message names the argument): counts must be positive
integers (``--seed`` non-negative), durations and rates positive finite
numbers, ports 0–65535, URLs ``http(s)://host…``, ``--max-bytes`` larger
than the log header; an input file named by an option (``--scenario``,
``--to-file``, ``--manifest``, ``--token-file``) must exist, and so must the
folder of an output file; an output format that does not exist
(``report --out r.pdf``, a manifest ``.txt``) is a usage error too, found by
:func:`check_command` (a missing package stays exit 1: the command line was
right, the installation is not). ``report``'s log arguments may be globs or
folders: what they match is read by :func:`skycore_lab.read_postbacks`,
which fails (exit 1) when it matches nothing.

The receiver's token
--------------------
``listen`` takes its token from ``--token-file FILE`` (the first line,
surrounding whitespace removed), else from the environment variable
``SKYCORE_POSTBACK_TOKEN``, else from ``--token`` — which works but prints a
warning: a command-line argument is visible to every user of the machine
(``ps``) and stays in the shell's history. ``--token`` and ``--token-file``
exclude each other. The listening URL printed (and written to
``--url-file``) contains the token: it is what the platform needs.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import sys
from pathlib import Path
from urllib.parse import urlsplit

from . import __version__
from .connlimits import DEFAULT_MAX_CONNECTIONS, ConnectionLimits
from .exceptions import SkycoreError, SkycoreValidationError

__all__ = ["main", "check_command", "TOKEN_ENV"]

#: Environment variable ``listen`` reads its token from (when no --token-file is given).
TOKEN_ENV = "SKYCORE_POSTBACK_TOKEN"
_LIMITS = ConnectionLimits()


class _UsageError(Exception):
    """An argument found bad after parsing: reported like argparse's own errors (exit 2)."""

    def __init__(self, option: str, message: str):
        super().__init__(f"argument {option}: {message}")


# --- argument types (argparse turns their ArgumentTypeError into a usage error naming the option) --------
def _integer(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None


def _int_at_least(low: int):
    def check(text: str) -> int:
        value = _integer(text)
        if value < low:
            raise argparse.ArgumentTypeError(f"must be at least {low}, got {value}")
        return value

    check.__name__ = f"integer ≥ {low}"
    return check


_positive_int = _int_at_least(1)
_non_negative_int = _int_at_least(0)


def _port(text: str) -> int:
    value = _integer(text)
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"must be a TCP port 0–65535 (0 picks a free one), got {value}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive finite number, got {text}")
    return value


def _non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, got {text}")
    return value


def _http_url(text: str) -> str:
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise argparse.ArgumentTypeError(f"must be an http:// or https:// URL with a host, got {text!r}")
    return text


def _non_empty(text: str) -> str:
    if not text.strip():
        raise argparse.ArgumentTypeError("must not be empty")
    return text


def _input_file(text: str) -> str:
    if not os.path.isfile(text):
        raise argparse.ArgumentTypeError(f"no such file: {text!r}")
    return text


def _output_file(text: str) -> str:
    folder = os.path.dirname(os.path.abspath(text))
    if not text.strip() or os.path.isdir(text):
        raise argparse.ArgumentTypeError(f"must name a file, got {text!r}")
    if not os.path.isdir(folder):
        raise argparse.ArgumentTypeError(f"the folder of {text!r} does not exist")
    return text


def _dataset_folder(text: str) -> str:
    if not text.strip() or (os.path.exists(text) and not os.path.isdir(text)):
        raise argparse.ArgumentTypeError(f"must name a folder, got {text!r}")
    if not os.path.isdir(os.path.dirname(os.path.abspath(text))):
        raise argparse.ArgumentTypeError(f"the folder holding {text!r} does not exist")
    return text


def _output_folder(path: str | os.PathLike, option: str) -> None:
    folder = Path(path).parent
    if str(folder) and not folder.is_dir():
        raise SkycoreValidationError(option, f"the folder of {str(path)!r} does not exist")


def _for_option(option: str, check, *args):
    """``check(*args)``, its SkycoreValidationError re-raised naming the command-line option."""
    try:
        return check(*args)
    except SkycoreValidationError as exc:
        raise SkycoreValidationError(option, exc.message) from None


def check_command(args) -> None:
    """Check, before any work, every package and output path the command ``args`` will need.

    Raises
    ------
    ImportError
        A package a requested output needs is missing; the message names the extra.
    SkycoreValidationError
        An output format that does not exist, or an output folder that does not; its
        ``field`` is the option (``"--out"``, ``"--manifest"``): :func:`main` reports it
        as a usage error (exit 2).
    """
    if args.command == "demo":
        from .demo import check_demo_outputs

        check_demo_outputs()
    elif args.command == "report":
        from .report.export import check_report_path

        _check_report_sources(args)
        _for_option("--out", check_report_path, args.out)
        _output_folder(args.out, "--out")
        if args.manifest:
            from .manifest import check_manifest_path

            _for_option("--manifest", check_manifest_path, args.manifest)
    elif args.command == "send" and not args.dry_run and (args.out or args.to_file or len(args.to or ()) > 1):
        from .manifest import check_manifest_path

        _for_option("--out", check_manifest_path, args.out or _DEFAULT_MANIFEST)
        _output_folder(args.out or _DEFAULT_MANIFEST, "--out")


_DEFAULT_MANIFEST = "manifest.csv"


def _check_report_sources(args) -> None:
    """Logs or a dataset, not both; with a dataset, dask and the dataset reader installed (checked first)."""
    if args.dataset is None:
        if not args.logs:
            raise SkycoreValidationError("logs", "give postback logs, or --dataset DIR")
        if args.scheduler is not None:
            raise SkycoreValidationError("--scheduler", "runs a dataset's report: give --dataset DIR too")
        return
    if args.logs:
        raise SkycoreValidationError("--dataset", "give postback logs or --dataset DIR, not both")
    from .distributed.engine import require_dask

    require_dask("skycore-lab report --dataset")


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


def _listen_token(args) -> str | None:
    """The token from --token-file, SKYCORE_POSTBACK_TOKEN or --token (see the module docstring)."""
    from .postbacks.receiver import validate_token

    if args.token_file is not None:
        option = "--token-file"
        with open(args.token_file, encoding="utf-8") as handle:
            lines = handle.read().strip().splitlines()
        token = lines[0].strip() if lines else ""
        if not token:
            raise _UsageError(option, f"{args.token_file!r} holds no token")
    elif args.token is not None:
        option, token = "--token", args.token
    elif os.environ.get(TOKEN_ENV):
        option, token = TOKEN_ENV, os.environ[TOKEN_ENV].strip()
    else:
        return None
    try:
        validate_token(token)
    except SkycoreValidationError as exc:
        raise _UsageError(option, str(exc).removeprefix("token: ")) from None
    if option == "--token":
        print(f"skycore-lab listen: warning: --token is visible to every user of this machine (ps) and stays in "
              f"the shell history; use --token-file FILE or {TOKEN_ENV}", file=sys.stderr)
    return token


def _listen(args) -> int:
    from .postbacks.logformat import HEADER
    from .postbacks.receiver import PostbackReceiver

    token = _listen_token(args)
    if args.rotate == "size" and args.max_bytes <= len(HEADER):
        raise _UsageError("--max-bytes", f"must be more than the log header's {len(HEADER)} bytes")
    limits = ConnectionLimits(
        header_timeout_s=args.header_timeout, body_timeout_s=args.body_timeout,
        max_header_bytes=args.max_header_bytes, max_connections=args.max_connections,
        keepalive_timeout_s=args.keepalive_timeout, max_requests_per_connection=args.max_requests_per_connection,
    )  # fmt: skip
    receiver = PostbackReceiver(args.log, host=args.host, port=args.port, token=token,
                                rotate=args.rotate, max_bytes=args.max_bytes, max_body=args.max_body,
                                rejects_log=args.rejects_log, group_commit=args.group_commit,
                                sync_interval=args.sync_interval, sync_every=args.sync_every, limits=limits)
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
        raise _UsageError("--to", "give --to NUMBER (repeatable) or --to-file FILE with at least one number")
    return numbers


def _send(args) -> int:
    from .client import DDM, SkycoreClient

    ddm = None
    if args.ddm_text is not None:
        ddm = DDM(args.ddm_text, title=args.ddm_title, timeout_min=args.ddm_timeout, force=args.ddm_force)
    kwargs = dict(campaign_ref=args.campaign_ref, ddm=ddm, custom_subject=args.subject)
    numbers = _read_numbers(args)
    with SkycoreClient(base_url=args.url, method=args.method, price_per_mms=args.price_per_mms) as client:
        if args.dry_run:
            dry = client.send_batch(numbers, args.mms_id, args.sender, progress=False, dry_run=True, **kwargs)
            print(dry.summary())
            for request in dry.requests:
                print()
                print(request)
            return 0
        if len(numbers) == 1 and not args.out:
            result = client.send_saved_mms(args.mms_id, numbers[0], args.sender, **kwargs)
            print(f"{result.status}: tracking id {result.tracking_id} to {result.to} from {result.sender}")
            return 0
        manifest = client.send_batch(numbers, args.mms_id, args.sender, progress=not args.quiet,
                                     max_rate_per_s=args.rate, confirm=args.yes, **kwargs)
    from .manifest import write_manifest

    out = write_manifest(manifest, args.out or _DEFAULT_MANIFEST)
    counts = manifest["status"].value_counts().to_dict()
    print(f"{len(manifest)} sends: " + ", ".join(f"{n} {status}" for status, n in counts.items()) + f"; manifest {out}")
    return 0 if counts.get("Success", 0) == len(manifest) else 1


def _report(args) -> int:
    if args.dataset is not None:
        return _report_dataset(args)
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
    export_report(frame, args.out, events=events, title=args.title, by=by, provenance=provenance,
                  csv_escape=not args.csv_raw)
    print(f"{len(frame):,} sends from {len(events):,} postbacks → {args.out}")
    return 0


def _report_dataset(args) -> int:
    """The report of a dataset: deliveries on the Dask cluster, only the sends come back; the report as from logs.

    The events stay on the cluster (hundreds of millions of rows do not come
    back): the report's postback timeline, which draws every event, is left
    out, and its period and counts are the sends'.
    """
    from . import columns as col
    from .dataset import read_events
    from .distributed.cluster import dask_client
    from .frames import deliveries
    from .manifest import read_manifest
    from .provenance import collect_provenance
    from .report import export_report

    manifest = read_manifest(args.manifest) if args.manifest else None
    if not args.verbose:  # the cluster's routine notices (shuffles started, workers up) are not the user's news
        logging.getLogger("distributed").setLevel(logging.ERROR)
    with dask_client(args.scheduler):
        events = read_events(args.dataset, engine="dask")
        frame = deliveries(events, manifest).compute().reset_index(drop=True)
    by = tuple(name for name in (col.CARRIER, col.ARM) if name in frame.columns)
    # a dataset is a folder of files that grows: no one hash to record (the manifest's is)
    provenance = collect_provenance(frame, manifest=manifest)
    export_report(frame, args.out, title=args.title, by=by, provenance=provenance, csv_escape=not args.csv_raw)
    print(f"{len(frame):,} sends from the dataset {args.dataset} → {args.out}")
    return 0


def _dataset_dir(text: str) -> str:
    if not os.path.isdir(text):
        raise argparse.ArgumentTypeError(f"no such dataset folder: {text!r}")
    return text


def _ingest(args) -> int:
    from .dataset import ingest

    result = ingest(args.logs, args.dataset)
    print(f"{result.files:,} files, {result.new_records:,} new records, {result.bad_records:,} bad records, "
          f"{result.duplicates_dropped:,} duplicates dropped → {args.dataset}")
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="skycore-lab", description="Test and measure MMS delivery via Skycore.")
    parser.add_argument("--version", action="version", version=f"skycore-lab {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log what happens (API keys are masked)")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = commands.add_parser("demo", help="3-arm DDM experiment on the sandbox, with a report")
    demo.add_argument("--out", default="skycore-demo", type=_non_empty, help="output directory (default ./skycore-demo)")
    demo.add_argument("--numbers", type=_int_at_least(3), default=3000, help="simulated recipients (default 3000)")
    demo.add_argument("--seed", type=_non_negative_int, default=0)
    demo.add_argument("--time-scale", type=_positive_float, default=720.0, help="simulated seconds per real second")
    demo.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    demo.set_defaults(run=_demo, parser=demo)

    sandbox = commands.add_parser("sandbox", help="run the local Skycore API sandbox")
    sandbox.add_argument("--host", default="127.0.0.1", type=_non_empty)
    sandbox.add_argument("--port", type=_port, default=0, help="0 picks a free port")
    sandbox.add_argument("--postback-url", default=None, type=_http_url)
    sandbox.add_argument("--time-scale", type=_positive_float, default=60.0)
    sandbox.add_argument("--seed", type=_non_negative_int, default=0)
    sandbox.add_argument("--scenario", default=None, type=_input_file, help="scenario JSON file")
    sandbox.set_defaults(run=_sandbox, parser=sandbox)

    listen = commands.add_parser("listen", help="receive postbacks into a log")
    listen.add_argument("--log", default="postbacks.log", type=_output_file)
    listen.add_argument("--host", default="127.0.0.1", type=_non_empty)
    listen.add_argument("--port", type=_port, default=0)
    secret = listen.add_mutually_exclusive_group()
    secret.add_argument("--token-file", default=None, type=_input_file,
                        help=f"file holding the secret path token (/postbacks/<token>); or set {TOKEN_ENV}")
    secret.add_argument("--token", default=None, help="the token itself: visible in ps, prefer --token-file")
    listen.add_argument("--rotate", choices=("size", "daily"), default=None)
    listen.add_argument("--max-bytes", type=_positive_int, default=100 * 1024 * 1024,
                        help="rotate size (with --rotate size)")
    listen.add_argument("--max-body", type=_positive_int, default=64 * 1024, help="larger postbacks get 413")
    listen.add_argument("--rejects-log", default=None, type=_output_file, help="where non-postback bodies go")
    listen.add_argument("--no-group-commit", dest="group_commit", action="store_false",
                        help="one write() per postback instead of grouping concurrent ones")
    listen.add_argument("--sync-interval", type=_positive_float, default=0.1,
                        help="fdatasync at most this many seconds late")
    listen.add_argument("--sync-every", type=_positive_int, default=100, help="fdatasync at most this many records late")
    listen.add_argument("--header-timeout", type=_positive_float, default=_LIMITS.header_timeout_s,
                        help=f"seconds to receive a request's headers (default {_LIMITS.header_timeout_s:g}; 408)")
    listen.add_argument("--body-timeout", type=_positive_float, default=_LIMITS.body_timeout_s,
                        help=f"seconds to receive a body after its headers (default {_LIMITS.body_timeout_s:g}; 408)")
    listen.add_argument("--max-header-bytes", type=_positive_int, default=_LIMITS.max_header_bytes,
                        help=f"largest request line + headers (default {_LIMITS.max_header_bytes}; 431)")
    listen.add_argument("--max-connections", type=_positive_int, default=None,
                        help=f"connections open at once (default {DEFAULT_MAX_CONNECTIONS}, or fewer under "
                             "ulimit -n; more get 503)")
    listen.add_argument("--keepalive-timeout", type=_positive_float, default=_LIMITS.keepalive_timeout_s,
                        help=f"idle seconds between requests on a connection (default {_LIMITS.keepalive_timeout_s:g})")
    listen.add_argument("--max-requests-per-connection", type=_positive_int,
                        default=_LIMITS.max_requests_per_connection,
                        help=f"then the connection is closed (default {_LIMITS.max_requests_per_connection})")
    listen.add_argument("--url-file", type=_output_file, help="write the postback URL to this file once listening")
    listen.add_argument("-q", "--quiet", action="store_true", help="print nothing")
    listen.set_defaults(run=_listen, parser=listen)

    send = commands.add_parser("send", help="send a saved MMS (API key from SKYCORE_API_KEY)")
    send.add_argument("--mms-id", required=True, type=_non_empty)
    send.add_argument("--sender", required=True, type=_non_empty, help="shortcode")
    send.add_argument("--to", action="append", type=_non_empty, help="recipient, international digits (repeatable)")
    send.add_argument("--to-file", type=_input_file, help="file with one number per line (first CSV field)")
    send.add_argument("--url", default=None, type=_http_url, help="API URL (default SKYCORE_API_URL or production)")
    send.add_argument("--method", choices=("post", "get"), default="post")
    send.add_argument("--campaign-ref")
    send.add_argument("--subject", help="custom subject")
    send.add_argument("--ddm-text")
    send.add_argument("--ddm-title")
    send.add_argument("--ddm-timeout", type=_positive_int, help="minutes")
    send.add_argument("--ddm-force", action="store_true")
    send.add_argument("--rate", type=_positive_float, help="max sends per second")
    send.add_argument("--out", type=_output_file,
                      help="manifest file, .csv .json or .parquet (default manifest.csv for several numbers)")
    send.add_argument("--dry-run", action="store_true",
                      help="validate and print the exact requests (API key masked); send nothing")
    send.add_argument("--yes", action="store_true",
                      help="confirm a production send to more than 50 numbers (it costs money and reaches people)")
    send.add_argument("--price-per-mms", type=_non_negative_float, default=None,
                      help="price of one MMS, to show the estimated cost")
    send.add_argument("-q", "--quiet", action="store_true")
    send.set_defaults(run=_send, parser=send)

    report = commands.add_parser("report", help="postback logs → report (.html .xlsx .csv .parquet)")
    report.add_argument("logs", nargs="*", type=_non_empty, help="logs, globs or directories (or --dataset)")
    report.add_argument("--dataset", type=_dataset_dir,
                        help="a Parquet dataset (skycore-lab ingest) instead of logs, analysed on a Dask cluster")
    report.add_argument("--scheduler", metavar="ADDRESS",
                        help="with --dataset: the Dask scheduler to use (tcp://host:8786); default a local cluster")
    report.add_argument("--manifest", type=_input_file,
                        help="send manifest: .csv, .json (also an experiment file) or .parquet (adds arms and pending sends)")
    report.add_argument("--out", required=True, type=_output_file, help="output file; the suffix picks the format")
    report.add_argument("--title")
    report.add_argument("--csv-raw", action="store_true",
                        help="CSV for programs: no ' before cells starting with = + - @ (see export_report)")
    report.set_defaults(run=_report, parser=report)

    ingest = commands.add_parser("ingest", help="append postback logs' new records to a Parquet dataset")
    ingest.add_argument("logs", nargs="+", type=_non_empty, help="logs, globs or directories")
    ingest.add_argument("--dataset", required=True, type=_dataset_folder,
                        help="the dataset's folder (created if missing; its parent must exist)")
    ingest.set_defaults(run=_ingest, parser=ingest)
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
        try:
            check_command(args)
        except SkycoreValidationError as exc:
            raise _UsageError(exc.field, exc.message) from None
        return args.run(args)
    except _UsageError as exc:
        args.parser.error(str(exc))  # exits 2, after the command's usage line
    except KeyboardInterrupt:
        print("stopped", file=sys.stderr)
        return 130
    except SkycoreError as exc:
        print(f"skycore-lab {args.command}: {exc}", file=sys.stderr)
        return 1
    except (OSError, ImportError) as exc:
        print(f"skycore-lab {args.command}: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:  # a bug or an input nobody foresaw: one line; the traceback with -v
        if args.verbose:
            raise
        from .redaction import redact

        text = redact(f"{type(exc).__name__}: {exc}", [os.environ.get("SKYCORE_API_KEY")])
        print(f"skycore-lab {args.command}: unexpected error: {text} (run with -v for the traceback)", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
