"""Study items run on one BLAS thread: a worker per core, no fight between BLAS pools."""

from __future__ import annotations

import pytest
from crossbar_hil.emulator.network.study import one_blas_thread


def test_inside_an_item_blas_keeps_to_one_thread_and_gets_its_threads_back_after() -> None:
    threadpoolctl = pytest.importorskip("threadpoolctl")

    def blas_threads() -> set[int]:
        return {p["num_threads"] for p in threadpoolctl.threadpool_info() if p["user_api"] == "blas"}

    with threadpoolctl.threadpool_limits(limits=2, user_api="blas"):
        assert blas_threads() == {2}
        with one_blas_thread():
            assert blas_threads() == {1}
        assert blas_threads() == {2}
