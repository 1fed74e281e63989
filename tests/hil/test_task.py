"""The reference 4-bit task and task validation."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from crossbar_hil.training.task import Task


def test_reference_task_is_the_design_task() -> None:
    task = Task.reference()
    assert task.patterns("train") == ["0001", "0010", "0110", "1001", "1101", "1110"]
    assert len(task.test) == 10
    assert set(task.patterns("train")) | set(task.patterns("test")) == {format(i, "04b") for i in range(16)}
    np.testing.assert_array_equal(task.voltages("train")[0], [-0.1, -0.1, -0.1, 0.1])


@pytest.mark.parametrize("split", ["train", "test"])
def test_labels_are_bits_three_and_four(split: str) -> None:
    task = Task.reference()
    for pattern, target in zip(task.patterns(split), task.targets(split), strict=True):
        assert "".join(map(str, target)) == pattern[2:4]


def test_bad_tasks_are_rejected_with_the_field() -> None:
    with pytest.raises(ValidationError, match="string of 0 and 1"):
        Task(train=({"pattern": "01x1", "target": "01"},))
    with pytest.raises(ValidationError, match="one length"):
        Task(train=({"pattern": "0101", "target": "01"}, {"pattern": "011", "target": "01"}))
    with pytest.raises(ValidationError, match="train"):
        Task(train=())
