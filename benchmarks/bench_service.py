"""Load on the run-control service while a run trains: latency, throughput, training slowdown.

Usage: python benchmarks/bench_service.py [--clients 100] [--followers 10] [--interval 0.1]
       [--reply-delay 0.002] [--epochs 100] [--repeats 3] [--backend visa|emulator] [--queue 3]

Three processes: the service (``hil serve``), the emulated instrument (``hil emulate``,
each reply delayed by ``--reply-delay`` s, like a real controller), and this script,
the load. A training run goes through the VISA driver to the instrument. The same
run is timed alternately without load and with ``--clients`` keep-alive HTTP
clients each polling ``GET /runs/{id}`` every ``--interval`` s (0 = as fast as
they can) plus ``--followers`` SSE clients following the run's event stream.
Prints requests per second, p50 / p99 latency of the polls, SSE completeness and
lag, and the slowdown of the run (median loaded / median unloaded duration,
from the run's own start and end times). Targets: p99 < 50 ms, slowdown < 5 %.
``--control`` also times the run with the pollers on a second, idle service
process: what the same load costs this machine apart from the service (on a
small shared machine that is most of the slowdown). ``--backend emulator`` trains
on the emulator instead (CPU-bound, in the run's own process). ``--queue N`` puts the
instrument's queue in use: while each loaded run trains, N more runs (one epoch each) are
posted with ``"if_busy": "queue"``; they wait in its queue, start one after another when the
loaded run ends, and are waited for before the next unloaded run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import numpy as np

TOKEN = "bench-token-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
SERVING = r"Uvicorn running on (http://127\.0\.0\.1:\d+)"


@contextmanager
def process(args: list[str], pattern: str, stream: str) -> Iterator[tuple[str, int]]:
    """A subprocess of this Python; yields the first match of ``pattern`` in its ``stream`` and its pid;
    terminated after."""
    proc = subprocess.Popen(
        [sys.executable, *args],
        stdout=subprocess.PIPE if stream == "stdout" else subprocess.DEVNULL,
        stderr=subprocess.PIPE if stream == "stderr" else subprocess.DEVNULL,
        text=True,
        env={**os.environ, "HIL_TOKEN": TOKEN},
    )
    try:
        pipe = proc.stdout if stream == "stdout" else proc.stderr
        assert pipe is not None
        for line in pipe:
            if m := re.search(pattern, line):
                break
        else:
            raise RuntimeError(f"{args} exited with {proc.wait()}")
        # Keep reading its output (e.g. the access log), or a full pipe would stall the process.
        threading.Thread(target=lambda: [None for _ in pipe], daemon=True).start()
        yield m.group(1), proc.pid
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


async def poller(
    host: str,
    port: int,
    path: str,
    interval: float,
    phase: float,
    done: asyncio.Event,
    latencies: list[float],
) -> int:
    """One keep-alive HTTP/1.1 client polling ``path``; returns how many requests failed."""
    reader, writer = await asyncio.open_connection(host, port)
    request = f"GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode()
    failures = 0
    await asyncio.sleep(phase)
    next_at = time.perf_counter()
    try:
        while not done.is_set():
            t0 = time.perf_counter()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            length = int(re.search(rb"(?i)content-length: *(\d+)", head).group(1))  # type: ignore[union-attr]
            await reader.readexactly(length)
            latencies.append(time.perf_counter() - t0)
            failures += not head.startswith(b"HTTP/1.1 200")
            if interval:
                next_at += interval
                await asyncio.sleep(max(0.0, next_at - time.perf_counter()))
    finally:
        writer.close()
    return failures


async def follower(client: httpx.AsyncClient, run_id: str, lags: list[float]) -> int:
    """Follow the run's SSE stream to its end; returns the last event id received. Appends each
    epoch event's delivery lag (s, from its commit to its arrival here) to ``lags``."""
    last = 0
    async with client.stream("GET", f"/runs/{run_id}/events") as r:
        async for line in r.aiter_lines():
            if line.startswith("id: "):
                last = int(line[4:])
            elif line.startswith("data: ") and '"record"' in line:
                at = datetime.fromisoformat(json.loads(line[6:])["at"])
                lags.append((datetime.now(UTC) - at).total_seconds())
    return last


def cpu_s(pid: int) -> float:
    """CPU time (user + system, s) the process has used so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def duration_s(run: dict[str, Any]) -> float:
    """Seconds from the run's start to its end, by its own timestamps."""
    return (
        datetime.fromisoformat(run["ended_at"]) - datetime.fromisoformat(run["started_at"])
    ).total_seconds()


ACTIVE = ("queued", "running", "stopping")


async def wait_ended(client: httpx.AsyncClient, run_id: str) -> dict[str, Any]:
    """Poll the run (every 50 ms) until it has ended; returns it."""
    while (run := (await client.get(f"/runs/{run_id}")).json())["status"] in ACTIVE:
        await asyncio.sleep(0.05)
    return run


async def one_run(client: httpx.AsyncClient, body: dict[str, Any]) -> dict[str, Any]:
    """Start the run and wait for its end, without load."""
    r = await client.post("/runs", json=body, headers=AUTH)
    r.raise_for_status()
    return await wait_ended(client, r.json()["id"])


async def loaded_run(
    url: str,
    client: httpx.AsyncClient,
    body: dict[str, Any],
    args: argparse.Namespace,
    rng: np.random.Generator,
    elsewhere: tuple[str, str] | None = None,
    lags: list[float] | None = None,
) -> tuple[dict[str, Any], list[float], float, int, list[int]]:
    """The run with the load on; with ``elsewhere`` = (url, path), the pollers load that other
    service instead and there are no followers (the control: what the load costs the machine).

    Returns the run, the poll latencies (s), the load window (s), failed polls, each follower's last event id.
    """
    lags = [] if lags is None else lags
    r = await client.post("/runs", json=body, headers=AUTH)
    r.raise_for_status()
    run_id = r.json()["id"]
    queued = []
    for _ in range(getattr(args, "queue", 0) if elsewhere is None else 0):
        short = {**body, "training": {**body["training"], "max_epochs": 1}, "if_busy": "queue"}
        q = await client.post("/runs", json=short, headers=AUTH)
        q.raise_for_status()
        queued.append(q.json()["id"])
    poll_url, path = elsewhere or (url, f"/runs/{run_id}")
    host, port = poll_url.removeprefix("http://").split(":")
    done = asyncio.Event()
    latencies: list[float] = []
    phases = rng.uniform(0, args.interval or 0.001, args.clients)
    t0 = time.perf_counter()
    pollers = [
        asyncio.create_task(poller(host, int(port), path, args.interval, p, done, latencies)) for p in phases
    ]
    async with httpx.AsyncClient(base_url=url, timeout=60) as sse:
        n = 0 if elsewhere else args.followers
        followers = [asyncio.create_task(follower(sse, run_id, lags)) for _ in range(n)]
        await wait_ended(client, run_id)
        last_ids = list(await asyncio.gather(*followers))
    done.set()
    failures = sum(await asyncio.gather(*pollers))
    window = time.perf_counter() - t0
    for q in queued:  # The queue runs them after the loaded run: done before the next unloaded run.
        await wait_ended(client, q)
    run = (await client.get(f"/runs/{run_id}")).json()
    return run, latencies, window, failures, last_ids


async def bench(
    url: str, pid: int, args: argparse.Namespace, resource: str | None, control_url: str | None
) -> None:
    rng = np.random.default_rng(args.seed)
    if args.backend == "visa":
        backend = {"name": "visa", "params": {"resource": resource, "timeout_s": 10}}
    else:
        backend = {"name": "emulator", "params": {"seed": 0}}
    body = {"backend": backend, "training": {"max_epochs": args.epochs, "patience": 0}}  # All epochs.
    quiet: list[float] = []
    loaded: list[float] = []
    all_latencies: list[float] = []
    requests, window, failures, complete, service_cpu = 0, 0.0, 0, True, 0.0
    control: list[float] = []
    sse_lags: list[float] = []
    elsewhere = None
    if control_url is not None:
        async with httpx.AsyncClient(base_url=control_url, timeout=60) as other:
            quick = {"training": {"max_epochs": 1}}
            elsewhere = (control_url, f"/runs/{(await one_run(other, quick))['id']}")
    async with httpx.AsyncClient(base_url=url, timeout=60) as client:
        await one_run(client, body)  # Warm-up: imports, first connection, caches.
        for _ in range(args.repeats):
            if elsewhere is not None:
                run, *_ = await loaded_run(url, client, body, args, rng, elsewhere)
                control.append(duration_s(run))
            quiet.append(duration_s(await one_run(client, body)))
            cpu0 = cpu_s(pid)
            run, lat, win, fails, last_ids = await loaded_run(url, client, body, args, rng, lags=sse_lags)
            service_cpu += cpu_s(pid) - cpu0
            loaded.append(duration_s(run))
            all_latencies += lat
            requests += len(lat)
            window += win
            failures += fails
            complete &= all(last == run["last_event_id"] for last in last_ids)
    lat_ms = np.array(all_latencies or [np.nan]) * 1e3
    p50, p99 = np.percentile(lat_ms, [50, 99])
    slowdown = statistics.median(loaded) / statistics.median(quiet) - 1
    print(
        f"backend: {args.backend}"
        + (f" (instrument reply delay {args.reply_delay * 1e3:g} ms)" if resource else "")
    )
    print(f"run: {args.epochs} epochs (no patience); {args.repeats} unloaded, as many loaded")
    offered = f"every {args.interval * 1e3:g} ms" if args.interval else "as fast as they can"
    print(f"load: {args.clients} clients polling GET /runs/{{id}} {offered}, {args.followers} SSE followers")
    if args.queue:
        print(f"queue in use: {args.queue} runs queued (if_busy=queue) behind each loaded run")
    print(f"requests: {requests} in {window:.2f} s = {requests / window:.0f} req/s, {failures} not 200")
    print(f"latency: p50 {p50:.2f} ms, p99 {p99:.2f} ms, max {np.max(lat_ms):.2f} ms (target p99 < 50 ms)")
    lag_ms = np.array(sse_lags or [np.nan]) * 1e3
    print(f"SSE: every follower got every event to the end: {complete}")
    lag50, lag99 = np.percentile(lag_ms, [50, 99])
    print(f"SSE epoch event lag (commit to arrival): p50 {lag50:.1f} ms, p99 {lag99:.1f} ms")
    print(
        f"service CPU under load: {service_cpu / window * 100:.0f} % of one core, "
        f"{service_cpu / max(requests, 1) * 1e6:.0f} us per poll (streams included; runs have their own)"
    )
    for name, runs in (("unloaded", quiet), ("loaded  ", loaded)):
        each = ", ".join(f"{d:.3f}" for d in runs)
        print(f"run duration {name}: {each} s (median {statistics.median(runs):.3f})")
    print(f"training slowdown under load: {slowdown * 100:+.1f} % (target < 5 %)")
    if control:
        each = ", ".join(f"{d:.3f}" for d in control)
        median = statistics.median(control)
        print(f"control, the pollers on a second service process: {each} s (median {median:.3f})")
        share = statistics.median(control) / statistics.median(quiet) - 1
        print(f"  slowdown from the load on the machine alone: {share * 100:+.1f} %")


def main() -> None:
    """Start the instrument and the service, run the benchmark, print its figures."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clients", type=int, default=100)
    ap.add_argument("--followers", type=int, default=10)
    ap.add_argument(
        "--interval", type=float, default=0.1, help="Seconds between one client's polls (0 = none)."
    )
    ap.add_argument("--reply-delay", type=float, default=0.002, help="Instrument reply delay (s).")
    ap.add_argument("--epochs", type=int, default=100)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--backend", choices=["visa", "emulator"], default="visa")
    ap.add_argument("--queue", type=int, default=0, help="Runs queued behind each loaded run.")
    ap.add_argument("--no-access-log", action="store_true", help="Serve without the access log.")
    ap.add_argument(
        "--control", action="store_true", help="Also time the run with the pollers on a second service."
    )
    ap.add_argument("--seed", type=int, default=0, help="Seed of the pollers' start phases.")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:

        def serve(name: str) -> list[str]:
            quiet = ["--no-access-log"] if args.no_access_log else []
            return [
                "-m",
                "crossbar_hil.api",
                "serve",
                "--port",
                "0",
                "--database",
                str(Path(tmp) / name),
                *quiet,
            ]

        emulate = ["-m", "crossbar_hil.api", "emulate", "--builtin", "--tcp", "127.0.0.1:0"]
        emulate += ["--reply-delay", str(args.reply_delay)]
        with process(serve("bench.sqlite3"), SERVING, "stderr") as (url, pid), ExitStack() as stack:
            control_url = None
            if args.control:
                control_url, _ = stack.enter_context(process(serve("control.sqlite3"), SERVING, "stderr"))
            resource = None
            if args.backend == "visa":
                resource, _ = stack.enter_context(process(emulate, r"VISA resource: (\S+)", "stdout"))
            asyncio.run(bench(url, pid, args, resource, control_url))


if __name__ == "__main__":
    main()
