"""The CrossbarBackend seam: checks happen before the implementation sees anything."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest
from pydantic import ValidationError

from crossbar_hil.seam import BackendInfo, CrossbarBackend, Limits, Pulse, UserLimits
from crossbar_hil.seam.errors import BackendClosed, CommunicationError, DeviceFault, LimitError


class Spy(CrossbarBackend):
    """Records what reaches the implementation."""

    def __init__(self, fail_abort: bool = False) -> None:
        super().__init__()
        self.seen: list[tuple[str, object]] = []
        self.fail_abort = fail_abort
        self._info = BackendInfo(
            identity="spy", rows=2, cols=3, limits=Limits(max_batch=2), supports_reset=False
        )

    @property
    def info(self) -> BackendInfo:
        return self._info

    def _read_conductances(self, read_v: float) -> np.ndarray:
        self.seen.append(("read", read_v))
        return np.ones(6)

    def _apply(self, voltages: np.ndarray) -> np.ndarray:
        self.seen.append(("apply", voltages.tolist()))
        return np.zeros(3)

    def _pulse_many(self, pulses: Sequence[Pulse]) -> None:
        self.seen.append(("pulses", list(pulses)))

    def _reset(self, row: int, col: int) -> None:
        self.seen.append(("reset", (row, col)))

    def _abort(self) -> None:
        self.seen.append(("abort", None))
        if self.fail_abort:
            raise CommunicationError("link down")

    def _close(self) -> None:
        self.seen.append(("close", None))


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda b: b.pulse(2, 0, 1.0, 1e-3), "pulses[0].row"),
        (lambda b: b.pulse(0, 3, 1.0, 1e-3), "pulses[0].col"),
        (lambda b: b.pulse(0, 0.5, 1.0, 1e-3), "pulses[0].col"),
        (lambda b: b.pulse(0, 0, -2.6, 1e-3), "pulses[0].amplitude_v"),
        (lambda b: b.pulse(0, 0, 1.0, 0.0), "pulses[0].width_s"),
        (lambda b: b.pulse_many([Pulse(0, 0, 1.0, 1e-3)] * 3 + [Pulse(0, 0, 9.0, 1e-3)]), "pulses[3]"),
        (lambda b: b.apply([0.1, 0.3]), "voltages[1]"),
        (lambda b: b.apply([0.1, float("inf")]), "voltages"),
        (lambda b: b.read_conductances(-0.5), "read_v"),
        (lambda b: b.reset(0, 0), "reset"),
    ],
)
def test_violations_raise_and_reach_nothing(call, field: str) -> None:
    spy = Spy()
    with pytest.raises(LimitError) as info:
        call(spy)
    assert info.value.field.startswith(field)
    assert "allowed" in str(info.value) and "nothing was sent" in str(info.value)
    assert spy.seen == []


def test_results_have_the_crossbar_shape() -> None:
    spy = Spy()
    assert spy.read_conductances(0.05).shape == (2, 3)
    assert spy.apply([0.1, -0.1]).shape == (3,)
    assert spy.pulse_many([]) == 0 and spy.seen[-1][0] == "apply"


def test_long_batches_go_out_in_chunks_of_max_batch() -> None:
    spy = Spy()
    batch = [Pulse(0, k % 3, 1.0, 1e-3) for k in range(5)]
    assert spy.pulse_many(batch) == 5
    assert [s[1] for s in spy.seen] == [batch[0:2], batch[2:4], batch[4:5]]


def test_context_manager_aborts_then_closes_even_on_error() -> None:
    spy = Spy()
    with pytest.raises(RuntimeError), spy:
        raise RuntimeError("boom")
    assert [s[0] for s in spy.seen] == ["abort", "close"]
    spy.close()  # idempotent
    assert [s[0] for s in spy.seen] == ["abort", "close"]
    with pytest.raises(BackendClosed):
        spy.read_conductances()


def test_close_releases_even_when_abort_fails() -> None:
    spy = Spy(fail_abort=True)
    spy.close()
    assert spy.closed and spy.seen[-1] == ("close", None)


def test_a_failed_abort_at_close_is_logged_and_kept_not_hidden(caplog: pytest.LogCaptureFixture) -> None:
    spy = Spy(fail_abort=True)
    with caplog.at_level("ERROR", logger="crossbar_hil.seam.backend"):
        spy.close()
        spy.close()  # idempotent: no second abort, the warning stays
    assert [s[0] for s in spy.seen] == ["abort", "close"]
    assert spy.close_warning is not None
    assert "could not be confirmed (CommunicationError: link down)" in spy.close_warning
    assert [r.getMessage() for r in caplog.records] == ["spy: the abort at close failed: link down"]
    fine = Spy()
    fine.close()
    assert fine.close_warning is None


def test_limits_validate_themselves() -> None:
    with pytest.raises(ValidationError, match="width_min_s"):
        Limits(width_min_s=1.0, width_max_s=0.1)


def test_non_finite_measurements_are_a_device_fault() -> None:
    class NanSpy(Spy):
        def _apply(self, voltages: np.ndarray) -> np.ndarray:
            return np.array([0.0, np.nan, 0.0])

        def _read_conductances(self, read_v: float) -> np.ndarray:
            return np.r_[np.ones(5), np.inf]

    spy = NanSpy()
    with pytest.raises(DeviceFault, match="apply: 1 of 3 values are not finite"):
        spy.apply([0.1, 0.1])
    with pytest.raises(DeviceFault, match="read_conductances: 1 of 6"):
        spy.read_conductances()


def test_the_checks_name_field_value_range_and_unit() -> None:
    info = BackendInfo(identity="x", rows=2, cols=3, limits=Limits(pulse_v_max=2.0, max_batch=4))
    cases = [
        (lambda: info.limits.check_read_v("v", 0.25), "v=0.25 V is out of range: allowed [-0.2, 0.2] V"),
        (lambda: info.limits.check_amplitude("a", -2.5), "a=-2.5 V is out of range: allowed [-2.0, 2.0] V"),
        (lambda: info.limits.check_width("w", 3.0), "w=3.0 s is out of range: allowed [1e-06, 2.0] s"),
        (lambda: info.limits.check_batch("n", 5), "n=5 is out of range: allowed [1, 4]"),
        (lambda: info.check_row("r", 2), "r=2 is out of range: allowed integers [0, 1]"),
        (lambda: info.check_col("c", -1), "c=-1 is out of range: allowed integers [0, 2]"),
    ]
    for call, message in cases:
        with pytest.raises(LimitError) as err:
            call()
        assert str(err.value) == message + "; nothing was sent"
    for ok in (
        lambda: info.limits.check_read_v("v", -0.2),
        lambda: info.limits.check_width("w", 1e-6),
        lambda: info.check_pulse("p", Pulse(1, 2, -2.0, 2.0)),
    ):
        ok()  # the bounds themselves are allowed


def test_stricter_takes_the_stricter_of_each_limit() -> None:
    own = Limits(read_v_max=0.2, pulse_v_max=2.5, width_min_s=1e-6, width_max_s=2.0, max_batch=256)
    user = UserLimits(read_v_max=0.3, pulse_v_max=1.0, width_min_s=1e-3, max_batch=8)
    got = own.stricter(user)
    assert (got.read_v_max, got.pulse_v_max, got.width_min_s, got.width_max_s, got.max_batch) == (
        0.2,
        1.0,
        1e-3,
        2.0,
        8,
    )
    assert got.compliance_a == own.compliance_a
    assert own.stricter(None) is own and own.stricter(UserLimits()) == own
    with pytest.raises(ValueError, match="no allowed pulse width"):
        own.stricter(UserLimits(width_max_s=1e-7))
    with pytest.raises(ValidationError, match="compliance_a"):
        UserLimits(compliance_a=1e-4)
    with pytest.raises(ValidationError, match="pulse_v_max"):
        UserLimits(pulse_v_max=-1.0)


def test_a_backend_knows_no_device_curve_unless_it_says_so() -> None:
    assert Spy().device_curve_siemens() is None
