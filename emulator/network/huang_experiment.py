"""``hil experiment huang``: Huang et al.'s self-adaptive weight and modes on tiles, as a table.

One work item per (network, nonlinearity, mode, seed): the network (``mlp``: the
hard-sigmoid :class:`~.self_adaptive.SelfAdaptiveMLP`, 64-``hidden``-10 on digits; ``cnn``: the
LeNet-5 shrunk to 8x8 of :mod:`.cnn`) built of self-adaptive weights on Huang's LTP/LTD
device (:func:`~.huang_device.huang_device` of ``(A_p, A_d)`` and ``bits``) and trained by the
mode, sign-only, in mini-batches (the SI: batch 128, 2,000 iterations on MNIST). Accuracies
are test accuracies after ``epochs`` passes, read on the tiles without read noise (an
emulator's exact reads). Grid, summary, CSV and table are those of every study
(:mod:`.study`), on the executor of ``hil sweep``.

The main text of Huang et al. is not in this repository (only the supporting code), so no
published figure is printed beside the table.
"""

from __future__ import annotations

import time
from typing import Any, Literal, Self

from pydantic import Field, field_validator, model_validator

from crossbar_hil.emulator.network.cnn import HuangCNN
from crossbar_hil.emulator.network.huang_device import huang_device
from crossbar_hil.emulator.network.mlp import NetworkConfig
from crossbar_hil.emulator.network.self_adaptive import MODES, Mode, SelfAdaptiveMLP
from crossbar_hil.emulator.network.study import (
    ACCURACY_COLUMNS,
    COST_COLUMNS,
    BatchSize,
    DeadZone,
    Epochs,
    Hidden,
    Positive,
    Study,
    StudySettings,
)

NetworkName = Literal["mlp", "cnn"]

COLUMNS: dict[str, str] = {
    "network": "mlp (64-hidden-10, hard sigmoid) or cnn (LeNet-5 shrunk to 8x8, ReLU).",
    "mode": "Huang's updating mode: mode1 (w1, w2 same way), mode2 (opposite), mode3 (w2 random), "
    "mode4 (w2 = R).",
    "a_p": "LTP nonlinearity A_p (Huang's, > 0; about 0 is linear).",
    "a_d": "LTD nonlinearity A_d (Huang's, < 0).",
    "levels": "Pulses from Gmin to Gmax, 2**bits - 1.",
    **ACCURACY_COLUMNS,
    **COST_COLUMNS,
}
"""The columns of ``huang.csv``, in order."""


class HuangExperiment(StudySettings):
    """What ``hil experiment huang`` runs; defaults are the digits table of the README."""

    networks: tuple[NetworkName, ...] = Field(("mlp", "cnn"), min_length=1, description="Networks to train.")
    modes: tuple[Mode, ...] = Field(MODES, min_length=1, description="Huang's updating modes to compare.")
    nonlinearities: tuple[tuple[float, float], ...] = Field(
        ((0.01, -0.01), (1.0, -1.0), (3.0, -3.0), (5.0, -5.0)),
        min_length=1,
        description="Device nonlinearities, pairs A_p:A_d (A_p > 0, A_d < 0; Huang's default 1:-1).",
    )
    hidden: Hidden = Field(100, description="Hidden neurons of the MLP (the cnn has none).")
    bits: int = Field(8, ge=1, le=12, description="Device levels 2**bits, 2**bits - 1 pulses (Huang: 8).")
    epochs: Epochs = Field(5, description="Passes over the training set.")
    batch_size: BatchSize = Field(16, description="Samples per update (Huang: 128 on MNIST).")
    hidden_c: Positive = Field(2.0, description="MLP hard-sigmoid half-width c (weight units).")
    output_gain: Positive = Field(4.0, description="Softmax input per unit of output sum.")
    output_dead_zone: DeadZone = Field(0.0, description="Output-error dead zone (0: none, Huang).")

    @field_validator("nonlinearities", mode="before")
    @classmethod
    def _pairs(cls, value: Any) -> Any:
        """Each nonlinearity a pair A_p:A_d: one error naming the form (not pydantic's two lines)."""
        if isinstance(value, list | tuple):
            for v in value:
                if isinstance(v, str | int | float) or (isinstance(v, list | tuple) and len(v) != 2):
                    given = ":".join(map(str, v)) if isinstance(v, list | tuple) else v
                    raise ValueError(f"{given!r} is not a pair A_p:A_d (e.g. --nonlinearities 1:-1,3:-3)")
        return value

    @model_validator(mode="after")
    def _valid(self) -> Self:
        for a_p, a_d in self.nonlinearities:
            if not (a_p > 0 and a_d < 0):
                raise ValueError(f"nonlinearities: {a_p}:{a_d}: need A_p > 0 and A_d < 0 (Huang's signs)")
        if "cnn" in self.networks and self.dataset != "digits":
            raise ValueError(
                f"networks: cnn takes 8x8 images (dataset digits), not {self.dataset!r}; use networks mlp"
            )
        return self


def items(exp: HuangExperiment) -> list[dict[str, Any]]:
    """Every work item (a JSON-ready dict): network by network, nonlinearity, mode, seed."""
    seeds = range(exp.seed_start, exp.seed_start + exp.seeds)
    return [
        {"network": net, "mode": mode, "a_p": a_p, "a_d": a_d, "levels": 2**exp.bits - 1, "seed": k}
        for net in exp.networks
        for a_p, a_d in exp.nonlinearities
        for mode in exp.modes
        for k in seeds
    ]


def run_item(item: dict[str, Any], experiment: dict[str, Any]) -> dict[str, Any]:
    """Train one network of ``item`` (a dict of :func:`items`) and test it; a row of raw results.

    :meth:`Study.run <crossbar_hil.emulator.network.study.Study.run>` calls it on one BLAS thread."""
    exp = HuangExperiment.model_validate(experiment)
    data, x, y = exp.training_data()
    cnn = item["network"] == "cnn"
    net_cfg = NetworkConfig(
        sizes=(data.n_features, data.n_classes) if cnn else (data.n_features, exp.hidden, data.n_classes),
        hidden_c=exp.hidden_c,
        output_gain=exp.output_gain,
        output_dead_zone=exp.output_dead_zone,
        epochs=exp.epochs,
        batch_size=exp.batch_size,
        seed=item["seed"],
    )
    devices = {"device": huang_device(item["a_p"], item["a_d"], exp.bits)}
    t0 = time.perf_counter()
    model = (HuangCNN if cnn else SelfAdaptiveMLP)(net_cfg, item["mode"], devices)
    result = model.fit(x, y, data.x_test, data.y_test)
    return {
        **item,
        "accuracy": 100 * result.test_accuracy,
        "pulses": result.pulses,
        "resets": result.resets,
        "depressions": result.depressions,
        "samples_per_s": exp.epochs * len(x) / (time.perf_counter() - t0),
    }


HUANG = Study(
    name="huang",
    settings=HuangExperiment,
    items=items,
    run_item=run_item,
    key=("network", "a_p", "a_d", "mode"),
    describe=lambda first: {k: first[k] for k in ("network", "mode", "a_p", "a_d", "levels")},
    columns=COLUMNS,
    setting_text=lambda r: f"{r['network']:<4} A_p={r['a_p']:<5g} A_d={r['a_d']:<6g} {r['mode']:<6}",
)
"""The ``huang`` study: its grid, summary, CSV and table (:class:`~.study.Study`)."""
