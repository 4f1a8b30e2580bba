"""Throughput and kill -9 proof of the postback receiver, under ``wrk`` load.

Runs, each server in a subprocess of its own (so wrk, the server and this
script do not share a GIL):

1. **baseline**: a minimal ASGI app on the same uvicorn set-up
   (:class:`skycore_lab.server.ServerThread`: httptools + uvloop) that reads
   the body and answers 200 without storing anything;
2. **receiver**: ``skycore-lab listen`` (the real
   :class:`~skycore_lab.PostbackReceiver`, group commit on), and
   with ``--compare-plain`` also with one ``write()`` per request;
3. **kill -9**: the receiver again, ``SIGKILL``-ed half-way through a wrk run.

With ``--abuse`` it measures instead what hostile clients cost legitimate
traffic: the receiver's stored postbacks/s under wrk, **quiet** and **under
attack**, alternating, in the same run. The attack (a separate asyncio
process, :data:`ATTACKER`) holds ``--slow-clients`` (500) connections that
send a request one byte every 3 s (reconnecting whenever the receiver cuts
them off) and ``--big-header-clients`` (50) that send endless headers,
4 KiB a second (reconnecting after each 431), from before wrk starts until
after it ends. It prints the ratio abused / quiet; the target is ≥ 0.8,
with every acknowledged postback stored.

wrk posts a realistic N102 POSTBACK whose TRACKINGID carries a unique
``<wrk thread>-<counter>``. After each receiver run the log is read back with
:func:`skycore_lab.postbacks.logformat.decode_line`: every record must decode, the ids
must be unique, and stored ≥ wrk's 2xx count (every 200 is stored; a few
more may be stored whose 200 wrk never saw, e.g. cut by the kill). A torn
final line is reported, and accepted only after the kill (its request could
not have been acknowledged).

Usage::

    python benchmarks/bench_receiver.py [--duration 10] [--connections 64] [--threads 1] [--compare-plain] [--repeat 1]
    python benchmarks/bench_receiver.py --abuse [--slow-clients 500] [--big-header-clients 50] [--repeat 3]

The machine is shared and has 2 cores (wrk takes one), so absolute numbers
are noisy; compare the ratio to the baseline measured in the same run.
Exit status 1 when a check fails (stored < acked, undecodable record,
duplicate id).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.request

from skycore_lab.postbacks.logformat import HEADER, decode_line

TARGET = 5000.0
ABUSE_TARGET = 0.8

LUA = r"""
local counter = 0
tid = 0
local threads = {}
local template = "<?xml version='1.0' encoding='UTF-8'?>\n<POSTBACK><ORIGIN>MMS_MT</ORIGIN><CODE>N102</CODE>"
  .. "<STATUS>Message Sent/Delivered</STATUS><SENTAS>MMS</SENTAS><MMSID>10023</MMSID><FROM>12345</FROM>"
  .. "<TO>17743199144</TO><TRACKINGID>wrk-%d-%d</TRACKINGID><SPID>0001100</SPID>"
  .. "<TIMESTAMP>2026-11-25T10:22:25-05:00</TIMESTAMP><HANDSET>Apple iPhone 15</HANDSET>"
  .. "<AGGREGATORID>7</AGGREGATORID></POSTBACK>"
local n = 0
function setup(thread)
  n = n + 1
  thread:set("tid", n)
end
function init(args)
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "text/xml"
end
function request()
  counter = counter + 1
  return wrk.format(nil, nil, nil, string.format(template, tid, counter))
end
function done(summary, latency, requests)
  io.write(string.format("RESULT requests=%d status_errors=%d connect=%d read=%d write=%d timeout=%d\n",
    summary.requests, summary.errors.status, summary.errors.connect, summary.errors.read,
    summary.errors.write, summary.errors.timeout))
end
"""

BASELINE_SERVER = textwrap.dedent(
    """
    import os, sys
    from skycore_lab.server import ServerThread

    async def app(scope, receive, send):
        more = True
        while more:
            message = await receive()
            more = message.get("more_body", False)
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/plain"), (b"content-length", b"3")]})
        await send({"type": "http.response.body", "body": b"OK\\n"})

    server = ServerThread(app, proxy_headers=False).start()
    with open(sys.argv[1] + ".tmp", "w") as f:
        f.write(server.base_url + "/postbacks")
    os.replace(sys.argv[1] + ".tmp", sys.argv[1])
    server.serve_forever()
    """
)


ATTACKER = textwrap.dedent(
    r"""
    # The attack, as cheap as it can be made: asyncio protocols on uvloop, one ticker per
    # client kind (no task or timer per connection), niced so that it takes the CPU of
    # the shared machine last: real attackers bring their own CPU.
    import asyncio, json, os, random, signal, sys

    host, port = sys.argv[1], int(sys.argv[2])
    slow_n, big_n, ready_file, stats_file = int(sys.argv[3]), int(sys.argv[4]), sys.argv[5], sys.argv[6]
    os.nice(10)
    try:
        import uvloop
        uvloop.install()
    except ImportError:
        pass
    stats = {"connections": 0, "open": 0, "peak_open": 0, "cut_off": {}, "connect_errors": 0}
    SLOW = b"POST /postbacks HTTP/1.1\r\nHost: x\r\nContent-Type: text/xml\r\nX-Pad: " + b"p" * 4000  # never ends
    BIG_START, BIG_CHUNK = b"POST /postbacks HTTP/1.1\r\nX-Big: ", b"a" * 4096
    random.seed(0)


    class Client(asyncio.Protocol):
        def __init__(self, kind):
            self.kind, self.sent, self.transport, self.answer = kind, 0, None, b""

        def connection_made(self, transport):
            self.transport = transport
            stats["connections"] += 1
            stats["open"] += 1
            stats["peak_open"] = max(stats["peak_open"], stats["open"])
            live[self.kind].add(self)

        def data_received(self, data):
            self.answer += data

        def connection_lost(self, exc):
            live[self.kind].discard(self)
            stats["open"] -= 1
            key = self.answer[:12].decode("latin-1") or "closed"
            stats["cut_off"][key] = stats["cut_off"].get(key, 0) + 1
            loop.call_later(0.2 if self.kind == "big" else 0.0, lambda: loop.create_task(connect(self.kind)))

        def send_more(self):
            if self.transport.is_closing():
                return
            if self.kind == "slow":
                self.transport.write(SLOW[self.sent:self.sent + 1])
            else:
                self.transport.write(BIG_START if self.sent == 0 else BIG_CHUNK)
            self.sent += 1


    async def connect(kind):
        while True:
            try:
                await loop.create_connection(lambda: Client(kind), host, port)
                return
            except OSError:
                stats["connect_errors"] += 1
                await asyncio.sleep(1)


    async def ticker(kind, period, slices=30):
        # every client of a kind sends once per period, spread over the period in slices
        n = 0
        while True:
            await asyncio.sleep(period / slices)
            for client in list(live[kind]):
                if hash(client) % slices == n % slices:
                    client.send_more()
            n += 1


    async def main():
        global loop
        loop = asyncio.get_running_loop()
        await asyncio.gather(*(connect("slow") for _ in range(slow_n)), *(connect("big") for _ in range(big_n)))
        tickers = [asyncio.create_task(ticker("slow", 3.0)), asyncio.create_task(ticker("big", 1.0))]
        with open(ready_file + ".tmp", "w") as f:
            f.write("ready")
        os.replace(ready_file + ".tmp", ready_file)
        stop = asyncio.Event()
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        await stop.wait()
        with open(stats_file, "w") as f:
            json.dump(stats, f)
        os._exit(0)


    live = {"slow": set(), "big": set()}
    loop = None
    asyncio.run(main())
    """
)


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    with open(f"/proc/{pid}/stat") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _health(url: str) -> dict:
    base = url.split("/postbacks", 1)[0]
    try:
        with urllib.request.urlopen(base + "/health", timeout=5) as answer:
            return json.loads(answer.read())
    except urllib.error.HTTPError as failing:  # 503 while failing: the same JSON
        return json.loads(failing.read())


def _abuse(args, tmp: str, lua: str) -> list[str]:
    """Quiet and attacked receiver runs, alternating; returns the failed checks."""
    attacker_py = os.path.join(tmp, "attacker.py")
    with open(attacker_py, "w") as handle:
        handle.write(ATTACKER)
    failures: list[str] = []
    quiet_rates: list[float] = []
    ratios: list[float] = []
    cpu_ratios: list[float] = []
    for round_no in range(1, args.repeat + 1):
        order = ["quiet", "abused"] if round_no % 2 else ["abused", "quiet"]
        rates, cpu_per_postback = {}, {}
        for mode in order:
            log = os.path.join(tmp, f"{mode}{round_no}.log")
            url_file = log + ".url"
            cmd = [sys.executable, "-m", "skycore_lab.cli", "listen", "--quiet", "--log", log, "--url-file", url_file]
            proc, url = _start(cmd, url_file)
            attacker = None
            note = ""
            try:
                if mode == "abused":
                    host, port = url.split("//", 1)[1].split("/", 1)[0].rsplit(":", 1)
                    ready = os.path.join(tmp, f"ready{round_no}")
                    stats_file = os.path.join(tmp, f"attack{round_no}.json")
                    attacker = subprocess.Popen(
                        [sys.executable, attacker_py, host, port, str(args.slow_clients),
                         str(args.big_header_clients), ready, stats_file],
                        stderr=subprocess.PIPE,
                    )  # fmt: skip
                    _wait_for_url(ready, attacker, timeout=60)
                    time.sleep(2.0)  # every client has sent something
                    before = _health(url).get("connections", {})  # absent before issue 13
                cpu = _cpu_seconds(proc.pid)
                run = _wrk(url, lua, args, args.duration)
                cpu = _cpu_seconds(proc.pid) - cpu
                if attacker is not None:
                    after = _health(url).get("connections", {})
                    attacker.send_signal(signal.SIGTERM)
                    attacker.wait(30)
                    with open(stats_file) as handle:
                        attack = json.load(handle)
                    note = (
                        f"; attack: {before.get('open_connections', '?')} connections open at wrk start, "
                        f"{after.get('open_connections', '?')} at its end, {attack['connections']} opened in all "
                        f"({attack['peak_open']} at most at once), receiver cut off {after.get('header_timeouts', 0)} "
                        f"slow (408) and {after.get('headers_too_large', 0)} oversized (431), refused "
                        f"{after.get('refused_connections', 0)}"
                    )
            finally:
                if attacker is not None and attacker.poll() is None:
                    attacker.kill()
                    attacker.wait()
                _stop(proc)
            check = _check_log(log)
            os.remove(log)
            ok = check["stored"] >= run["acked"] and not (check["undecodable"] or check["duplicates"] or check["torn_tail"])
            if not ok:
                failures.append(f"{mode} round {round_no}")
            rates[mode] = run["acked_rps"]
            cpu_per_postback[mode] = cpu / max(run["acked"], 1)
            print(
                f"[{round_no}] {mode:7s} {run['acked_rps']:8.0f} acked (and stored)/s; receiver CPU "
                f"{cpu / max(run['acked'], 1) * 1e6:.0f} µs per stored postback; acked {run['acked']}, "
                f"stored {check['stored']}, non-2xx {run['non_2xx']}, socket errors {run['socket_errors']}"
                f"{note} -> {'OK' if ok else 'FAIL'}"
            )
        quiet_rates.append(rates["quiet"])
        ratios.append(rates["abused"] / rates["quiet"])
        cpu_ratios.append(cpu_per_postback["abused"] / cpu_per_postback["quiet"])
        print(f"[{round_no}] abused / quiet = {ratios[-1]:.2f} (receiver CPU per stored postback: {cpu_ratios[-1]:.2f}×)")
    median = statistics.median(ratios)
    verdict = "meets" if median >= ABUSE_TARGET else "BELOW"
    print(
        f"median quiet {statistics.median(quiet_rates):.0f} stored/s; median ratio abused / quiet {median:.2f} "
        f"(rounds: {', '.join(f'{r:.2f}' for r in ratios)}) -> {verdict} the {ABUSE_TARGET} target, "
        f"with {args.slow_clients} slow clients and {args.big_header_clients} oversized-header clients held open; "
        f"median receiver CPU per stored postback abused / quiet {statistics.median(cpu_ratios):.2f}× "
        "(less noisy on a shared machine than the rates)"
    )
    if median < ABUSE_TARGET:
        failures.append(f"abused / quiet {median:.2f} < {ABUSE_TARGET}")
    return failures


def _wait_for_url(url_file: str, proc: subprocess.Popen, timeout: float = 20.0) -> str:
    deadline = time.monotonic() + timeout
    while not os.path.exists(url_file):
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}: {proc.stderr.read().decode()}")
        if time.monotonic() > deadline:
            raise TimeoutError("server did not start")
        time.sleep(0.02)
    with open(url_file) as handle:
        return handle.read().strip()


def _start(cmd: list[str], url_file: str) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    return proc, _wait_for_url(url_file, proc)


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    proc.stderr.close()


def _wrk(url: str, lua: str, args, duration: float, kill: subprocess.Popen | None = None) -> dict:
    cmd = ["wrk", f"-t{args.threads}", f"-c{args.connections}", f"-d{duration:g}s", "--timeout", "5s", "-s", lua, url]
    wrk = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if kill is not None:
        time.sleep(duration / 2)
        kill.send_signal(signal.SIGKILL)
        kill.wait()
    out, _ = wrk.communicate()
    match = re.search(
        r"RESULT requests=(\d+) status_errors=(\d+) connect=(\d+) read=(\d+) write=(\d+) timeout=(\d+)", out
    )
    if not match:
        raise RuntimeError(f"unexpected wrk output:\n{out}")
    requests, status_errors, *socket_errors = map(int, match.groups())
    rate = re.search(r"Requests/sec:\s*([\d.]+)", out)
    return {
        "requests": requests,
        "acked": requests - status_errors,
        "non_2xx": status_errors,
        "socket_errors": sum(socket_errors),
        "rps": float(rate.group(1)) if rate else requests / duration,
        "acked_rps": (requests - status_errors) / duration,
    }


def _check_log(path: str) -> dict:
    """Read the log back as a reader would; count records, torn lines, duplicate ids."""
    with open(path, "rb") as handle:
        data = handle.read()
    if not data.startswith(HEADER):
        raise AssertionError(f"{path} does not start with the v1 header")
    lines = data[len(HEADER) :].split(b"\n")
    torn_tail = lines.pop()  # b"" when the file ends with LF
    ids, bad = set(), 0
    duplicates = 0
    for line in lines:
        try:
            _, _, body = decode_line(line)
        except ValueError:
            bad += 1
            continue
        found = re.search(rb"<TRACKINGID>(wrk-\d+-\d+)</TRACKINGID>", body)
        if found:
            if found.group(1) in ids:
                duplicates += 1
            ids.add(found.group(1))
    return {"stored": len(lines) - bad, "undecodable": bad, "torn_tail": bool(torn_tail), "duplicates": duplicates}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=10.0, help="seconds of load per run")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--threads", type=int, default=1, help="wrk threads (the machine has 2 cores)")
    parser.add_argument("--compare-plain", action="store_true", help="also measure one write() per request")
    parser.add_argument("--repeat", type=int, default=1, help="alternate baseline/receiver runs this many times")
    parser.add_argument("--no-kill", action="store_true", help="skip the kill -9 run")
    parser.add_argument("--abuse", action="store_true", help="quiet vs attacked receiver (see the module docstring)")
    parser.add_argument("--slow-clients", type=int, default=500, help="with --abuse: one byte every 3 s each")
    parser.add_argument("--big-header-clients", type=int, default=50, help="with --abuse: endless headers each")
    args = parser.parse_args(argv)
    if shutil.which("wrk") is None:
        print("wrk is not installed (Debian package 'wrk')", file=sys.stderr)
        return 2

    failures: list[str] = []
    with tempfile.TemporaryDirectory(prefix="bench-receiver-") as tmp:
        lua = os.path.join(tmp, "postback.lua")
        with open(lua, "w") as handle:
            handle.write(LUA)
        baseline_py = os.path.join(tmp, "baseline.py")
        with open(baseline_py, "w") as handle:
            handle.write(BASELINE_SERVER)

        print(f"wrk -t{args.threads} -c{args.connections}, {args.duration:g} s per run; load average "
              f"{os.getloadavg()[0]:.2f} at start")  # fmt: skip
        if args.abuse:
            failures = _abuse(args, tmp, lua)
            if failures:
                print("FAILED: " + ", ".join(failures))
            return 1 if failures else 0

        variants = [("receiver", [])]
        if args.compare_plain:
            variants.append(("receiver --no-group-commit", ["--no-group-commit"]))
        rates: dict[str, list[float]] = {"baseline": [], **{name: [] for name, _ in variants}}
        ratios: dict[str, list[float]] = {name: [] for name, _ in variants}
        for round_no in range(1, args.repeat + 1):
            # Alternate the order (baseline first, then last) so a slow spell on
            # the shared machine does not always hit the same server.
            order = [("baseline", None), *variants]
            if round_no % 2 == 0:
                order.reverse()
            runs = {}
            for name, extra in order:
                if extra is None:
                    url_file = os.path.join(tmp, f"baseline{round_no}.url")
                    proc, url = _start([sys.executable, baseline_py, url_file], url_file)
                    try:
                        runs[name] = _wrk(url, lua, args, args.duration)
                    finally:
                        _stop(proc)
                    rates[name].append(runs[name]["rps"])
                    continue
                log = os.path.join(tmp, f"{name.replace(' ', '_')}{round_no}.log")
                url_file = log + ".url"
                cmd = [sys.executable, "-m", "skycore_lab.cli", "listen", "--quiet", "--log", log, "--url-file", url_file, *extra]
                proc, url = _start(cmd, url_file)
                try:
                    runs[name] = run = _wrk(url, lua, args, args.duration)
                finally:
                    _stop(proc)
                run["check"] = check = _check_log(log)
                os.remove(log)
                run["ok"] = ok = (
                    check["stored"] >= run["acked"]
                    and not (check["undecodable"] or check["duplicates"] or check["torn_tail"])
                )
                rates[name].append(run["acked_rps"])
                if not ok:
                    failures.append(f"{name} round {round_no}")
            base = runs["baseline"]
            print(f"[{round_no}] {'baseline (200, nothing stored)':31s} {base['rps']:8.0f} req/s")
            for name, _ in variants:
                run, check = runs[name], runs[name]["check"]
                ratios[name].append(run["rps"] / base["rps"])
                print(
                    f"[{round_no}] {name:31s} {run['acked_rps']:8.0f} acked (and stored)/s, "
                    f"ratio to baseline {run['rps'] / base['rps']:.2f}; acked {run['acked']}, "
                    f"stored {check['stored']}, non-2xx {run['non_2xx']}, socket errors {run['socket_errors']}, "
                    f"undecodable {check['undecodable']}, duplicate ids {check['duplicates']}, "
                    f"torn tail {check['torn_tail']} -> {'OK' if run['ok'] else 'FAIL'}"
                )
        print(f"median baseline {statistics.median(rates['baseline']):.0f} req/s")
        for name, _ in variants:
            median = statistics.median(rates[name])
            verdict = "meets" if median >= TARGET else "BELOW"
            print(
                f"median {name}: {median:.0f} stored postbacks/s, ratio {statistics.median(ratios[name]):.2f} "
                f"of baseline -> {verdict} the {TARGET:.0f}/s target (shared 2-core machine: noisy)"
            )

        if not args.no_kill:
            log = os.path.join(tmp, "killed.log")
            url_file = log + ".url"
            cmd = [sys.executable, "-m", "skycore_lab.cli", "listen", "--quiet", "--log", log, "--url-file", url_file]
            proc, url = _start(cmd, url_file)
            run = _wrk(url, lua, args, args.duration, kill=proc)
            _stop(proc)
            check = _check_log(log)
            ok = check["stored"] >= run["acked"] and not check["undecodable"] and not check["duplicates"]
            print(
                f"kill -9 at {args.duration / 2:g} s: acked {run['acked']}, stored {check['stored']} "
                f"(stored - acked = {check['stored'] - run['acked']}), undecodable {check['undecodable']}, "
                f"torn tail {check['torn_tail']} -> {'OK' if ok else 'FAIL'}"
            )
            if not ok:
                failures.append("kill -9")
    if failures:
        print("FAILED: " + ", ".join(failures))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
