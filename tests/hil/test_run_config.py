"""RunConfig: one default for every edge; the preset lies under the given training fields."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from crossbar_hil.training.config import PRESETS, RunConfig, TrainingConfig


def test_the_default_run_trains_with_the_recommended_settings() -> None:
    config = RunConfig()
    assert config.preset == "recommended"
    assert config.training == TrainingConfig.recommended()
    assert config.training.rule == "planned" and config.training.gain == "calibrated"
    assert RunConfig.model_validate({}) == config  # POST /runs {} is RunConfig().


def test_the_reference_preset_is_the_reference() -> None:
    assert RunConfig(preset="reference").training == TrainingConfig.reference()
    assert RunConfig.model_validate({"preset": "reference"}).training.rule == "manhattan"


@pytest.mark.parametrize("preset", list(PRESETS))
def test_given_training_fields_override_the_preset_and_the_rest_keep_it(preset: str) -> None:
    config = RunConfig.model_validate({"preset": preset, "training": {"max_epochs": 7, "beta": 1e7}})
    expected = TrainingConfig(**PRESETS[preset])
    assert config.training == expected.model_copy(update={"max_epochs": 7, "beta": 1e7})


def test_a_config_validates_back_to_itself_whatever_its_preset() -> None:
    for config in (
        RunConfig(),
        RunConfig(preset="reference"),
        RunConfig.model_validate({"preset": "reference", "training": {"rule": "planned"}}),
    ):
        assert RunConfig.model_validate(config.model_dump(mode="json")) == config
        assert RunConfig.model_validate_json(config.model_dump_json()) == config


def test_a_training_config_instance_is_taken_whole() -> None:
    assert RunConfig(training=TrainingConfig()).training == TrainingConfig()


def test_an_unknown_preset_is_refused_by_name() -> None:
    with pytest.raises(ValidationError, match="preset"):
        RunConfig.model_validate({"preset": "fastest"})
