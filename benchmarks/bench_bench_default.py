"""The default at the bench: ``hil train`` through the real driver, per curve source, clean and noisy.

Usage: HIL_TRACE=SP291D1NR100.dat python benchmarks/bench_bench_default.py [--seeds 2000]
       [--budget-min 90] [--json out.json] [--sources learned,calibration,oracle]

Per seed and condition, the emulated instrument (``hil emulate``'s server) replays
the reference trace SP291D1NR100 on 127.0.0.1 over a real TCP socket, and
``VisaBackend`` (the real driver code: PyVISA, the wire protocol, ``ProtocolBackend``)
trains the reference task with the default config (``RunConfig()``: the recommended
settings) and one curve source:

- ``learned``: no curve given, learned in situ (the default on hardware);
- ``calibration``: ``calibrate()`` (``hil characterize --all``: reset, 50 pulses with a
  read after each, every device) through the same link first, then the run on its
  curves; its cost is counted in the run's;
- ``oracle``: the emulator's own exact nominal curve (``--device-curve oracle``), read from
  the emulator directly, the mark no instrument can reach.

Conditions: ``clean`` (the trace as is) and ``noisy``: ``range_sigma`` 0.1 (devices
differ in range and step), ``step_noise`` 0.05, ``read_noise`` 0.01, ``stuck_fraction``
0.02 (the issue's values; the trace's own pulse-to-pulse spread, 18 of 49 steps
downward, is already in both). A draw is *feasible* when, with every device's true
curve (the bench looks inside the emulator: scale, stuck devices), some reachable
weights separate the patterns at some gain. Prints, per source and condition, the
converged share of all and of the feasible draws with 95 % Wilson intervals, and
pulses, resets and instrument seconds per run (median, 99th percentile; start resets,
probes, recoveries and the calibration included). One process (the machine is shared);
``--budget-min`` stops early and says how many seeds were done.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from crossbar_hil.drivers.visa_backend import VisaBackend
from crossbar_hil.emulator.crossbar import EmulatedCrossbar, EmulatorConfig
from crossbar_hil.emulator.testing import running_server
from crossbar_hil.procedures.calibrate import calibrate
from crossbar_hil.procedures.training import ORACLE_LABEL, run_training
from crossbar_hil.reports.stats import wilson_interval
from crossbar_hil.resources import trace_from_env
from crossbar_hil.training.config import RunConfig
from crossbar_hil.training.feasibility import NeedSpec, check_feasibility
from crossbar_hil.training.task import Task

CONDITIONS: dict[str, dict[str, float]] = {
    "clean": {},
    "noisy": {"range_sigma": 0.1, "step_noise": 0.05, "read_noise": 0.01, "stuck_fraction": 0.02},
}
SOURCES = ("learned", "calibration", "oracle")
CALIBRATION_PULSES = 50
TASK = Task.reference()


@dataclass
class Outcome:
    """One run: converged or not, and what it cost (calibration included)."""

    converged: bool
    outcome: str
    pulses: int
    resets: int
    instrument_s: float


def feasible_draw(emu: EmulatorConfig) -> bool:
    """Can reachable weights separate the training patterns at some gain, on the devices' true curves?"""
    xb = EmulatedCrossbar(emu)
    curve = xb.device_curve_siemens()
    scale = np.ones((emu.rows, emu.cols)) if xb.range_scale is None else xb.range_scale
    true = scale[..., None] * curve * (~xb.stuck)[..., None]
    report = check_feasibility(TASK, NeedSpec(np.inf, 0.8, -0.8), xb.read_conductances(), true)
    return report.feasible


def one_run(emu: EmulatorConfig, source: str) -> Outcome:
    """The default run through VisaBackend over TCP against the emulated instrument."""
    training: dict[str, Any] = {}
    pulses = resets = 0
    instrument_s = 0.0
    with running_server(emu, transport="tcp") as server:
        backend = VisaBackend.from_params({"resource": server.resource_string, "timeout_s": 10.0})
        if source == "calibration":
            cal = calibrate(backend, CALIBRATION_PULSES)
            training = cal.training_update()
            pulses += CALIBRATION_PULSES * len(cal.devices)
            resets += len(cal.devices)
            instrument_s += cal.instrument_time_s
        elif source == "oracle":
            curve = EmulatedCrossbar(emu).device_curve_siemens()
            training = {"device_curve_siemens": tuple(curve.tolist()), "device_curve_label": ORACLE_LABEL}
        run = run_training(RunConfig(training=training), backend=backend)
    r = run.result
    start_resets = len(r.start_reset_devices)
    return Outcome(
        converged=r.converged,
        outcome=str(r.outcome),
        pulses=pulses + r.total_pulses + r.probe_pulses,
        resets=resets + start_resets + r.probe_resets + r.total_resets,
        instrument_s=instrument_s + r.instrument_time_s + r.probe_time_s + start_resets * 1.0,
    )


def summarise(runs: list[Outcome], feasible: list[bool]) -> dict[str, Any]:
    """Shares with Wilson intervals and cost figures of one source under one condition."""
    n, conv = len(runs), sum(r.converged for r in runs)
    nf = sum(feasible)
    conv_f = sum(r.converged for r, f in zip(runs, feasible, strict=True) if f)
    out: dict[str, Any] = {
        "n": n,
        "converged": conv,
        "share": conv / n if n else float("nan"),
        "ci": wilson_interval(conv, n),
        "feasible": nf,
        "share_feasible": conv_f / nf if nf else float("nan"),
        "ci_feasible": wilson_interval(conv_f, nf) if nf else (float("nan"), float("nan")),
        "outcomes": {k: sum(r.outcome == k for r in runs) for k in sorted({r.outcome for r in runs})},
    }
    for name in ("pulses", "resets", "instrument_s"):
        values = np.array([getattr(r, name) for r in runs], dtype=float)
        out[name] = (float(np.median(values)), float(np.percentile(values, 99))) if n else (0.0, 0.0)
    return out


def table(summary: dict[str, dict[str, dict[str, Any]]]) -> str:
    """The results as a Markdown table."""
    lines = [
        "| condition | curve source | seeds | converged (all) [95 % CI] | converged (feasible) [95 % CI] "
        "| pulses med / p99 | resets med / p99 | instrument s med / p99 |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for cond, per in summary.items():
        for source, s in per.items():
            lo, hi = s["ci"]
            flo, fhi = s["ci_feasible"]
            lines.append(
                f"| {cond} | {source} | {s['n']} | {100 * s['share']:.2f} % [{100 * lo:.2f}, {100 * hi:.2f}] "
                f"| {100 * s['share_feasible']:.2f} % of {s['feasible']} [{100 * flo:.2f}, {100 * fhi:.2f}] "
                f"| {s['pulses'][0]:.0f} / {s['pulses'][1]:.0f} "
                f"| {s['resets'][0]:.0f} / {s['resets'][1]:.0f} "
                f"| {s['instrument_s'][0]:.1f} / {s['instrument_s'][1]:.1f} |"
            )
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seeds", type=int, default=2000)
    p.add_argument("--first-seed", type=int, default=0)
    p.add_argument("--budget-min", type=float, default=float("inf"), help="Stop after this many minutes.")
    p.add_argument("--sources", default=",".join(SOURCES))
    p.add_argument("--conditions", default=",".join(CONDITIONS))
    p.add_argument("--json", type=Path, help="Write the per-run outcomes and the summary here.")
    args = p.parse_args()
    trace = trace_from_env()
    if trace is None:
        sys.exit("set HIL_TRACE to the reference trace SP291D1NR100.dat")
    sources = args.sources.split(",")
    conditions = args.conditions.split(",")
    runs: dict[str, dict[str, list[Outcome]]] = {c: {s: [] for s in sources} for c in conditions}
    feasible: dict[str, list[bool]] = {c: [] for c in conditions}
    start = time.monotonic()
    total = args.seeds * len(conditions)
    done = 0
    stopped_early = False
    # Seeds in the outer loop, so that a budget cut leaves every source and condition with the same seeds.
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        if (time.monotonic() - start) / 60 > args.budget_min:
            stopped_early = True
            break
        for cond in conditions:
            emu = EmulatorConfig(seed=seed, trace=trace, **CONDITIONS[cond])
            feasible[cond].append(feasible_draw(emu))
            for source in sources:
                runs[cond][source].append(one_run(emu, source))
            done += 1
        elapsed = time.monotonic() - start
        rates = " ".join(
            f"{c[0]}:{s[0]}={100 * np.mean([r.converged for r in runs[c][s]]):.1f}%"
            for c in conditions
            for s in sources
        )
        print(
            f"\r[{done}/{total}] {elapsed / 60:.1f} min, "
            f"~{elapsed / done * (total - done) / 60:.0f} min left  {rates}",
            end="",
            file=sys.stderr,
            flush=True,
        )
    print(file=sys.stderr)
    summary = {c: {s: summarise(runs[c][s], feasible[c]) for s in sources} for c in conditions}
    n_done = len(next(iter(feasible.values())))
    cut = f"; stopped by the {args.budget_min:g} min budget, {args.seeds} asked)" if stopped_early else ")"
    last = args.first_seed + n_done - 1
    print(f"trace {trace.name}, seeds {args.first_seed}..{last} ({n_done} per cell{cut}")
    print(
        f"through VisaBackend over TCP (127.0.0.1) against the emulated instrument; "
        f"{(time.monotonic() - start) / 60:.1f} min"
    )
    print(table(summary))
    for cond in conditions:
        for source in sources:
            print(f"{cond:5s} {source:11s} outcomes: {summary[cond][source]['outcomes']}")
    if args.json is not None:
        args.json.write_text(
            json.dumps(
                {
                    "summary": summary,
                    "feasible": feasible,
                    "runs": {c: {s: [asdict(r) for r in v] for s, v in p.items()} for c, p in runs.items()},
                },
                indent=1,
            )
        )


if __name__ == "__main__":
    main()
