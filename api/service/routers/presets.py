"""The named training presets, in full: what a new-run form fills in when a preset is chosen."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, Field

from crossbar_hil.training.config import DEFAULT_PRESET, PRESETS, TrainingConfig

router = APIRouter(tags=["runs"])


class PresetsView(BaseModel):
    default: str = Field(description="The preset a RunConfig without one starts from.")
    presets: dict[str, TrainingConfig] = Field(
        description="Preset name -> every training setting it gives (its values over TrainingConfig's "
        "defaults)."
    )


@router.get("/presets", summary="Named training presets (RunConfig.preset), every setting spelled out")
def read_presets() -> PresetsView:
    return PresetsView(
        default=DEFAULT_PRESET, presets={name: TrainingConfig(**values) for name, values in PRESETS.items()}
    )
