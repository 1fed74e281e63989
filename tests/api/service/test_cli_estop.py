"""``hil estop``: the emergency stop of a live service from the command line, with its token."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from service_support import TOKEN, live_service

from crossbar_hil.api.cli import main
from crossbar_hil.api.service.settings import ServiceSettings

pytestmark = pytest.mark.system


def test_hil_estop_latches_the_service_and_clear_releases_it(
    settings: ServiceSettings,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("HIL_TOKEN", raising=False)
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    token_file.chmod(0o600)
    with live_service(settings) as url:
        assert main(["estop", "--url", url, "--token-file", str(token_file), "--reason", "smoke"]) == 0
        assert "LATCHED" in capsys.readouterr().out
        state = httpx.get(f"{url}/emergency-stop").json()
        assert state["latched"] and state["reason"] == "smoke"
        monkeypatch.setenv("HIL_TOKEN", TOKEN)
        assert main(["estop", "--url", url, "--clear"]) == 0
        assert httpx.get(f"{url}/emergency-stop").json()["latched"] is False
        monkeypatch.setenv("HIL_TOKEN", "wrong-token-0123456789")
        assert main(["estop", "--url", url]) == 3
        assert "401" in capsys.readouterr().err
        assert httpx.get(f"{url}/emergency-stop").json()["latched"] is False


def test_hil_estop_without_a_token_or_a_service_says_so_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("HIL_TOKEN", raising=False)
    assert main(["estop", "--url", "http://127.0.0.1:9", "--database", str(tmp_path / "db")]) == 2
    assert "no token" in capsys.readouterr().err
    monkeypatch.setenv("HIL_TOKEN", TOKEN)
    assert main(["estop", "--url", "http://127.0.0.1:9"]) == 3
    err = capsys.readouterr().err
    assert "cannot reach the service" in err and len(err.strip().splitlines()) == 1
