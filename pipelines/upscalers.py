"""Pixel upscalers for Upscale: a Real-ESRGAN-class model through `spandrel`, or Lanczos.

`spandrel` is the optional `upscalers` extra (it pulls torchvision, which must match the
installed torch build), so it is imported only when an upscaler file is configured.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

import torch
from PIL import Image

from pipelines.errors import ModelLoadError

log = logging.getLogger(__name__)


class Upscaler(Protocol):
    name: str

    def upscale(self, image: Image.Image, size: tuple[int, int]) -> Image.Image:
        """`image` enlarged to exactly `size` (width, height)."""
        ...


class LanczosUpscaler:
    """Plain Lanczos resampling: no model, no GPU."""

    name = "lanczos"

    def upscale(self, image: Image.Image, size: tuple[int, int]) -> Image.Image:
        return image.resize(size, Image.Resampling.LANCZOS)


class ModelUpscaler:
    """A super-resolution network (`model` maps (1, 3, H, W) in [0, 1] to (1, 3, sH, sW)), then Lanczos to size."""

    def __init__(
        self, model: Callable[[torch.Tensor], torch.Tensor], *, device: torch.device, dtype: torch.dtype, name: str
    ) -> None:
        self._model = model
        self._device = device
        self._dtype = dtype
        self.name = name

    def upscale(self, image: Image.Image, size: tuple[int, int]) -> Image.Image:
        pixels = torch.frombuffer(bytearray(image.convert("RGB").tobytes()), dtype=torch.uint8)
        tensor = pixels.view(image.height, image.width, 3).permute(2, 0, 1).unsqueeze(0)
        with torch.inference_mode():
            out = self._model(tensor.to(self._device, self._dtype) / 255.0)
        array = (out[0].float().clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).cpu().numpy()
        return Image.fromarray(array).resize(size, Image.Resampling.LANCZOS)


def load_upscaler(path: Path | None, *, device: torch.device, dtype: torch.dtype) -> Upscaler:
    """The model at `path` (a .pth/.safetensors file spandrel recognises), or Lanczos when `path` is None."""
    if path is None:
        return LanczosUpscaler()
    if not path.is_file():
        raise ModelLoadError(f"SONGE_UPSCALER={str(path)!r} is not a file: point it at a .pth or .safetensors model")
    try:
        import spandrel
    except ImportError as exc:
        raise ModelLoadError(
            "SONGE_UPSCALER is set but spandrel is not installed: `pip install 'songe[upscalers]'` "
            "(it needs a torchvision that matches your torch), or unset SONGE_UPSCALER to use Lanczos"
        ) from exc
    try:
        descriptor = spandrel.ModelLoader(device=device).load_from_file(path)
    except Exception as exc:  # spandrel raises many types for unknown architectures and bad files
        raise ModelLoadError(f"SONGE_UPSCALER={str(path)!r} could not be loaded: {exc}") from exc
    if not isinstance(descriptor, spandrel.ImageModelDescriptor):
        raise ModelLoadError(f"SONGE_UPSCALER={str(path)!r} is not an image-to-image model")
    supported = {torch.float16: descriptor.supports_half, torch.bfloat16: descriptor.supports_bfloat16}
    run_dtype = dtype if supported.get(dtype, True) else torch.float32
    descriptor.to(device=device, dtype=run_dtype).eval()
    log.info("upscaler %s (x%s) on %s %s", path.name, descriptor.scale, device, run_dtype)
    return ModelUpscaler(descriptor, device=device, dtype=run_dtype, name=path.stem)
