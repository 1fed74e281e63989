"""One key per physical device, whatever the spelling of its address (the run manager's lock)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from crossbar_hil.runs.device_key import device_key, host_key
from crossbar_hil.runs.manager import InstrumentBusy, RunManager, queue_key
from crossbar_hil.runs.store import RunStore
from crossbar_hil.training.config import BackendSpec, RunConfig


@pytest.fixture
def pty_path() -> str:
    master, slave = os.openpty()
    path = os.ttyname(slave)
    yield path
    os.close(slave)
    os.close(master)


def test_the_serial_and_visa_spellings_of_one_port_and_a_symlink_to_it_are_one_device(
    pty_path: str, tmp_path: Path
) -> None:
    link = tmp_path / "ttyCROSSBAR"
    link.symlink_to(pty_path)
    spellings = [
        pty_path,
        f"ASRL{pty_path}::INSTR",
        f"asrl{pty_path}::instr",
        str(link),
        f"ASRL{link}::INSTR",
    ]
    assert {device_key(s) for s in spellings} == {f"serial:{os.path.realpath(pty_path)}"}
    assert device_key("/dev/ttyUSB1") != device_key("/dev/ttyUSB0")


def test_the_tcp_spellings_of_one_endpoint_are_one_device() -> None:
    spellings = [
        "socket://127.0.0.1:5025",
        "socket://localhost:5025",
        "socket://[::1]:5025",
        "TCPIP::127.0.0.1::5025::SOCKET",
        "TCPIP0::localhost::5025::SOCKET",
        "tcpip::127.0.0.1::05025::socket",
    ]
    assert {device_key(s) for s in spellings} == {"tcp:loopback:5025"}
    assert device_key("socket://127.0.0.1:5026") != device_key("socket://127.0.0.1:5025")
    assert device_key("TCPIP::192.168.1.20::5025::SOCKET") == device_key("socket://192.168.1.20:5025")
    assert device_key("TCPIP::192.168.1.20::5025::SOCKET") != device_key("TCPIP::192.168.1.21::5025::SOCKET")


def test_other_visa_resources_differ_only_by_what_names_a_device() -> None:
    assert device_key("USB::0x1234::0x5678::SN1::INSTR") == device_key("usb0::0x1234::0x5678::SN1::INSTR")
    assert device_key("GPIB0::5::INSTR") != device_key("GPIB0::6::INSTR")
    assert host_key("LOCALHOST") == host_key("127.0.0.2") == "loopback"


def test_the_manager_refuses_a_second_run_on_one_port_spelled_another_way(
    tmp_path: Path, pty_path: str
) -> None:
    from crossbar_hil.emulator.crossbar import EmulatedCrossbar

    def build(name: str, params: object) -> EmulatedCrossbar:
        return EmulatedCrossbar.from_params({})

    store = RunStore(tmp_path / "runs.sqlite3")
    manager = RunManager(store, build_backend=build, backend_names=lambda: ["serial", "visa"])
    try:
        body = {"preset": "reference", "training": {"max_epochs": 100_000, "patience": 0}}
        first, _ = manager.start(
            RunConfig.model_validate({**body, "backend": {"name": "serial", "params": {"port": pty_path}}})
        )
        second = {"name": "visa", "params": {"resource": f"ASRL{pty_path}::INSTR"}}
        with pytest.raises(InstrumentBusy, match=f"in use by run {first.id}"):
            manager.start(RunConfig.model_validate({**body, "backend": second}))
        assert queue_key(BackendSpec.model_validate(second)) == f"serial:{os.path.realpath(pty_path)}"
    finally:
        manager.shutdown(30)
        store.close()
