"""A task says which of its test patterns the training set says nothing about (data/README.md)."""

from __future__ import annotations

from crossbar_hil.training.task import Example, Task


def test_the_reference_task_names_its_eight_test_patterns_whose_bits_3_and_4_agree() -> None:
    notes = Task.reference().unseen_test_notes()
    assert len(notes) == 1
    note = notes[0]
    assert "bits 3 and 4 differ in every training pattern" in note
    assert "8 test patterns where they agree" in note
    for pattern in ("0000", "0011", "0100", "0111", "1000", "1011", "1100", "1111"):
        assert pattern in note
    for pattern in ("0101", "1010"):  # Bits 3 and 4 differ: the training set covers them.
        assert pattern not in note


def test_a_task_whose_test_set_stays_inside_the_training_combinations_has_no_note() -> None:
    task = Task(
        train=(Example(pattern="01", target="1"), Example(pattern="10", target="0")),
        test=(Example(pattern="01", target="1"),),
    )
    assert task.unseen_test_notes() == []
    wider = task.model_copy(update={"test": (Example(pattern="11", target="1"),)})
    notes = wider.unseen_test_notes()
    assert len(notes) == 1 and "1 test patterns where they agree (11)" in notes[0]
