"""Loading the configured model into a `DiffusersEngine`, and the cheap start-up check of the setting.

The model comes from `AutoPipelineForText2Image.from_pretrained`, so any diffusers text-to-image
model id or local folder works; presets add their scheduler and defaults. Every failure the
operator can fix becomes a one-line `ModelLoadError` naming the setting and what to do.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import diffusers
import torch
from diffusers import AutoencoderTiny, AutoPipelineForText2Image

from pipelines.devices import pick_device, pick_dtype
from pipelines.diffusers_engine import DiffusersEngine
from pipelines.errors import ModelLoadError
from pipelines.presets import resolve_model
from pipelines.sources import is_local_path, validate_model_source
from pipelines.upscalers import load_upscaler

log = logging.getLogger(__name__)

_LOAD_ERRORS = (OSError, ValueError, RuntimeError, KeyError, TypeError)
_DIFFUSERS_VERSION = tuple(int(part) for part in diffusers.__version__.split(".")[:2])
_DTYPE_ARG = "dtype" if _DIFFUSERS_VERSION >= (0, 42) else "torch_dtype"  # `torch_dtype` is deprecated from 0.42


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else exc.__class__.__name__


def _load_ip_adapter(pipe: Any, spec: str) -> None:
    """`spec`: a local weights file (its image encoder in `image_encoder/` beside it) or OWNER/REPO/[SUBFOLDER/]FILE."""
    path = Path(spec).expanduser()
    if path.is_file():
        source, subfolder, weight = str(path.parent), "", path.name
    else:
        parts = spec.strip("/").split("/")
        if len(parts) < 3:
            raise ModelLoadError(
                f"SONGE_IP_ADAPTER={spec!r} should be a weights file or OWNER/REPO/[SUBFOLDER/]FILE, "
                "e.g. h94/IP-Adapter/models/ip-adapter_sd15.safetensors"
            )
        source, subfolder, weight = "/".join(parts[:2]), "/".join(parts[2:-1]), parts[-1]
    try:
        pipe.load_ip_adapter(source, subfolder=subfolder, weight_name=weight)
    except _LOAD_ERRORS as exc:
        raise ModelLoadError(f"SONGE_IP_ADAPTER={spec!r} could not be loaded: {_first_line(exc)}") from exc


def _load_taesd(spec: str, *, device: torch.device, dtype: torch.dtype) -> Any:
    try:
        tiny = AutoencoderTiny.from_pretrained(spec, **{_DTYPE_ARG: dtype})  # type: ignore[no-untyped-call]
    except _LOAD_ERRORS as exc:
        raise ModelLoadError(
            f"SONGE_TAESD={spec!r} could not be loaded: {_first_line(exc)}; use a TAESD id such as madebyollin/taesd "
            "(taesdxl for SDXL, taef1 for Flux) or unset it"
        ) from exc
    return tiny.to(device).eval()


def load_engine(
    model: str,
    *,
    device: str = "auto",
    dtype: str = "auto",
    compile: bool = False,
    upscaler: Path | None = None,
    ip_adapter: str | None = None,
    taesd: str | None = None,
) -> DiffusersEngine:
    """Load `model` (preset, hub id or folder) onto `device` in `dtype`, ready to run batches."""
    validate_model_source(model)
    model_id, preset = resolve_model(model)
    torch_device = pick_device(device)
    torch_dtype = pick_dtype(torch_device, dtype)
    pixel_upscaler = load_upscaler(upscaler, device=torch_device, dtype=torch_dtype)
    source = str(Path(model_id).expanduser()) if is_local_path(model_id) else model_id
    try:
        options = {_DTYPE_ARG: torch_dtype}
        pipe = AutoPipelineForText2Image.from_pretrained(source, **options)  # type: ignore[no-untyped-call]
    except _LOAD_ERRORS as exc:
        raise ModelLoadError(
            f"SONGE_MODEL={model!r} could not be loaded: {_first_line(exc)} "
            "(check the id or folder; a hub model needs the network once, or HF_HUB_OFFLINE=1 with it cached)"
        ) from exc
    pipe.to(torch_device)
    if torch_device.type == "cuda" and getattr(pipe, "unet", None) is not None:
        pipe.unet.to(memory_format=torch.channels_last)
        pipe.vae.to(memory_format=torch.channels_last)
    if ip_adapter:
        _load_ip_adapter(pipe, ip_adapter)
    tiny = _load_taesd(taesd, device=torch_device, dtype=torch_dtype) if taesd else None
    try:
        engine = DiffusersEngine(
            pipe, model=model, preset=preset, upscaler=pixel_upscaler, taesd=tiny, ip_adapter=bool(ip_adapter)
        )
    except ValueError as exc:
        raise ModelLoadError(
            f"SONGE_MODEL={model!r} loads a {type(pipe).__name__}, which Songe cannot drive: "
            "use a Stable Diffusion 1.x/2.x, SDXL or Flux model"
        ) from exc
    if compile:
        engine.compile()
    log.info("loaded %s (%s) on %s in %s", model, type(pipe).__name__, torch_device, torch_dtype)
    return engine
