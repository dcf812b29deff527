"""Named model presets: the hub id, scheduler and defaults that suit each common model.

`SONGE_MODEL` may name a preset (`sd-turbo`), a hub id (`stabilityai/sd-turbo`, which picks
up the same preset) or a local diffusers folder (no preset: the folder's own scheduler and
defaults derived from its config).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Preset:
    """Defaults for one model; `scheduler` is a diffusers scheduler class name."""

    name: str
    model_id: str
    scheduler: str
    steps: int
    guidance: float
    default_size: int
    licence: str
    min_vram_gb: float
    step_range: tuple[int, int] = (1, 100)
    scheduler_options: tuple[tuple[str, object], ...] = ()


PRESETS: dict[str, Preset] = {
    p.name: p
    for p in (
        Preset(
            name="sd-turbo",
            model_id="stabilityai/sd-turbo",
            scheduler="EulerDiscreteScheduler",
            steps=4,
            guidance=0.0,
            default_size=512,
            licence="Stability AI Community License",
            min_vram_gb=4,
            step_range=(1, 4),
            scheduler_options=(("timestep_spacing", "trailing"),),
        ),
        Preset(
            name="sdxl-turbo",
            model_id="stabilityai/sdxl-turbo",
            scheduler="EulerDiscreteScheduler",
            steps=4,
            guidance=0.0,
            default_size=512,
            licence="Stability AI Community License",
            min_vram_gb=8,
            step_range=(1, 4),
            scheduler_options=(("timestep_spacing", "trailing"),),
        ),
        Preset(
            name="sdxl",
            model_id="stabilityai/stable-diffusion-xl-base-1.0",
            scheduler="EulerDiscreteScheduler",
            steps=30,
            guidance=7.0,
            default_size=1024,
            licence="CreativeML Open RAIL++-M",
            min_vram_gb=10,
            step_range=(10, 60),
        ),
        Preset(
            name="flux-schnell",
            model_id="black-forest-labs/FLUX.1-schnell",
            scheduler="FlowMatchEulerDiscreteScheduler",
            steps=4,
            guidance=0.0,
            default_size=1024,
            licence="Apache-2.0",
            min_vram_gb=36,
            step_range=(1, 8),
        ),
        Preset(
            name="sd15",
            model_id="stable-diffusion-v1-5/stable-diffusion-v1-5",
            scheduler="EulerDiscreteScheduler",
            steps=30,
            guidance=7.5,
            default_size=512,
            licence="CreativeML Open RAIL-M",
            min_vram_gb=4,
            step_range=(10, 60),
        ),
    )
}


def resolve_model(value: str) -> tuple[str, Preset | None]:
    """The model id or folder to load for `value`, and its preset when it names one (by name or hub id)."""
    value = value.strip()
    preset = PRESETS.get(value.lower())
    if preset is not None:
        return preset.model_id, preset
    for preset in PRESETS.values():
        if preset.model_id.lower() == value.lower():
            return value, preset
    return value, None
