"""Classification tasks: binary input patterns, expected outputs, and their row voltages."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Self

import numpy as np
from numpy.typing import NDArray
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from crossbar_hil.json_files import load_model
from crossbar_hil.resources import read_data_text

REFERENCE_TASK = "tasks/reference_4bit.json"


class Example(BaseModel):
    """One pattern of input bits and the expected bit of each neuron, as strings of 0/1."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    pattern: str = Field(description="Input bits, one per crossbar row, e.g. '0110'.")
    target: str = Field(description="Expected output bit per neuron, e.g. '10'.")

    @field_validator("pattern", "target")
    @classmethod
    def _bits(cls, v: str) -> str:
        if not v or set(v) - {"0", "1"}:
            raise ValueError(f"expected a non-empty string of 0 and 1, got {v!r}")
        return v


class Task(BaseModel):
    """A training set and a test set; bit 0 -> ``v_low`` V, bit 1 -> ``v_high`` V on its row."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    name: str = "task"
    description: str = ""
    v_low: float = Field(-0.1, description="Row voltage of a 0 bit (V).")
    v_high: float = Field(0.1, description="Row voltage of a 1 bit (V).")
    train: tuple[Example, ...] = Field(min_length=1)
    test: tuple[Example, ...] = ()

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        examples = self.train + self.test
        n_in = {len(e.pattern) for e in examples}
        n_out = {len(e.target) for e in examples}
        if len(n_in) != 1 or len(n_out) != 1:
            raise ValueError(
                f"all patterns must have one length and all targets one length; got pattern "
                f"lengths {sorted(n_in)} and target lengths {sorted(n_out)}"
            )
        return self

    @property
    def n_inputs(self) -> int:
        """Number of input bits (crossbar rows used)."""
        return len(self.train[0].pattern)

    @property
    def n_outputs(self) -> int:
        """Number of neurons (each uses two crossbar columns)."""
        return len(self.train[0].target)

    def voltages(self, split: str = "train") -> NDArray[np.float64]:
        """Row voltages (V), one row per example of ``split``: shape (n_examples, n_inputs)."""
        bits = _bits(self._split(split), "pattern")
        return np.where(bits == 1, self.v_high, self.v_low)

    def targets(self, split: str = "train") -> NDArray[np.int8]:
        """Expected output bits, shape (n_examples, n_outputs)."""
        return _bits(self._split(split), "target")

    def patterns(self, split: str = "train") -> list[str]:
        """The input patterns of ``split`` as bit strings."""
        return [e.pattern for e in self._split(split)]

    def _split(self, split: str) -> tuple[Example, ...]:
        if split not in ("train", "test"):
            raise ValueError(f"split must be 'train' or 'test', got {split!r}")
        return self.train if split == "train" else self.test

    def unseen_test_notes(self) -> list[str]:
        """Why some test patterns say little: for each pair of input bits that differ (or agree)
        in every training pattern, the test patterns where they agree (or differ) lie outside
        anything the training set shows. A network that solves the training set may answer
        them either way (there is no bias and the outputs are not forced there), so their test
        accuracy near chance is expected, not a fault (data/README.md). Bits count from 1 at
        the left of a pattern, as in data/README.md."""
        train, test = _bits(self.train, "pattern"), _bits(self.test, "pattern")
        if not len(test):
            return []
        notes = []
        n = self.n_inputs
        for a in range(n):
            for b in range(a + 1, n):
                differ = train[:, a] != train[:, b]
                if differ.all() or not differ.any():
                    seen, unseen = ("differ", "agree") if differ.all() else ("agree", "differ")
                    off = (test[:, a] != test[:, b]) != differ.all()
                    if off.any():
                        listed = ", ".join(p for p, o in zip(self.patterns("test"), off, strict=True) if o)
                        notes.append(
                            f"note: bits {a + 1} and {b + 1} {seen} in every training pattern, so the "
                            f"{int(off.sum())} test patterns where they {unseen} ({listed}) lie outside "
                            "anything the training set shows: a network that solves the training set may "
                            "answer them either way, and their test accuracy near chance is expected "
                            "(data/README.md)"
                        )
        return notes

    @classmethod
    def load(cls, path: str | Path) -> Task:
        """Read a task from a JSON file; :class:`~hil.json_files.InputFileError` names the file."""
        return load_model(cls, path, "task")

    @classmethod
    def reference(cls) -> Task:
        """The 4-bit task of the reference crossbar work (``data/tasks/reference_4bit.json``)."""
        return cls.model_validate(json.loads(read_data_text(REFERENCE_TASK)))


def _bits(examples: tuple[Example, ...], attr: str) -> NDArray[np.int8]:
    if not examples:
        return np.zeros((0, 0), dtype=np.int8)
    return np.array([[int(b) for b in getattr(e, attr)] for e in examples], dtype=np.int8)
