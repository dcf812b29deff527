"""Device and dtype choice: CUDA (bf16 where supported, else fp16) > MPS (fp16) > CPU (fp32), overridable."""

from __future__ import annotations

import logging

import torch

from pipelines.errors import ModelLoadError

log = logging.getLogger(__name__)

DTYPES: dict[str, torch.dtype] = {
    "fp32": torch.float32,
    "float32": torch.float32,
    "fp16": torch.float16,
    "float16": torch.float16,
    "bf16": torch.bfloat16,
    "bfloat16": torch.bfloat16,
}


def _mps_available() -> bool:
    return bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available())


def pick_device(requested: str = "auto") -> torch.device:
    """`auto` picks CUDA, then MPS, then the CPU; otherwise the named device, which must exist."""
    requested = requested.strip().lower() or "auto"
    if requested == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("mps") if _mps_available() else torch.device("cpu")
    try:
        device = torch.device(requested)
    except RuntimeError as exc:
        raise ModelLoadError(f"SONGE_DEVICE={requested!r} is not a device: use auto, cuda, cuda:N, mps or cpu") from exc
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ModelLoadError(f"SONGE_DEVICE={requested!r} but this torch build sees no CUDA GPU: use auto or cpu")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise ModelLoadError(f"SONGE_DEVICE={requested!r} but only {torch.cuda.device_count()} CUDA GPU(s) exist")
    if device.type == "mps" and not _mps_available():
        raise ModelLoadError(f"SONGE_DEVICE={requested!r} but MPS is not available here: use auto or cpu")
    if device.type not in ("cuda", "mps", "cpu"):
        raise ModelLoadError(f"SONGE_DEVICE={requested!r} is not supported: use auto, cuda, cuda:N, mps or cpu")
    return device


def pick_dtype(device: torch.device, requested: str = "auto") -> torch.dtype:
    """`auto`: bf16 on CUDA GPUs that support it, fp16 on other GPUs and MPS, fp32 on the CPU."""
    requested = requested.strip().lower() or "auto"
    if requested == "auto":
        if device.type == "cuda":
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.float16 if device.type == "mps" else torch.float32
    if requested not in DTYPES:
        raise ModelLoadError(f"SONGE_DTYPE={requested!r} is not a dtype: use auto, fp32, fp16 or bf16")
    dtype = DTYPES[requested]
    if device.type == "cpu" and dtype == torch.float16:
        log.warning("fp16 on the CPU is slow and some layers lack fp16 kernels; fp32 or bf16 suit it better")
    return dtype


def synchronize(device: torch.device) -> None:
    """Wait for queued GPU work, so the wall time measured around a batch is its GPU time."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()
