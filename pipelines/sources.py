"""Where a model comes from: a preset, a hub id or a local folder; checked without importing torch."""

from __future__ import annotations

import re
from pathlib import Path

from pipelines.errors import ModelLoadError
from pipelines.presets import PRESETS, resolve_model

_HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*(/[A-Za-z0-9][\w.-]*)?")


def is_local_path(value: str) -> bool:
    """Whether `value` names a local folder rather than a hub id."""
    return value.startswith(("/", "~", ".")) or "\\" in value or value.count("/") > 1 or Path(value).exists()


def validate_model_source(model: str) -> None:
    """Check SONGE_MODEL without loading anything: a preset, a hub id, or an existing diffusers folder."""
    value = model.strip()
    if not value:
        raise ModelLoadError(
            f"SONGE_MODEL is empty: set it to a preset ({', '.join(PRESETS)}), a Hugging Face model id "
            "or a folder saved with diffusers' save_pretrained"
        )
    model_id, _ = resolve_model(value)
    if is_local_path(model_id):
        folder = Path(model_id).expanduser()
        if not folder.is_dir():
            raise ModelLoadError(
                f"SONGE_MODEL={model!r}: no such folder; point SONGE_MODEL at a diffusers model folder "
                "(one with model_index.json) or use a preset or hub id"
            )
        if not (folder / "model_index.json").is_file():
            raise ModelLoadError(
                f"SONGE_MODEL={model!r} has no model_index.json, so it is not a diffusers pipeline folder: "
                "point SONGE_MODEL at the folder save_pretrained wrote, or use a preset or hub id"
            )
    elif not _HUB_ID.fullmatch(model_id):
        raise ModelLoadError(
            f"SONGE_MODEL={model!r} is neither a preset, a Hugging Face id (owner/name) nor an existing folder"
        )
