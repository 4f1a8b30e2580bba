"""Throughput of the sandbox under ``SkycoreClient.send_batch`` (run: python benchmarks/bench_sandbox.py).

Prints sends/s against the sandbox and, in the same run, against a trivial
ASGI endpoint answering a fixed success (same client, same concurrency), and
their ratio — absolute numbers on a shared 2-core machine mean little. Then
checks that every notification the sandbox scheduled reached the sink.

Options: ``--sends N`` (default 3000), ``--concurrency C`` (4),
``--time-scale S`` (600: a message's whole life fits in ~15 s real, so the
postbacks arrive while sending is still going on).
"""

from __future__ import annotations

import argparse
import sys
import time

from skycore_lab import columns as col
from skycore_lab.server import ServerThread, read_body
from skycore_lab.client import SkycoreClient
from skycore_lab.sandbox import Sandbox

_FIXED = (b'<?xml version="1.0" encoding="UTF-8"?>\n<RESPONSE><STATUS>Success</STATUS><MMSID>1001</MMSID>'
          b"<TRACKINGID>TU1TXzE=</TRACKINGID><TO>17743199144</TO><FROM>60856</FROM></RESPONSE>")


class Sink:
    """Counts postbacks (answers 200 to each)."""

    def __init__(self):
        self.bodies: list[bytes] = []

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return
        self.bodies.append(await read_body(receive))
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
        await send({"type": "http.response.body", "body": b"OK"})


async def baseline_app(scope, receive, send):
    if scope["type"] != "http":
        return
    await read_body(receive)
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/xml"), (b"content-length", str(len(_FIXED)).encode())]})
    await send({"type": "http.response.body", "body": _FIXED})


def rate(url: str, key: str, numbers: list[str], concurrency: int) -> tuple[float, object]:
    with SkycoreClient(key, url) as client:
        started = time.perf_counter()
        manifest = client.send_batch(numbers, "1001", "60856", concurrency=concurrency, progress=False)
        return len(numbers) / (time.perf_counter() - started), manifest


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sends", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--time-scale", type=float, default=600.0)
    args = parser.parse_args(argv)

    sink = Sink()
    with ServerThread(sink, name="bench-sink") as sink_server, ServerThread(baseline_app, name="bench-baseline") as base:
        with Sandbox(seed=1, time_scale=args.time_scale, postback_url=sink_server.base_url + "/postbacks",
                     scenario={"countries": {"United States": 1.0}}) as sb:
            numbers = sb.world.sample_numbers(args.sends)
            base_rate, _ = rate(base.base_url + "/API/wxml/1.3/index.php", "k" * 32, numbers, args.concurrency)
            sandbox_rate, manifest = rate(sb.url, sb.api_key, numbers, args.concurrency)
            ok = int((manifest[col.STATUS] == "Success").sum())
            waited = time.perf_counter()
            # Upper bound of a message's life: DDM report horizon + expiry, then every retry.
            settings = sb.scenario.settings
            life_s = (settings["ddm"]["report_horizon_s"] + settings["expiry_s"]
                      + settings["postback"]["max_retries"] * settings["postback"]["retry_delay_s"])
            idle = sb.wait_idle(timeout=life_s / args.time_scale + 30)
            waited = time.perf_counter() - waited
            scheduled, posted, failed = sb._dispatcher.scheduled, sb.postbacks_posted, sb.postbacks_failed
            retries = sb.postback_retries
    print(f"sends: {args.sends}, concurrency {args.concurrency}, time_scale {args.time_scale:g}")
    print(f"baseline endpoint : {base_rate:8.1f} sends/s")
    print(f"sandbox           : {sandbox_rate:8.1f} sends/s  (ratio {sandbox_rate / base_rate:.2f})")
    print(f"accepted sends    : {ok}/{args.sends}")
    print(f"postbacks         : scheduled {scheduled}, posted {posted}, given up {failed}, retries {retries}, "
          f"received by sink {len(sink.bodies)}, idle after {waited:.1f} s: {idle}")
    complete = idle and ok == args.sends and posted == scheduled == len(sink.bodies) and failed == 0
    print("all postbacks delivered" if complete else "POSTBACKS MISSING")
    return 0 if complete else 1


if __name__ == "__main__":
    sys.exit(main())
