"""``hil emulate`` refuses bad options with the field and the allowed range, before serving."""

from __future__ import annotations

import pytest

from api.cli import main


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--reply-delay", "-1"], "reply_delay_s=-1.0: Input should be greater than or equal to 0"),
        (["--seed", "-1"], "seed=-1: Input should be greater than or equal to 0"),
        (["--k", "0"], "scale_k=0.0: Input should be greater than 0"),
        (["--trace", "/no/such.dat"], "trace file not found: /no/such.dat"),
    ],
)
def test_bad_options_exit_2(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["emulate", *argv]) == 2
    assert message in capsys.readouterr().err
