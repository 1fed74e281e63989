"""Memory of the emulator's instrument server under long use, and how fast it refuses newcomers.

Usage: python benchmarks/bench_server_memory.py [--commands N] [--connections N]
       [--big-lines N] [--newcomers N] [--checkout DIR]

Starts ``hil emulate`` (``python -m crossbar_hil.api emulate --tcp 127.0.0.1:0``) as a child process
from ``--checkout`` (default: this repository; give another checkout to measure an older
version the same way), then, as one client after another:

1. sends ``--commands`` commands (``MEAS:G?``) over one connection, pipelined by 1,000;
2. opens ``--connections`` connections, one command each;
3. sends ``--big-lines`` lines of 1 MiB (each refused with ``ERR 102``), then leaves;
4. while one client holds the instrument, connects ``--newcomers`` clients at once and
   times how long each waits until it is answered or closed (refused).

It prints the child's resident memory (VmRSS, MB) after each phase, and the refusal times.
The test ``tests/emulator/test_server_abuse.py`` checks a loose bound on the same kind of load.
"""

from __future__ import annotations

import argparse
import os
import re
import select
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NL = b"\n"


def rss_mb(pid: int) -> float:
    """Resident memory of process ``pid`` (MB)."""
    text = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmRSS:\s+(\d+)", text).group(1)) / 1024


def read_lines(sock: socket.socket, n: int, buffer: bytearray) -> None:
    """Read ``n`` reply lines (fails after 30 s without progress)."""
    while buffer.count(b"\n") < n:
        if not select.select([sock], [], [], 30)[0]:
            raise TimeoutError(f"{buffer.count(NL)} of {n} replies")
        chunk = sock.recv(1 << 20)
        if not chunk:
            raise ConnectionError("closed by the server")
        buffer += chunk
    for _ in range(n):
        del buffer[: buffer.index(b"\n") + 1]


def pipelined(address: tuple[str, int], line: bytes, n: int, batch: int = 1000) -> None:
    """Send ``n`` copies of ``line`` over one connection, ``batch`` at a time, reading every reply."""
    with socket.create_connection(address) as sock:
        buffer = bytearray()
        for start in range(0, n, batch):
            k = min(batch, n - start)
            sock.sendall(line * k)
            read_lines(sock, k, buffer)


def refusal_times(address: tuple[str, int], n: int) -> list[float]:
    """While one client holds the instrument: connect ``n`` newcomers at once; the seconds each
    waits until the server answers or closes it (in connection order)."""
    with socket.create_connection(address) as owner:
        owner.sendall(b"*IDN?\n")
        read_lines(owner, 1, bytearray())
        socks, started, waited = [], [], {}
        for _ in range(n):
            started.append(time.monotonic())
            socks.append(socket.create_connection(address))
        deadline = time.monotonic() + 120
        while len(waited) < n and time.monotonic() < deadline:
            pending = [s for s in socks if s not in waited]
            for s in select.select(pending, [], [], 1.0)[0]:
                waited[s] = time.monotonic() - started[socks.index(s)]
        for s in socks:
            s.close()
        return [waited.get(s, float("inf")) for s in socks]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--commands", type=int, default=100_000)
    p.add_argument("--connections", type=int, default=1_000)
    p.add_argument("--big-lines", type=int, default=200)
    p.add_argument("--newcomers", type=int, default=100)
    p.add_argument("--checkout", type=Path, default=ROOT, help="Repository whose server to measure.")
    args = p.parse_args(argv)

    env = {**os.environ, "PYTHONPATH": str(args.checkout)}
    child = subprocess.Popen(
        [sys.executable, "-m", "crossbar_hil.api", "emulate", "--tcp", "127.0.0.1:0"],
        cwd=args.checkout,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,  # one warning per refused newcomer
        text=True,
    )
    try:
        port = None
        while port is None:
            line = child.stdout.readline()
            if not line:
                raise RuntimeError("the server did not start")
            if m := re.search(r"socket://127\.0\.0\.1:(\d+)", line):
                port = int(m.group(1))
        address = ("127.0.0.1", port)
        pipelined(address, b"*IDN?\n", 100)
        print(f"checkout: {args.checkout}")
        print(f"{'phase':<44} {'server RSS (MB)':>16}")
        print(f"{'started, 100 commands':<44} {rss_mb(child.pid):>16.1f}")

        t0 = time.perf_counter()
        pipelined(address, b"MEAS:G? 0,0,0.05\n", args.commands)
        rate = args.commands / (time.perf_counter() - t0)
        print(f"{f'+ {args.commands:,} commands, one connection':<44} {rss_mb(child.pid):>16.1f}")
        for _ in range(args.connections):
            pipelined(address, b"*CLS\n", 1)
        print(f"{f'+ {args.connections:,} connections, one command each':<44} {rss_mb(child.pid):>16.1f}")
        big = b"MEAS:G? 0,0," + b"1" * ((1 << 20) - 20) + b"\n"
        pipelined(address, big, args.big_lines, batch=1)
        print(f"{f'+ {args.big_lines} lines of 1 MiB (client gone)':<44} {rss_mb(child.pid):>16.1f}")
        print(f"throughput: {rate:,.0f} commands/s pipelined")

        waits = refusal_times(address, args.newcomers)
        finite = [w for w in waits if w != float("inf")]
        print(
            f"refusals of {args.newcomers} newcomers connected at once: "
            f"newcomer #{args.newcomers} waited {waits[-1]:.3f} s, slowest {max(waits):.3f} s, "
            f"median {sorted(finite)[len(finite) // 2]:.3f} s"
        )
    finally:
        child.terminate()
        child.wait(10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
