"""`ProtocolBackend` over a scripted fake link: command mapping, limits, faults, traffic log."""

from __future__ import annotations

import logging
import re
import threading
import time

import numpy as np
import pytest
from conftest import READINGS

from crossbar_hil.drivers.link import LinkFaulted
from crossbar_hil.drivers.protocol_backend import ProtocolBackend
from crossbar_hil.drivers.serial_backend import SerialBackend
from crossbar_hil.drivers.testing import FakeLink, expected_protocol
from crossbar_hil.drivers.traffic import TRAFFIC_LOGGER
from crossbar_hil.drivers.visa_backend import VisaBackend
from crossbar_hil.seam import Pulse, UserLimits
from crossbar_hil.seam.errors import (
    BackendClosed,
    ConnectionLost,
    DeviceFault,
    InstrumentTimeout,
    LimitError,
    ProtocolError,
)

pytestmark = pytest.mark.system


def test_connect_builds_info_from_the_instrument(fake_link: FakeLink) -> None:
    with ProtocolBackend(fake_link) as b:
        assert fake_link.sent == ["*IDN?", "SYST:VERS?", "CONF:SHAPE?", "CONF:LIM?", "CONF:CAP?"]
        info = b.info
        assert info.identity == "ACME,XB44,0001,fw1"
        assert info.shape == (4, 4)
        assert info.limits.read_v_max == 0.2
        assert info.limits.pulse_v_max == 2.5
        assert info.limits.width_min_s == 1e-6
        assert info.limits.max_batch == 256
        assert info.supports_reset and not info.supports_depression
    assert fake_link.closed


@pytest.mark.parametrize(
    ("command", "reply", "match"),
    [
        ("SYST:VERS?", "2.0", "speaks protocol 2.0"),
        ("CONF:SHAPE?", "0,4", "whole number"),
        ("CONF:LIM?", "0.2,2.5,2.0,1e-06,0.001,256", "impossible configuration"),
        ("CONF:CAP?", "1", "CONF:CAP?"),
    ],
)
def test_connect_refuses_an_incompatible_instrument(command: str, reply: str, match: str) -> None:
    link = FakeLink({command: reply})
    with pytest.raises(ProtocolError, match=re.escape(match)):
        ProtocolBackend(link)
    assert link.closed


def test_each_operation_is_one_command() -> None:
    transcript = [
        ("MEAS:ALL? 0.05", READINGS["MEAS:ALL?"]),
        ("VMM? 0.1,-0.1,0.1,0.0", READINGS["VMM?"]),
        ("PULS:LIST 0,1,2.0,0.001;3,2,2.0,0.001", "OK"),
        ("PULS:LIST 1,1,2.0,0.001", "OK"),
        ("RST:DEV 1,2", "OK"),
        ("ABOR", "OK"),
    ]
    with expected_protocol(transcript) as backend:  # then close() sends its own ABOR
        g = backend.read_conductances(0.05)
        assert g.shape == (4, 4) and g[0, 1] == 2e-7 and g[1, 0] == 5e-7  # row-major
        i = backend.apply(np.array([0.1, -0.1, np.float64(0.1), 0]))
        np.testing.assert_array_equal(i, [1e-8, 2e-8, 3e-8, 4e-8])
        assert backend.pulse_many([(0, 1, 2.0, 1e-3), Pulse(np.int64(3), 2, 2.0, 1e-3)]) == 2
        backend.pulse(1, 1, 2.0, 0.001)
        backend.reset(1, 2)
        backend.abort()


def test_values_cross_bit_exactly(fake_link: FakeLink) -> None:
    values = np.random.default_rng(7).random(16) * 1e-6
    fake_link.replies["MEAS:ALL?"] = ",".join(repr(float(x)) for x in values)
    with ProtocolBackend(fake_link) as b:
        assert np.array_equal(b.read_conductances().ravel(), values)


def test_a_batch_beyond_max_batch_goes_out_as_consecutive_lists(
    fake_backend: ProtocolBackend, fake_link: FakeLink
) -> None:
    fake_link.sent.clear()
    assert fake_backend.pulse_many([(0, 0, 2.0, 1e-3)] * 257) == 257
    assert [line.split(" ")[0] for line in fake_link.sent] == ["PULS:LIST", "PULS:LIST"]
    assert [line.count(";") + 1 for line in fake_link.sent] == [256, 1]


@pytest.mark.parametrize(
    "call",
    [
        lambda b: b.pulse(0, 0, 2.6, 1e-3),
        lambda b: b.pulse(0, 0, 2.0, 3.0),
        lambda b: b.pulse(0, 0, 2.0, 1e-7),
        lambda b: b.pulse(4, 0, 2.0, 1e-3),
        lambda b: b.pulse_many([(0, 0, 2.0, 1e-3), (0, 1, float("nan"), 1e-3)]),
        lambda b: b.pulse_many([(0, 0, 2.0, 1e-3)] * 257 + [(0, 0, 2.0, 9.0)]),
        lambda b: b.apply([0.1, 0.1, 0.3, 0.0]),
        lambda b: b.apply([0.1, 0.1, 0.1]),
        lambda b: b.read_conductances(0.5),
        lambda b: b.reset(0, 9),
    ],
)
def test_limit_violations_send_nothing(fake_backend: ProtocolBackend, fake_link: FakeLink, call) -> None:
    with pytest.raises(LimitError, match="nothing was sent"):
        call(fake_backend)
    assert fake_link.sent == []
    assert fake_backend.fault is None


def test_reset_refused_without_the_capability() -> None:
    link = FakeLink({"CONF:CAP?": "0,0"})
    with ProtocolBackend(link) as b:
        link.sent.clear()
        with pytest.raises(LimitError):
            b.reset(0, 0)
        assert link.sent == []


def test_device_error_keeps_the_link_usable(fake_backend: ProtocolBackend, fake_link: FakeLink) -> None:
    fake_link.replies["RST:DEV"] = "ERR 300,Device or execution fault: stuck"
    with pytest.raises(DeviceFault) as e:
        fake_backend.reset(0, 0)
    assert e.value.code == 300
    assert fake_backend.fault is None
    fake_backend.pulse(0, 0, 2.0, 1e-3)
    assert fake_link.sent[-1].startswith("PULS:LIST")


def test_timeout_aborts_then_refuses_until_resync(fake_backend: ProtocolBackend, fake_link: FakeLink) -> None:
    late: list[str] = []

    def silent(line: str) -> None:
        late.append("1e-08,2e-08,3e-08,4e-08")
        return None

    fake_link.replies["VMM?"] = silent
    with pytest.raises(InstrumentTimeout):
        fake_backend.apply([0.1, 0.1, 0.1, 0.1])
    assert fake_link.sent[-1] == "ABOR"
    assert isinstance(fake_backend.fault, InstrumentTimeout)

    sent = len(fake_link.sent)
    with pytest.raises(LinkFaulted, match="nothing sent"):
        fake_backend.pulse(0, 0, 2.0, 1e-3)
    with pytest.raises(LinkFaulted):
        fake_backend.read_conductances()
    assert len(fake_link.sent) == sent

    # The late VMM reply and the ABOR's OK turn up; resync discards them.
    fake_link.queue.extend([late[0], "OK"])
    fake_backend.resync()
    assert fake_backend.fault is None
    assert fake_link.sent[-1] == "*IDN?" and not fake_link.queue
    fake_backend.pulse(0, 0, 2.0, 1e-3)
    assert fake_link.sent[-1] == "PULS:LIST 0,0,2.0,0.001"


def test_abort_after_fault_reads_past_the_late_reply(
    fake_backend: ProtocolBackend, fake_link: FakeLink
) -> None:
    fake_link.replies["MEAS:ALL?"] = None
    with pytest.raises(InstrumentTimeout):
        fake_backend.read_conductances()
    # The instrument now answers: the owed MEAS:ALL? reply first, then ABOR's OK.
    fake_link.replies["MEAS:ALL?"] = HANDSHAKE_ALL = ",".join(["1e-07"] * 16)
    fake_link.queue.append(HANDSHAKE_ALL)
    fake_backend.abort()
    assert fake_link.sent[-1] == "ABOR" and not fake_link.queue


@pytest.mark.parametrize(
    "reply", ["1e-08,2e-08,3e-08", "OK", "1e-08,2e-08,3e-08,x", "\x00\x13garbage", "ERR x"]
)
def test_out_of_sync_or_garbled_reply_is_a_protocol_error(
    fake_backend: ProtocolBackend, fake_link: FakeLink, reply: str
) -> None:
    fake_link.replies["VMM?"] = reply
    with pytest.raises(ProtocolError):
        fake_backend.apply([0.1, 0.1, 0.1, 0.1])
    assert fake_link.sent[-1] == "ABOR"
    with pytest.raises(LinkFaulted):
        fake_backend.pulse(0, 0, 2.0, 1e-3)
    assert fake_link.sent[-1] == "ABOR"


def test_connection_lost_sends_nothing_more(fake_backend: ProtocolBackend, fake_link: FakeLink) -> None:
    fake_link.drop()
    with pytest.raises(ConnectionLost):
        fake_backend.pulse(0, 0, 2.0, 1e-3)
    with pytest.raises(ConnectionLost):
        fake_backend.abort()
    with pytest.raises(ConnectionLost):
        fake_backend.resync()
    with pytest.raises(LinkFaulted):
        fake_backend.read_conductances()
    fake_backend.close()
    assert fake_link.closed
    with pytest.raises(BackendClosed):
        fake_backend.read_conductances()


def test_traffic_log_file_and_logger(fake_link: FakeLink, tmp_path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "traffic.log"
    caplog.set_level(logging.DEBUG, logger=TRAFFIC_LOGGER)
    fake_link.replies["PULS:LIST"] = None
    with ProtocolBackend(fake_link, traffic_log=path) as b:
        b.apply([0.1, 0.0, 0.0, 0.0])
        with pytest.raises(InstrumentTimeout):
            b.pulse(1, 2, 2.0, 1e-3)
    lines = path.read_text().splitlines()
    stamp = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}[+-]\d\d:\d\d fake"
    assert re.fullmatch(stamp + r" > \*IDN\?", lines[0])
    assert re.fullmatch(stamp + r" < ACME,XB44,0001,fw1  \[\d+\.\d{3} ms\]", lines[1])
    assert any(re.fullmatch(stamp + r" > VMM\? 0\.1,0\.0,0\.0,0\.0", ln) for ln in lines)
    assert any(re.fullmatch(stamp + r" ! InstrumentTimeout: fake: no reply.*", ln) for ln in lines)
    fault_at = next(k for k, ln in enumerate(lines) if " ! " in ln)
    assert lines[fault_at + 1].endswith("fake > ABOR")
    first = next(r for r in caplog.records if r.name == TRAFFIC_LOGGER)
    assert first.getMessage() == "fake > *IDN?"


def test_traffic_log_is_silent_by_default(fake_link: FakeLink, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    with ProtocolBackend(fake_link) as b:
        b.read_conductances()
    assert not [r for r in caplog.records if r.name == TRAFFIC_LOGGER]


def test_one_thread_at_a_time_keeps_request_and_reply_together() -> None:
    class SlowLink(FakeLink):
        def write_line(self, line: str) -> None:
            assert self.owed == 0, "a command was written while a reply was owed"
            super().write_line(line)
            time.sleep(0.0005)

    link = SlowLink(READINGS)
    b = ProtocolBackend(link)
    errors: list[BaseException] = []

    def work() -> None:
        try:
            for _ in range(50):
                b.apply([0.1, 0.1, 0.1, 0.1])
                b.pulse(0, 0, 2.0, 1e-3)
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    b.close()
    assert errors == []
    assert len(link.sent) == 5 + 4 * 50 * 2 + 1


@pytest.mark.parametrize(
    ("cls", "params", "field"),
    [
        (VisaBackend, {}, "resource"),
        (VisaBackend, {"resource": "TCPIP::x::1::SOCKET", "timeout_s": -1}, "timeout_s"),
        (VisaBackend, {"resource": "TCPIP::x::1::SOCKET", "baud": 9600}, "baud"),
        (SerialBackend, {"port": "/dev/null", "baudrate": 0}, "baudrate"),
    ],
)
def test_bad_params_name_the_field(cls, params, field: str) -> None:
    with pytest.raises(ValueError, match=rf"(?s)backend '{cls.backend_name}'.*{field}"):
        cls.from_params(params)


# ------------------------------------------------------------------ reply timeouts
def test_the_reply_timeout_grows_with_the_pulse_time(fake_link: FakeLink) -> None:
    base, switch = fake_link.timeout_s, 0.01
    with ProtocolBackend(fake_link, switch_time_s=switch) as b:
        assert fake_link.waits == [base] * 5  # the handshake takes no time
        fake_link.waits.clear()
        b.read_conductances()
        b.apply([0.1, 0.1, 0.1, 0.1])
        b.pulse(0, 0, 2.0, 1e-3)
        b.pulse_many([(0, 0, 2.0, 0.5)] * 3)
        b.pulse_many([(1, 1, 2.0, 2.0)] * 300)  # 256 + 44, one command each
        b.reset(1, 1)  # the instrument's width_max_s (2.0 s) stands in for the reset
    assert fake_link.waits[:7] == pytest.approx(
        [
            base,
            base,
            base + 1e-3 + switch,
            base + 3 * 0.5 + 3 * switch,
            base + 256 * 2.0 + 256 * switch,
            base + 44 * 2.0 + 44 * switch,
            base + 2.0 + switch,
        ]
    )


def test_the_reset_allowance_can_be_given(fake_link: FakeLink) -> None:
    with ProtocolBackend(fake_link, switch_time_s=0.0, reset_time_s=1.0) as b:
        b.reset(0, 0)
    assert fake_link.waits[-2:] == pytest.approx([fake_link.timeout_s + 1.0, fake_link.timeout_s])


def test_params_carry_the_timing_allowances() -> None:
    from crossbar_hil.drivers.link import SWITCH_TIME_S, LinkParams

    p = LinkParams.model_validate({})
    assert (p.timeout_s, p.switch_time_s, p.reset_time_s, p.limits) == (2.0, SWITCH_TIME_S, None, None)
    with pytest.raises(ValueError, match="switch_time_s"):
        LinkParams.model_validate({"switch_time_s": -1})


# ------------------------------------------------------------------ user limits
def test_user_limits_narrow_what_the_instrument_allows(fake_link: FakeLink) -> None:
    user = UserLimits(pulse_v_max=1.5, width_max_s=0.01, read_v_max=0.5, max_batch=2)
    with ProtocolBackend(fake_link, limits=user) as b:
        lim, own = b.info.limits, b.instrument_info.limits
        assert (lim.pulse_v_max, lim.width_max_s, lim.max_batch) == (1.5, 0.01, 2)
        assert lim.read_v_max == own.read_v_max == 0.2  # a looser user limit widens nothing
        assert lim.width_min_s == own.width_min_s and own.pulse_v_max == 2.5
        fake_link.sent.clear()
        # 2.0 V and 0.1 s are fine for the instrument, not for this device.
        with pytest.raises(LimitError, match=r"amplitude_v=2\.0 V .*allowed \[-1\.5, 1\.5\] V"):
            b.pulse(0, 0, 2.0, 1e-3)
        with pytest.raises(LimitError, match="width_s"):
            b.pulse_many([(0, 0, 1.0, 1e-3), (0, 1, 1.0, 0.1)])
        assert fake_link.sent == []
        assert b.pulse_many([(0, 0, 1.0, 1e-3)] * 3) == 3
        assert [line.count(";") + 1 for line in fake_link.sent] == [2, 1]


def test_user_limits_that_leave_nothing_are_refused_at_connect(fake_link: FakeLink) -> None:
    with pytest.raises(ValueError, match="no allowed pulse width"):
        ProtocolBackend(fake_link, limits=UserLimits(width_min_s=3.0))
    assert fake_link.closed


def test_compliance_is_not_a_user_limit() -> None:
    with pytest.raises(ValueError, match=r"compliance_a .*not be enforced"):
        VisaBackend.from_params({"resource": "TCPIP::127.0.0.1::1::SOCKET", "limits": {"compliance_a": 1e-4}})


def test_the_instrument_closing_the_handshake_says_it_may_be_in_use() -> None:
    link = FakeLink()
    link.drop()
    with pytest.raises(ConnectionLost, match="may be in use by another client"):
        ProtocolBackend(link)
    assert link.closed
