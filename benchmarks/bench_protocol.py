"""Cost of the wire protocol: a full training run through a driver vs on EmulatedCrossbar.

Usage: python benchmarks/bench_protocol.py [--runs N] [--epochs E] [--seed S]
       [--transport visa|serial-tcp|serial-pty ...] [--trace PATH]

Starts the emulator's instrument server on 127.0.0.1 (a free port; a pty for
serial-pty), runs the same seeded Manhattan training N times directly on
EmulatedCrossbar and N times through each driver, and prints, per transport:
round trips per update epoch (from the server's command log), epochs per second, the
software overhead per epoch (through the driver minus direct) and the ratio of
the two, both measured in this same invocation. It also checks that the
trajectories are identical. The server is stopped at the end.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path

from crossbar_hil.drivers.protocol_backend import ProtocolBackend
from crossbar_hil.drivers.serial_backend import SerialBackend
from crossbar_hil.drivers.visa_backend import VisaBackend
from crossbar_hil.emulator.crossbar import EmulatedCrossbar, EmulatorConfig
from crossbar_hil.emulator.testing import CommandsPerEpoch, InstrumentServer, running_server
from crossbar_hil.resources import trace_from_env
from crossbar_hil.seam import CrossbarBackend
from crossbar_hil.training.config import TrainingConfig
from crossbar_hil.training.history import TrainingResult, first_difference
from crossbar_hil.training.task import Task
from crossbar_hil.training.trainer import train

Connect = Callable[[InstrumentServer], ProtocolBackend]
CONNECT: dict[str, tuple[str, Connect]] = {
    "visa": ("tcp", lambda s: VisaBackend.from_params({"resource": s.resource_string})),
    "serial-tcp": ("tcp", lambda s: SerialBackend.from_params({"port": s.serial_url})),
    "serial-pty": ("pty", lambda s: SerialBackend.from_params({"port": s.device_path})),
}


def timed(
    runs: int, make: Callable[[], CrossbarBackend], run: Callable[[CrossbarBackend], TrainingResult]
) -> tuple[float, TrainingResult]:
    """Total seconds of ``runs`` calls of ``run``, and the last result.

    Opening and closing the backend are not timed (pyserial's socket:// close alone sleeps 0.3 s).
    """
    total, result = 0.0, None
    for _ in range(runs):
        with make() as backend:
            t0 = time.perf_counter()
            result = run(backend)
            total += time.perf_counter() - t0
    assert result is not None
    return total, result


def connected(server: InstrumentServer, connect: Connect) -> Callable[[], CrossbarBackend]:
    """A factory of drivers to ``server`` whose every device is reset (a fresh crossbar)."""

    def make() -> CrossbarBackend:
        backend = connect(server)
        rows, cols = backend.info.shape
        for r in range(rows):
            for c in range(cols):
                backend.reset(r, c)
        return backend

    return make


def main() -> None:
    """Run the benchmark and print its figures."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=20, help="Runs per backend (default 20).")
    ap.add_argument("--epochs", type=int, default=50, help="max_epochs of each run (default 50).")
    ap.add_argument("--seed", type=int, default=0, help="Emulator seed (default 0).")
    ap.add_argument(
        "--transport",
        action="append",
        choices=sorted(CONNECT),
        help="Transport(s) to measure (default: all).",
    )
    ap.add_argument("--trace", type=Path, default=trace_from_env(), help="Trace (default $HIL_TRACE).")
    args = ap.parse_args()
    task, cfg = Task.reference(), TrainingConfig(max_epochs=args.epochs)
    emu = EmulatorConfig(seed=args.seed, trace=args.trace)

    t_direct, direct = timed(args.runs, lambda: EmulatedCrossbar(emu), lambda b: train(b, task, cfg))
    epochs = len(direct.history)
    direct_s = t_direct / (args.runs * epochs)
    print(
        f"device: {'trace ' + str(args.trace) if args.trace else 'built-in'}, seed {args.seed}; "
        f"{args.runs} runs of {epochs} epochs ({direct.outcome}, {direct.total_pulses} pulses each)"
    )
    print(f"{'direct':<11} {1 / direct_s:>7.0f} epochs/s {direct_s * 1e6:8.1f} us/epoch")

    for name in args.transport or list(CONNECT):
        transport, connect = CONNECT[name]
        with running_server(emu, transport=transport) as server:
            counter = CommandsPerEpoch(server)

            def run(backend: CrossbarBackend, counter: CommandsPerEpoch = counter) -> TrainingResult:
                return train(backend, task, cfg, observers=[counter])

            t_link, through = timed(args.runs, connected(server, connect), run)
            # Every epoch but the last sends an update; the last only measures.
            updates = counter.per_epoch()[:-1]
            trips = sum(sum(c.values()) for c in updates) / max(1, len(updates))
            per_run = sum((server.command_counts() - counter.marks[0]).values())
        link_s = t_link / (args.runs * epochs)
        difference = first_difference(through, direct)
        print(
            f"{name:<11} {1 / link_s:>7.0f} epochs/s {link_s * 1e6:8.1f} us/epoch  "
            f"overhead {(link_s - direct_s) * 1e6:7.1f} us/epoch (x{link_s / direct_s:.1f} direct)  "
            f"{trips:.2f} round trips/update epoch ({per_run}/run with evaluation and close)  "
            f"trajectory {'identical' if difference is None else 'DIFFERENT: ' + difference}"
        )


if __name__ == "__main__":
    main()
