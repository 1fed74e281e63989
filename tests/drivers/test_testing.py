"""The test helpers shipped for backend authors (drivers/testing.py) hold their promises."""

from __future__ import annotations

import numpy as np
import pytest

from crossbar_hil.drivers.protocol_backend import ProtocolBackend
from crossbar_hil.drivers.testing import (
    EXAMPLE_INFO,
    FakeLink,
    TranscriptLink,
    TranscriptMismatch,
    expected_protocol,
    handshake,
)
from crossbar_hil.seam import BackendInfo, Limits
from crossbar_hil.seam.errors import InstrumentTimeout

ALL = ",".join(repr(1e-7 * (k + 1)) for k in range(16))


def test_expected_protocol_checks_the_exact_conversation() -> None:
    with expected_protocol([("MEAS:ALL? 0.05", ALL), ("PULS:LIST 0,1,2.0,0.001", "OK")]) as backend:
        g = backend.read_conductances(0.05)
        backend.pulse(0, 1, 2.0, 1e-3)
    assert g[0, 1] == 2e-7 and backend.closed


def test_a_command_out_of_order_fails() -> None:
    with (
        pytest.raises(TranscriptMismatch, match=r"expected 'RST:DEV 0,0', got 'MEAS:ALL\? 0.05'"),
        expected_protocol([("RST:DEV 0,0", "OK")]) as backend,
    ):
        backend.read_conductances(0.05)


def test_a_command_never_sent_fails() -> None:
    link = TranscriptLink([*handshake(), ("MEAS:ALL? 0.05", ALL)])
    ProtocolBackend(link)  # connects, then reads nothing
    with pytest.raises(TranscriptMismatch, match=r"1 expected commands never sent, from 'MEAS:ALL\? 0.05'"):
        link.assert_done()


def test_a_mismatch_the_backend_swallowed_still_fails() -> None:
    # close() ignores errors of its ABOR (the link may be what failed): the transcript does not.
    with (
        pytest.raises(TranscriptMismatch, match="expected 'RST:DEV 0,0', got 'ABOR'"),
        expected_protocol([("RST:DEV 0,0", "OK")], closing=False),
    ):
        pass


def test_a_command_after_the_end_fails() -> None:
    link = TranscriptLink(handshake())
    backend = ProtocolBackend(link)
    with pytest.raises(TranscriptMismatch, match="after the end"):
        backend.abort()


def test_the_handshake_describes_the_given_instrument() -> None:
    info = BackendInfo(
        identity="LAB,X,1,2",
        rows=2,
        cols=3,
        limits=Limits(max_batch=8, width_max_s=0.5),
        supports_reset=False,
        supports_depression=True,
    )
    with expected_protocol([], info=info) as backend:
        assert backend.info == info
    assert dict(handshake(info))["CONF:LIM?"] == "0.2,2.5,1e-06,0.5,0.001,8"
    assert [c for c, _ in handshake()] == ["*IDN?", "SYST:VERS?", "CONF:SHAPE?", "CONF:LIM?", "CONF:CAP?"]


def test_a_silent_reply_times_out_and_faults_the_backend() -> None:
    # The fault sends ABOR at once; then, being faulted, the backend's close sends it again.
    with (
        pytest.raises(InstrumentTimeout),
        expected_protocol([("MEAS:ALL? 0.05", None), ("ABOR", "OK")]) as backend,
    ):
        backend.read_conductances(0.05)


def test_the_table_fake_answers_by_command_name() -> None:
    link = FakeLink({"MEAS:ALL?": ALL})
    with ProtocolBackend(link) as backend:
        assert backend.info == EXAMPLE_INFO
        assert np.array_equal(backend.read_conductances().ravel(), [1e-7 * (k + 1) for k in range(16)])
    assert link.sent[5:] == ["MEAS:ALL? 0.05", "ABOR"]  # the read, then close() at 0 V
