#!/usr/bin/env python3
"""Half-open connections against a running Switchboard: do they lock others out or grow its memory?

Starts `switchboard run` (every role, the embedded default, no embedder) in a scratch data directory,
then opens N connections to its HTTP listener, each sending the start of a request head and never
finishing it (a slowloris), from two client processes. While they are held it asks GET /healthz on a
fresh connection from another address (127.0.0.2) every half second, and it samples the server's resident memory. It prints:
  - how many connections were opened, and how many the server closed at once (past
    http.max_connections) or at the head deadline (http.header_read_timeout_secs);
  - /healthz while they were held: answers, median and slowest;
  - the server's RSS before, at its peak while they were held, and after.

    scripts/bench-half-open.py [--connections N] [--binary PATH] [--json]

A benchmark, not a test: it prints figures. Needs an open-file limit above N / 2 per process.
"""

import argparse
import asyncio
import http.client
import json
import multiprocessing
import os
import queue
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

# The half-open connections come from 127.0.0.1, everyone else from here (all of 127.0.0.0/8 is local
# on Linux).
EVERYONE_ELSE = "127.0.0.2"
# Seconds a connect may take before it counts as refused.
CONNECT_WITHIN = 5.0
HEAD = b"POST /v1/tickets HTTP/1.1\r\nHost: switchboard\r\nContent-Type: application/json\r\n"


def rss_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


async def hold(host, port, n, hold_secs, out):
    """Opens n half-sent heads; reports how many opened and how long after its opening the server
    closed each."""
    opened, refused, closed_at = 0, 0, []

    end = time.monotonic() + hold_secs

    async def one():
        nonlocal opened, refused
        try:
            # A listener whose accept queue is full leaves the handshake unanswered.
            reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), CONNECT_WITHIN)
            writer.write(HEAD)
            await writer.drain()
        except (OSError, asyncio.TimeoutError):
            refused += 1
            return
        opened += 1
        since = time.monotonic()
        try:
            # Reads until the server closes (EOF or reset), or the hold ends.
            await asyncio.wait_for(reader.read(), max(0.0, end - time.monotonic()))
            closed_at.append(time.monotonic() - since)
        except asyncio.TimeoutError:
            pass  # still open when the hold ended
        except OSError:
            closed_at.append(time.monotonic() - since)
        finally:
            writer.close()

    tasks = []
    for _ in range(n):
        tasks.append(asyncio.create_task(one()))
        if len(tasks) % 500 == 0:
            await asyncio.sleep(0)
    await asyncio.gather(*tasks)
    out.put({"opened": opened, "refused": refused, "closed_at": closed_at})


def worker(host, port, n, hold_secs, out):
    asyncio.run(hold(host, port, n, hold_secs, out))


def healthz(addr):
    """GET /healthz from another client address than the half-open connections'."""
    host, port = addr.rsplit(":", 1)
    started = time.monotonic()
    try:
        conn = http.client.HTTPConnection(host, int(port), timeout=5, source_address=(EVERYONE_ELSE, 0))
        conn.request("GET", "/healthz")
        status = conn.getresponse().status
        conn.close()
        return status, (time.monotonic() - started) * 1000
    except Exception:
        return None, (time.monotonic() - started) * 1000


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--connections", type=int, default=20000)
    p.add_argument("--hold-secs", type=float, default=30.0, help="how long the clients hold their connections at most")
    p.add_argument("--binary", default=None, help="default: target/release/switchboard, else target/debug/switchboard")
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    binary = args.binary or next(
        (b for b in (f"{repo}/target/release/switchboard", f"{repo}/target/debug/switchboard") if os.path.exists(b)),
        None,
    )
    if not binary:
        sys.exit("bench-half-open: no switchboard binary: cargo build --release --bin switchboard")

    work = tempfile.mkdtemp(prefix="half-open-")
    env = {k: v for k, v in os.environ.items() if not k.startswith("SWITCHBOARD") and k != "RUST_LOG"}
    env.update({
        "SWITCHBOARD__DATA_DIR": work,
        "SWITCHBOARD__HTTP__ADDR": "127.0.0.1:0",
        "SWITCHBOARD__GRPC__ADDR": "127.0.0.1:0",
        "SWITCHBOARD__EMBEDDER__KIND": "none",
        "SWITCHBOARD__TELEMETRY__LOG_FORMAT": "json",
    })
    log_path = os.path.join(work, "switchboard.log")
    server = subprocess.Popen([binary, "run"], env=env, stdout=subprocess.DEVNULL, stderr=open(log_path, "w"))
    try:
        addr = None
        for _ in range(600):
            found = re.search(r'"http_addr":"([^"]+)"', open(log_path).read())
            if found:
                addr = found.group(1)
                break
            if server.poll() is not None:
                sys.exit(f"bench-half-open: switchboard run exited: {open(log_path).read()[-2000:]}")
            time.sleep(0.2)
        if not addr:
            sys.exit("bench-half-open: switchboard run did not start within 120 s")
        host, port = addr.rsplit(":", 1)
        time.sleep(1)
        before = rss_mib(server.pid)

        out = multiprocessing.Queue()
        halves = [args.connections // 2, args.connections - args.connections // 2]
        started = time.monotonic()
        clients = [multiprocessing.Process(target=worker, args=(host, int(port), n, args.hold_secs, out)) for n in halves]
        for c in clients:
            c.start()
        answers, peak, results = [], before, []
        # Read the results as they come: a client cannot exit before its result is taken.
        while len(results) < len(clients):
            answers.append(healthz(addr))
            peak = max(peak, rss_mib(server.pid))
            try:
                results.append(out.get(timeout=0.5))
            except queue.Empty:
                pass
        for c in clients:
            c.join()
        seconds = time.monotonic() - started
        time.sleep(2)
        after = rss_mib(server.pid)
    finally:
        server.terminate()
        server.wait(timeout=30)
        shutil.rmtree(work, ignore_errors=True)

    closed_at = sorted(t for r in results for t in r["closed_at"])
    opened = sum(r["opened"] for r in results)
    ok = [ms for status, ms in answers if status == 200]
    summary = {
        "connections": args.connections,
        "opened": opened,
        "refused_on_connect": sum(r["refused"] for r in results),
        "closed_by_the_server_within_1s": sum(1 for t in closed_at if t < 1.0),
        "closed_by_the_server_later": sum(1 for t in closed_at if t >= 1.0),
        "longest_open_seconds": round(closed_at[-1], 1) if closed_at else None,
        "held_to_the_end": opened - len(closed_at),
        "healthz_asked": len(answers),
        "healthz_answered": len(ok),
        "healthz_median_ms": round(statistics.median(ok), 1) if ok else None,
        "healthz_slowest_ms": round(max(ok), 1) if ok else None,
        "rss_before_mib": round(before, 1),
        "rss_peak_mib": round(peak, 1),
        "rss_after_mib": round(after, 1),
        "seconds": round(seconds, 1),
        "binary": os.path.relpath(binary, repo),
    }
    if not args.json:
        s = summary
        print(f"half-open: {s['opened']} of {s['connections']} connections opened ({s['refused_on_connect']} refused or unanswered within {CONNECT_WITHIN:.0f} s)")
        print(f"closed     {s['closed_by_the_server_within_1s']} by the server within 1 s, {s['closed_by_the_server_later']} later "
              f"(the longest after {s['longest_open_seconds']} s open); {s['held_to_the_end']} still open at the end")
        print(f"healthz    {s['healthz_answered']} of {s['healthz_asked']} answered, median {s['healthz_median_ms']} ms, "
              f"slowest {s['healthz_slowest_ms']} ms")
        print(f"rss        {s['rss_before_mib']} MiB before, {s['rss_peak_mib']} MiB at the peak, {s['rss_after_mib']} MiB after")
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
