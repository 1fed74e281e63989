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
``hil sweep`` uses; grid, summary, CSV and table are those of every study (:mod:`.study`). Accuracies are
test accuracies after ``epochs`` passes, read on the tiles without read noise: an
emulator has exact reads, a real tile's read noise would lower them.
"""

from __future__ import annotations

import concurrent.futures as cf
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray
from pydantic import Field

from crossbar_hil.emulator.devices import TraceDevice
from crossbar_hil.emulator.network.lim_device import lim_device
from crossbar_hil.emulator.network.mlp import NetworkConfig, TileNetwork
from crossbar_hil.emulator.network.reference import FloatMLP
from crossbar_hil.emulator.network.study import (
    ACCURACY_COLUMNS,
    COST_COLUMNS,
    DeadZone,
    Hidden,
    Study,
    StudySettings,
    one_blas_thread,  # noqa: F401  (re-exported: its first home)
)
from crossbar_hil.emulator.network.tile_rules import RuleConfig
from crossbar_hil.emulator.network.tiles import MINUS, PLUS, Tile

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
    "device": "lim (exponential model), the trace file's name, or - for software (the float baseline: "
    "its device and training fields do not apply and are -).",
    "beta_nl": "Device nonlinearity (-); empty for a trace.",
    "levels": "Pulses from Gmin to Gmax (table positions - 1).",
    "sigma": "Sd of the per-device scale N(1, sigma) of range and steps (-).",
    "training": "on-chip (trained on the varied devices) or off-chip (ideal, then transferred).",
    "dead_zone": "Output-error dead zone (0: the literal sign rule).",
    **ACCURACY_COLUMNS,
    "published": "Lim et al.'s figure for this setting (%, MNIST), empty when none.",
    **COST_COLUMNS,
}
"""The columns of ``lim.csv``, in order."""


class LimExperiment(StudySettings):
    """What ``hil experiment lim`` runs; defaults are the digits table of the README."""

    output_dead_zone: DeadZone = Field(
        0.1, description="Output-error dead zone of every row but dead_zone's."
    )
    hidden: Hidden = Field(100, description="Hidden neurons of the MLP (Lim: 200 on MNIST).")
    trace: Path | None = Field(None, description="The measured device of the trace section; None: skipped.")
    sections: tuple[Section, ...] = Field(SECTIONS, description="Sections to run.")


NOT_APPLICABLE = "-"
"""The value of a field that does not apply to a row (the float baseline's device fields)."""
NOT_SOFTWARE = ("beta_nl", "levels", "sigma", "training", "dead_zone")
"""The fields of a row that do not apply to the float (software) baseline."""


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
        elif section == "software":  # no device, no tile, no sign rule: those fields do not apply
            configs.append({**at, **dict.fromkeys(NOT_SOFTWARE, NOT_APPLICABLE), "method": "software"})
    seeds = range(exp.seed_start, exp.seed_start + exp.seeds)
    return [{**c, "seed": k} for c in configs for k in seeds]


def run_item(item: dict[str, Any], experiment: dict[str, Any]) -> dict[str, Any]:
    """Train one network of ``item`` (a dict of :func:`items`) and test it; a row of raw results.

    :meth:`Study.run <crossbar_hil.emulator.network.study.Study.run>` calls it on one BLAS thread."""
    exp = LimExperiment.model_validate(experiment)
    data, x, y = exp.training_data()
    net_cfg = NetworkConfig(
        sizes=(data.n_features, exp.hidden, data.n_classes),
        hidden_c=exp.hidden_c,
        output_gain=exp.output_gain,
        output_dead_zone=0.0 if item["dead_zone"] == NOT_APPLICABLE else item["dead_zone"],
        epochs=exp.epochs,
        batch_size=exp.batch_size,
        seed=item["seed"],
    )
    t0 = time.perf_counter()
    out = {**item, "pulses": 0, "resets": 0, "depressions": 0}
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
        out.update(
            pulses=result.pulses,
            resets=result.resets,
            depressions=result.depressions,
            accuracy=100 * result.test_accuracy,
        )
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


def _describe(first: dict[str, Any]) -> dict[str, Any]:
    """The setting's columns of a summary row (and Lim's published figure), from its first raw row."""
    trace = first.get("trace")
    software = first["method"] == "software"
    published = PUBLISHED.get(
        tuple(first[k] for k in ("section", "method", "beta_nl", "levels", "sigma", "training"))
    )
    return {
        "section": first["section"],
        "method": first["method"],
        "device": Path(trace).name if trace else (NOT_APPLICABLE if software else "lim"),
        "beta_nl": "" if trace else first["beta_nl"],
        "levels": first["levels"],
        "sigma": first["sigma"],
        "training": first["training"],
        "dead_zone": first["dead_zone"],
        "published": "" if published is None else published,
    }


def _g(v: Any) -> str:
    """A number as ``{:g}``, anything else (``-``) as it is."""
    return f"{v:g}" if isinstance(v, int | float) else str(v)


def _setting_text(r: dict[str, Any]) -> str:
    return (
        f"{r['section']:<12} {r['method']:<9} {r['device']:<10}"
        f" beta={r['beta_nl']!s:<4} levels={r['levels']!s:<4} sigma={_g(r['sigma']):<4} {r['training']:<8}"
        f" dz={_g(r['dead_zone']):<4}"
    )


LIM = Study(
    name="lim",
    settings=LimExperiment,
    items=items,
    run_item=run_item,
    key=("section", "method", "trace", "beta_nl", "levels", "sigma", "training", "dead_zone"),
    describe=_describe,
    columns=COLUMNS,
    setting_text=_setting_text,
    note_text=lambda r: f"  (Lim: {r['published']:.2f})" if r["published"] != "" else "",
)
"""The ``lim`` study: its grid, summary, CSV and table (:class:`~.study.Study`)."""


def run_experiment(
    exp: LimExperiment,
    executor: cf.Executor,
    progress: Callable[[int, int, int], None] | None = None,
) -> list[dict[str, Any]]:
    """Every item of ``exp`` on ``executor`` (a local pool or a Dask client's); raw rows in item order."""
    return LIM.run(exp, executor, progress)


def summarize(raw: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per setting (:data:`COLUMNS`), in the order the settings first appear."""
    return LIM.summarize(raw)


def write_csv(table: Sequence[dict[str, Any]], path: Path) -> Path:
    """The summary table as CSV with :data:`COLUMNS` (written to a temporary file, then renamed)."""
    return LIM.write_csv(table, path)


def format_table(table: Sequence[dict[str, Any]]) -> str:
    """The table as text, one line per setting, accuracies as mean +- sd [min, max] %."""
    return LIM.format_table(table)
