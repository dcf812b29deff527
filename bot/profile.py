"""The model's sizes and defaults as the bot needs them, from presets and settings (no weights loaded)."""

from __future__ import annotations

from bot.config import Settings
from bot.requests import ModelProfile
from pipelines.presets import resolve_model


def model_profile(settings: Settings) -> ModelProfile:
    """Preset defaults for known models, overridden by SONGE_RESOLUTION / SONGE_STEPS / SONGE_GUIDANCE."""
    model_id, preset = resolve_model(settings.model)
    base = preset.default_size if preset else 512
    steps = preset.steps if preset else 30
    guidance = preset.guidance if preset else 7.0
    multiple = 64 if base >= 1024 else 8
    return ModelProfile(
        model=model_id,
        base_resolution=settings.resolution or base,
        steps=settings.steps or steps,
        guidance=settings.guidance if settings.guidance is not None else guidance,
        multiple=multiple,
    )
