"""``hil experiment lim``: Lim et al.'s study on emulated tiles, as a table of accuracies.

Sections (each a set of work items, one per configuration and seed):

* ``nonlinearity``: methods a, b, c (and Manhattan) against ``beta_nl`` 0..3 at 64 levels;
* ``levels``: methods a, b, c against 32 / 64 / 128 levels at ``beta_nl`` 2;
* ``dead_zone``: methods a, b, c at ``beta_nl`` 2, 64 levels, without the output-error dead
  zone (the literal sign rule; every other row uses the experiment's dead zone);
* ``variation``: method b at ``beta_nl`` 2, 64 levels, trained on-chip on devices with
  the per-device Gaussian scale ``N(1, sigma)`` of range and steps, against trained
  off-chip on ideal devices and then transferred open loop to the varied devices (each
  weight on one device of its pair, the other reset, by the nominal curve:
  :func:`transfer_positions`), for sigma 0, 0.5, 1;
* ``trace``: methods a, b and Manhattan with the measured trace as every device (method c
  needs a depression curve the trace does not have);
* ``software``: the float network trained by SGD (Lim's "SW-based BP").

Every item is plain data and runs anywhere (:func:`run_item`), on the executor that
``hil sweep`` uses (:func:`crossbar_hil.emulator.sweep.run.map_ordered`). Accuracies are
test accuracies after ``epochs`` passes, read on the tiles without read noise: an
emulator has exact reads, a real tile's read noise would lower them.
"""

from __future__ import annotations

import concurrent.futures as cf
import csv
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
from crossbar_hil.emulator.devices import TraceDevice
from crossbar_hil.emulator.network.data import load_dataset
from crossbar_hil.emulator.network.lim_device import lim_device
from crossbar_hil.emulator.network.mlp import NetworkConfig, TileNetwork
from crossbar_hil.emulator.network.reference import FloatMLP
from crossbar_hil.emulator.network.tile_rules import RuleConfig
from crossbar_hil.emulator.network.tiles import MINUS, PLUS, Tile
from crossbar_hil.emulator.sweep.run import map_ordered
from numpy.typing import NDArray
from pydantic import BaseModel, ConfigDict, Field

Section = Literal["nonlinearity", "levels", "dead_zone", "variation", "trace", "software"]
SECTIONS: tuple[Section, ...] = ("nonlinearity", "levels", "dead_zone", "variation", "trace", "software")

PUBLISHED: dict[tuple[str, str, float, int, float, str], float] = {
    **{
        ("nonlinearity", "method_b", b, 64, 0.0, "on-chip"): a
        for b, a in zip((0, 1, 2, 3), (95.36, 95.59, 94.80, 93.71), strict=True)
    },
    **{
        ("levels", "method_b", 2.0, n, 0.0, "on-chip"): a
        for n, a in zip((32, 64, 128), (92.96, 94.80, 94.71), strict=True)
    },
    **{
        ("variation", "method_b", 2.0, 64, s, "on-chip"): a
        for s, a in zip((0.0, 0.5, 1.0), (94.92, 94.81, 94.01), strict=True)
    },
    **{
        ("variation", "method_b", 2.0, 64, s, "off-chip"): a
        for s, a in zip((0.0, 0.5, 1.0), (94.67, 79.24, 57.34), strict=True)
    },
}
"""Lim et al.'s published accuracies (%, MNIST 60k, 784-200-10, one epoch), by
(section, method, beta_nl, levels, sigma, training)."""

COLUMNS: dict[str, str] = {
    "section": "Which study: nonlinearity, levels, dead_zone, variation, trace, software.",
    "method": "Update rule (manhattan, method_a, method_b, method_c) or software (float SGD).",
    "device": "lim (exponential model) or the trace file's name.",
    "beta_nl": "Device nonlinearity (-); empty for a trace.",
    "levels": "Pulses from Gmin to Gmax (table positions - 1).",
    "sigma": "Sd of the per-device scale N(1, sigma) of range and steps (-).",
    "training": "on-chip (trained on the varied devices) or off-chip (ideal, then transferred).",
    "dead_zone": "Output-error dead zone (0: the literal sign rule).",
    "seeds": "Trainings (one per seed).",
    "accuracy_mean": "Mean test accuracy (%).",
    "accuracy_sd": "Sample standard deviation of the test accuracy over seeds (%).",
    "accuracy_min": "Lowest test accuracy over seeds (%).",
    "accuracy_max": "Highest test accuracy over seeds (%).",
    "published": "Lim et al.'s figure for this setting (%, MNIST), empty when none.",
    "pulses_mean": "Programming pulses per training (update and read-verify pulses).",
    "resets_mean": "Device resets per training.",
    "samples_per_s": "Training samples per second of one worker (forward, backward, update).",
}
"""The columns of ``lim.csv``, in order."""


class LimExperiment(BaseModel):
    """What ``hil experiment lim`` runs; defaults are the digits table of the README."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, frozen=True)

    dataset: str = Field("digits", description="digits | mnist5k | idx:TRAIN_IMG,TRAIN_LBL,TEST_IMG,TEST_LBL")
    hidden: int = Field(100, ge=1, le=10_000, description="Hidden neurons (Lim: 200 on MNIST).")
    epochs: int = Field(1, ge=1, le=100, description="Passes over the training set (Lim: 1).")
    batch_size: int = Field(1, ge=1, le=10_000, description="Samples per update (Lim: 1, online).")
    seeds: int = Field(3, ge=1, le=1000, description="Trainings per setting.")
    seed_start: int = Field(0, ge=0)
    hidden_c: float = Field(1.0, gt=0, description="Hard-sigmoid half-width c (weight units).")
    output_gain: float = Field(8.0, gt=0, description="Softmax input per weight unit.")
    output_dead_zone: float = Field(
        0.1, ge=0, lt=1, description="Output-error dead zone of every row but dead_zone's."
    )
    train_samples: int | None = Field(None, ge=1, description="Use only the first N training samples.")
    trace: Path | None = Field(None, description="The measured device of the trace section; None: skipped.")
    sections: tuple[Section, ...] = Field(SECTIONS, description="Sections to run.")


def items(exp: LimExperiment) -> list[dict[str, Any]]:
    """Every work item (a JSON-ready dict), section by section, setting by setting, seed by seed."""
    base = {
        "beta_nl": 2.0,
        "levels": 64,
        "sigma": 0.0,
        "training": "on-chip",
        "dead_zone": exp.output_dead_zone,
    }
    configs: list[dict[str, Any]] = []
    for section in exp.sections:
        at = {**base, "section": section}
        if section == "nonlinearity":
            for m in ("manhattan", "method_a", "method_b", "method_c"):
                configs += [{**at, "method": m, "beta_nl": float(b)} for b in (0, 1, 2, 3)]
        elif section == "levels":
            for m in ("method_a", "method_b", "method_c"):
                configs += [{**at, "method": m, "levels": n} for n in (32, 64, 128)]
        elif section == "dead_zone":
            configs += [{**at, "method": m, "dead_zone": 0.0} for m in ("method_a", "method_b", "method_c")]
        elif section == "variation":
            for t in ("on-chip", "off-chip"):
                configs += [{**at, "method": "method_b", "sigma": s, "training": t} for s in (0.0, 0.5, 1.0)]
        elif section == "trace" and exp.trace is not None:
            levels = TraceDevice(path=exp.trace).table().size - 1
            trace = {**at, "trace": str(exp.trace), "levels": levels, "beta_nl": ""}
            configs += [{**trace, "method": m} for m in ("manhattan", "method_a", "method_b")]
        elif section == "software":
            configs.append({**at, "method": "software"})
    seeds = range(exp.seed_start, exp.seed_start + exp.seeds)
    return [{**c, "seed": k} for c in configs for k in seeds]


def run_item(item: dict[str, Any], experiment: dict[str, Any]) -> dict[str, Any]:
    """Train one network of ``item`` (a dict of :func:`items`) and test it; a row of raw results."""
    exp = LimExperiment.model_validate(experiment)
    data = load_dataset(exp.dataset)
    x, y = data.x_train, data.y_train
    if exp.train_samples is not None:
        x, y = x[: exp.train_samples], y[: exp.train_samples]
    net_cfg = NetworkConfig(
        sizes=(data.n_features, exp.hidden, data.n_classes),
        hidden_c=exp.hidden_c,
        output_gain=exp.output_gain,
        output_dead_zone=item["dead_zone"],
        epochs=exp.epochs,
        batch_size=exp.batch_size,
        seed=item["seed"],
    )
    t0 = time.perf_counter()
    out = {**item, "pulses": 0, "resets": 0}
    if item["method"] == "software":
        out["accuracy"] = 100 * FloatMLP(net_cfg, learning_rate=0.05).fit(x, y, data.x_test, data.y_test)
    else:
        device = (
            TraceDevice(path=Path(item["trace"]))
            if "trace" in item
            else lim_device(item["beta_nl"], item["levels"])
        )
        on_chip = item["training"] == "on-chip"
        devices = {
            "device": device,
            "depression": item["method"] == "method_c",
            "range_sigma": item["sigma"] if on_chip else 0.0,
        }
        net = TileNetwork(net_cfg, devices, RuleConfig(rule=item["method"]))
        result = net.fit(x, y, data.x_test, data.y_test)
        out.update(pulses=result.pulses, resets=result.resets, accuracy=100 * result.test_accuracy)
        if not on_chip:
            varied = TileNetwork(
                net_cfg, {**devices, "range_sigma": item["sigma"]}, RuleConfig(rule="manhattan")
            )
            varied.program([transfer_positions(t.weights_siemens(), t) for t in net.tiles])
            out["accuracy"] = 100 * varied.accuracy(data.x_test, data.y_test)
    out["samples_per_s"] = exp.epochs * len(x) / (time.perf_counter() - t0)
    return out


def transfer_positions(weights_siemens: NDArray[np.float64], tile: Tile) -> NDArray[np.int64]:
    """Open-loop pulse counts that write ``weights_siemens`` (rows, cols) by ``tile``'s nominal curve.

    The side of the weight's sign gets the position whose nominal conductance rise is nearest
    to ``|W|``, the other side stays reset: Lim's off-chip transfer, weights computed without
    variation and programmed without looking at the devices.
    """
    rise = tile.config.scale_k * (tile.state.table - tile.state.table[0])
    env = np.maximum.accumulate(rise)
    w = np.abs(weights_siemens)
    m = np.clip(np.searchsorted(env, w), 1, env.size - 1)
    p = np.where(w - env[m - 1] <= env[m] - w, m - 1, m)
    out = np.zeros((2, *weights_siemens.shape), dtype=np.int64)
    out[PLUS] = np.where(weights_siemens > 0, p, 0)
    out[MINUS] = np.where(weights_siemens < 0, p, 0)
    return out


def run_experiment(
    exp: LimExperiment,
    executor: cf.Executor,
    progress: Callable[[int, int, int], None] | None = None,
) -> list[dict[str, Any]]:
    """Every item of ``exp`` on ``executor`` (a local pool or a Dask client's); raw rows in item order."""
    work = items(exp)
    data = exp.model_dump(mode="json")
    return map_ordered(executor, run_item, [(w, data) for w in work], progress)


def _key(row: dict[str, Any]) -> tuple:
    return tuple(
        row.get(k, "")
        for k in ("section", "method", "trace", "beta_nl", "levels", "sigma", "training", "dead_zone")
    )


def summarize(raw: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per setting (:data:`COLUMNS`), in the order the settings first appear."""
    groups: dict[tuple, list[dict[str, Any]]] = {}
    for r in raw:
        groups.setdefault(_key(r), []).append(r)
    table = []
    for rows in groups.values():
        first = rows[0]
        acc = np.array([r["accuracy"] for r in rows])
        trace = first.get("trace")
        published = PUBLISHED.get(
            (
                first["section"],
                first["method"],
                first["beta_nl"],
                first["levels"],
                first["sigma"],
                first["training"],
            )
        )
        table.append(
            {
                "section": first["section"],
                "method": first["method"],
                "device": Path(trace).name if trace else ("-" if first["method"] == "software" else "lim"),
                "beta_nl": "" if trace or first["method"] == "software" else first["beta_nl"],
                "levels": "" if first["method"] == "software" else first["levels"],
                "sigma": first["sigma"],
                "training": first["training"],
                "dead_zone": first["dead_zone"],
                "seeds": len(rows),
                "accuracy_mean": float(acc.mean()),
                "accuracy_sd": float(acc.std(ddof=1)) if len(acc) > 1 else 0.0,
                "accuracy_min": float(acc.min()),
                "accuracy_max": float(acc.max()),
                "published": "" if published is None else published,
                "pulses_mean": float(np.mean([r["pulses"] for r in rows])),
                "resets_mean": float(np.mean([r["resets"] for r in rows])),
                "samples_per_s": float(np.mean([r["samples_per_s"] for r in rows])),
            }
        )
    return table


def write_csv(table: Sequence[dict[str, Any]], path: Path) -> Path:
    """The summary table as CSV with :data:`COLUMNS` (written to a temporary file, then renamed)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".csv.tmp")
    with tmp.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(COLUMNS))
        writer.writeheader()
        for row in table:
            writer.writerow({k: (f"{v:.4g}" if isinstance(v, float) else v) for k, v in row.items()})
    tmp.replace(path)
    return path


def format_table(table: Sequence[dict[str, Any]]) -> str:
    """The table as text, one line per setting, accuracies as mean +- sd [min, max] %."""
    lines = []
    for r in table:
        setting = f"{r['section']:<12} {r['method']:<9} {r['device']:<10}"
        setting += (
            f" beta={r['beta_nl']!s:<4} levels={r['levels']!s:<4} sigma={r['sigma']:<4g} {r['training']:<8}"
        )
        setting += f" dz={r['dead_zone']:<4g}"
        pub = f"  (Lim: {r['published']:.2f})" if r["published"] != "" else ""
        lines.append(
            f"{setting} {r['accuracy_mean']:6.2f} +- {r['accuracy_sd']:5.2f} "
            f"[{r['accuracy_min']:6.2f}, {r['accuracy_max']:6.2f}] % n={r['seeds']}{pub}"
        )
    return "\n".join(lines)
