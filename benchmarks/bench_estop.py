"""Stop and emergency-stop latency while anonymous clients hammer the service's expensive reads.

Usage: python benchmarks/bench_estop.py [--png 100] [--sse 100] [--load-s 3] [--reply-delay 0.002]
       [--epochs 300] [--timeout 120]

Processes: the service (``hil serve`` on 127.0.0.1), the load (``--png`` clients fetching
the figures of a finished run as fast as they can and ``--sse`` clients replaying that
run's whole event stream again and again, none with a token), and this script, which
serves the emulated instrument over TCP (each reply delayed by ``--reply-delay`` s, like a
real controller) and stamps every command line it receives. A training run goes through
the VISA driver to that instrument; after ``--load-s`` s of load the script sends
``POST /runs/{id}/stop`` (then, on a second run, ``POST /emergency-stop``) and prints, for
each: the request's answer time, the time from the request to the ``ABOR`` line at the
instrument, and the pulse batches (``PULS`` / ``PULS:LIST`` lines) the instrument received
after the request. Target: ``ABOR`` within 0.5 s. Also prints what the load got (answers
by status: 503 = turned away while busy) so that the bound is seen with the load it held.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from bench_service import AUTH, SERVING, process

PLOT_NAMES = ("conductances", "weights", "activations", "error", "final_conductances")
PULSES = ("PULS", "PULS:LIST")
ENDED = ("stopped", "converged", "not_converged", "failed", "interrupted")


@contextmanager
def service(database: Path) -> Iterator[str]:
    """``hil serve`` on a free loopback port for the block (bench_service's launcher); yields its URL."""
    args = ["-m", "crossbar_hil.api", "serve", "--port", "0", "--database", str(database), "--no-access-log"]
    with process(args, SERVING, "stderr") as (url, _):
        yield url


class Stamps:
    """Every command line the instrument received, with when this process saw it (monotonic s)."""

    def __init__(self, server: Any) -> None:
        self.server = server
        self.lines: list[tuple[float, str]] = []
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        record = self.server.record
        seen = record.total
        while not self._done.is_set():
            record.wait_for(seen + 1, 0.01)
            total = record.total
            if total > seen:
                t = time.monotonic()
                self.lines += [(t, line) for line in record.lines(seen, total)]
                seen = total

    def after(self, t0: float) -> list[tuple[float, str]]:
        return [(t, line) for t, line in list(self.lines) if t >= t0]

    def close(self) -> None:
        self._done.set()
        self._thread.join()


async def _png(client: httpx.AsyncClient, run_id: str, k: int, stop: Any, got: Counter[str]) -> None:
    i = k
    while not stop.is_set():
        try:
            r = await client.get(f"/runs/{run_id}/plots/{PLOT_NAMES[i % len(PLOT_NAMES)]}.png")
            got[f"png {r.status_code}"] += 1
        except httpx.HTTPError as e:
            got[f"png {type(e).__name__}"] += 1
        i += 1


async def _sse(client: httpx.AsyncClient, run_id: str, stop: Any, got: Counter[str]) -> None:
    while not stop.is_set():
        try:
            async with client.stream("GET", f"/runs/{run_id}/events") as r:
                async for _ in r.aiter_lines():
                    if stop.is_set():
                        break
            got[f"sse {r.status_code}"] += 1
        except httpx.HTTPError as e:
            got[f"sse {type(e).__name__}"] += 1


def load(url: str, run_id: str, png: int, sse: int, stop: Any, out: Any) -> None:
    """The anonymous load, in a process of its own, until ``stop`` is set; sends its tallies to ``out``."""

    async def main() -> Counter[str]:
        got: Counter[str] = Counter()
        limits = httpx.Limits(max_connections=png + sse + 10)
        async with httpx.AsyncClient(base_url=url, timeout=300, limits=limits) as client:
            tasks = [_png(client, run_id, k, stop, got) for k in range(png)]
            tasks += [_sse(client, run_id, stop, got) for _ in range(sse)]
            await asyncio.gather(*tasks)
        return got

    out.send(asyncio.run(main()))


def wait_status(
    client: httpx.Client, run_id: str, wanted: tuple[str, ...], timeout_s: float
) -> dict[str, Any]:
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        run = client.get(f"/runs/{run_id}").json()
        if run["status"] in wanted:
            return run
        time.sleep(0.05)
    raise TimeoutError(f"run {run_id} not {wanted} within {timeout_s} s")


def measure(
    kind: str,
    url: str,
    client: httpx.Client,
    stamps: Stamps,
    body: dict[str, Any],
    finished: str,
    args: argparse.Namespace,
) -> None:
    """One stop (``kind`` = stop or estop) under load; prints its figures."""
    r = client.post("/runs", json=body, headers=AUTH)
    r.raise_for_status()
    run_id = r.json()["id"]
    wait_status(client, run_id, ("running",), 60)
    ctx = multiprocessing.get_context("spawn")
    tallies, out = ctx.Pipe(duplex=False)
    stop = ctx.Event()
    worker = ctx.Process(target=load, args=(url, finished, args.png, args.sse, stop, out))
    worker.start()
    time.sleep(args.load_s)
    t0 = time.monotonic()
    try:
        if kind == "stop":
            answer = client.post(f"/runs/{run_id}/stop", headers=AUTH, timeout=args.timeout)
        else:
            answer = client.post(
                "/emergency-stop", headers=AUTH, json={"reason": "bench"}, timeout=args.timeout
            )
        answered = f"{answer.status_code} after {time.monotonic() - t0:.3f} s"
    except httpx.HTTPError as e:
        answered = f"{type(e).__name__} after {time.monotonic() - t0:.3f} s"
    abort_at = None
    while time.monotonic() - t0 < args.timeout:
        abort_at = next((t for t, line in stamps.after(t0) if line.startswith("ABOR")), None)
        if abort_at is not None:
            break
        time.sleep(0.01)
    time.sleep(0.5)  # Anything still sent after the abort is counted too.
    after = stamps.after(t0)
    batches = sum(1 for _, line in after if line.split(" ")[0].upper() in PULSES)
    stop.set()
    got = tallies.recv() if tallies.poll(args.timeout) else Counter({"(load did not end)": 1})
    worker.join(5)
    worker.terminate()
    abor = f"{abort_at - t0:.3f} s" if abort_at is not None else f"none within {args.timeout} s"
    print(
        f"{kind:5}: answered {answered}; request -> ABOR at the instrument {abor}; "
        f"pulse batches after the request: {batches}"
    )
    print(f"       load meanwhile (until stopped): {dict(sorted(got.items()))}")
    if kind == "estop":
        client.delete("/emergency-stop", headers=AUTH)
    wait_status(client, run_id, ENDED, 120)


def main() -> None:
    from crossbar_hil.emulator.instrument.faults import FaultPlan
    from crossbar_hil.emulator.testing import running_server

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--png", type=int, default=100, help="Anonymous clients fetching PNG figures.")
    ap.add_argument("--sse", type=int, default=100, help="Anonymous clients replaying an SSE backlog.")
    ap.add_argument("--load-s", type=float, default=3.0, help="Load before the stop is sent (s).")
    ap.add_argument("--reply-delay", type=float, default=0.002, help="Instrument reply delay (s).")
    ap.add_argument("--epochs", type=int, default=1000, help="Epochs of the finished run (its backlog).")
    ap.add_argument("--timeout", type=float, default=120.0, help="Longest wait for the ABOR (s).")
    ap.add_argument("--only", choices=["stop", "estop"], help="Measure only this one.")
    args = ap.parse_args()
    with (
        tempfile.TemporaryDirectory() as tmp,
        service(Path(tmp) / "bench.sqlite3") as url,
        running_server(faults=FaultPlan(reply_delay_s=args.reply_delay)) as server,
        httpx.Client(base_url=url, timeout=60) as client,
    ):
        stamps = Stamps(server)
        # The finished run the load reads: many epochs, so its figures and backlog are big.
        backlog = {
            "backend": {"name": "emulator", "params": {"seed": 0}},
            "preset": "reference",
            "training": {"max_epochs": args.epochs, "patience": 0},
        }
        r = client.post("/runs", json=backlog, headers=AUTH)
        r.raise_for_status()
        finished = wait_status(client, r.json()["id"], ENDED, 600)
        print(
            f"finished run read by the load: {finished['epochs']} epochs, {finished['last_event_id']} events"
        )
        body = {
            "backend": {"name": "visa", "params": {"resource": server.resource_string, "timeout_s": 10}},
            "preset": "reference",
            "training": {"max_epochs": 100000, "patience": 0},
        }
        print(
            f"load: {args.png} PNG fetchers, {args.sse} SSE backlog readers, {args.load_s:g} s before "
            f"the request; instrument reply delay {args.reply_delay * 1e3:g} ms"
        )
        for kind in ("stop", "estop"):
            if args.only in (None, kind):
                measure(kind, url, client, stamps, body, finished["id"], args)
        stamps.close()


if __name__ == "__main__":
    main()
