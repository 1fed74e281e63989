"""Every setting declared once: hil train's options and the sweep's parameters come from the models."""

from __future__ import annotations

import argparse

import pytest
from pydantic import Field

from crossbar_hil.api.cli import build_parser, train
from crossbar_hil.api.cli.model_options import setting_values
from crossbar_hil.emulator.config import EmulatorConfig
from crossbar_hil.emulator.sweep.grid import PARAMETERS, parameters_for
from crossbar_hil.settings import settings
from crossbar_hil.training import config as config_module
from crossbar_hil.training.config import TrainingConfig
from crossbar_hil.training.rules import RULES

BY_DEVICE_CURVE = {"device_curve_siemens", "curve_source", "device_curve_label"}
"""TrainingConfig fields that --device-curve sets (a file, or a word for curve_source)."""


class Extended(TrainingConfig):
    """A training config with one field more, as a developer would add it."""

    bias_current_a: float = Field(
        2e-9, gt=0, le=1e-6, description="A setting added in a test, to see it appear everywhere."
    )


def _train_parser(model: type[TrainingConfig] = TrainingConfig) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hil")
    train.add_parser(parser.add_subparsers(dest="command"), model)
    return parser


def _actions(parser: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return {a.dest: a for a in sub.choices["train"]._actions}


def test_every_training_field_has_its_option_with_the_models_help() -> None:
    actions = _actions(_train_parser())
    for name, field in TrainingConfig.model_fields.items():
        if name in BY_DEVICE_CURVE:
            assert "device_curve" in actions
            continue
        assert name in actions, f"no hil train option for TrainingConfig.{name}"
        help_text = (actions[name].help or "").replace("%%", "%")  # argparse escapes %
        assert field.description and field.description.rstrip(".") in help_text
        assert f"--{name.replace('_', '-')}" in actions[name].option_strings


def test_the_options_keep_their_old_names() -> None:
    args = build_parser().parse_args(
        ["train", "--reset-time", "0.5", "--saturation-tol", "1e-12", "--start", "as-is", "--k", "3"]
    )
    assert (args.reset_time_s, args.saturation_tol_siemens, args.start_state) == (0.5, 1e-12, "as_is")
    assert args.scale_k == 3.0


def test_a_field_added_to_the_model_appears_in_hil_train_and_in_the_sweep() -> None:
    parser = _train_parser(Extended)
    text = " ".join(parser.format_help().split() + _subhelp(parser).split())
    assert "--bias-current-a A" in text
    described = "A setting added in a test, to see it appear everywhere. [> 0, <= 1e-06 A] (default 2e-09)"
    assert described in text
    args = parser.parse_args(["train", "--bias-current-a", "3e-9", "--max-epochs", "7"])
    values = setting_values(args, args.training_fields)
    assert values == {"bias_current_a": 3e-9, "max_epochs": 7}
    assert Extended.model_validate(values).bias_current_a == 3e-9  # Validated by the model, once.
    grid = parameters_for(training=Extended)
    assert grid["bias_current_a"].kind is float
    assert "A setting added in a test" in grid["bias_current_a"].help
    assert "bias_current_a" not in PARAMETERS


def _subhelp(parser: argparse.ArgumentParser) -> str:
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices["train"].format_help()


def test_every_scalar_field_is_a_grid_parameter_with_the_models_help() -> None:
    for s in settings(TrainingConfig):
        assert s.help.rstrip(".") in PARAMETERS[s.name].help
    for s in settings(EmulatorConfig, skip=("rows", "cols", "seed")):
        assert s.help.rstrip(".") in PARAMETERS[s.name].help


def test_the_rule_field_names_every_registered_rule() -> None:
    description = TrainingConfig.model_fields["rule"].description or ""
    for name in RULES:
        assert name in description


def test_building_the_parser_makes_the_default_run_config_once(monkeypatch: pytest.MonkeyPatch) -> None:
    made = []
    real = config_module.RunConfig

    class Counting(real):  # type: ignore[valid-type, misc]
        def __init__(self, **data: object) -> None:
            made.append(1)
            super().__init__(**data)

    monkeypatch.setattr(train, "RunConfig", Counting)
    build_parser()
    assert len(made) == 1


def test_hil_emulate_takes_its_server_options_from_the_server_models() -> None:
    from crossbar_hil.emulator.instrument.faults import FaultPlan
    from crossbar_hil.emulator.instrument.server import ServerOptions

    args = build_parser().parse_args(
        ["emulate", "--idle-timeout", "5", "--keepalive-s", "60", "--reply-delay", "0.1"]
    )
    assert ServerOptions.model_validate(setting_values(args, args.server_fields)).keepalive_s == 60.0
    assert FaultPlan.model_validate(setting_values(args, args.fault_fields)).reply_delay_s == 0.1
    assert args.idle_timeout_s == 5.0


def test_every_characterize_setting_has_its_option_with_the_models_help_and_old_name() -> None:
    from crossbar_hil.procedures.characterize import CharacterizeSettings

    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    actions = {a.dest: a for a in sub.choices["characterize"]._actions}
    for name, field in CharacterizeSettings.model_fields.items():
        assert name in actions, f"no hil characterize option for CharacterizeSettings.{name}"
        assert field.description and field.description in (actions[name].help or "")
    old = ["characterize", "--pulses", "7", "--amplitude", "1.5", "--width", "2e-3", "--reset-width", "0.5"]
    args = build_parser().parse_args(old)
    got = CharacterizeSettings.model_validate(setting_values(args, settings(CharacterizeSettings)))
    assert (got.n_pulses, got.amplitude_v, got.width_s, got.reset_width_s) == (7, 1.5, 2e-3, 0.5)


def test_every_service_setting_has_its_hil_serve_option_and_its_old_name(tmp_path) -> None:
    from crossbar_hil.api.cli import serve
    from crossbar_hil.api.service.settings import ServiceSettings

    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    actions = {a.dest: a for a in sub.choices["serve"]._actions}
    for name, field in ServiceSettings.model_fields.items():
        if name in ("token", "times"):  # From a file (never a command line); ControlTimes' own fields.
            continue
        assert name in actions, f"no hil serve option for ServiceSettings.{name}"
        assert field.description and field.description.rstrip(".") in (actions[name].help or "")
    args = build_parser().parse_args(
        ["serve", "--database", str(tmp_path / "r.sqlite3"), "--instrument-host", "192.0.2.7",
         "--instrument-host", "localhost", "--allowed-host", "bench.lab", "--cors-origin", "http://x",
         "--port", "0", "--trace-dir", str(tmp_path)]
    )  # fmt: skip
    settings, _ = serve.settings_from(args)
    assert settings.instrument_hosts == ["192.0.2.7", "localhost"]
    assert "bench.lab" in settings.allowed_hosts and "localhost" in settings.allowed_hosts
    assert (settings.cors_origins, settings.port, settings.trace_dir) == (["http://x"], 0, tmp_path)
    assert settings.database == tmp_path / "r.sqlite3"
