"""Cheap previews of latents mid-run, and the grid that shows a job's images together.

Without a tiny autoencoder, 4-channel latents (SD 1.x/2.x, SDXL) become RGB through a
linear map fitted per latent space (the published latent-to-RGB factors for each family);
other latent spaces fall back to their first three channels, normalised. With TAESD
(`AutoencoderTiny`) configured, the preview is a real, small decode.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from PIL import Image

# Rows: latent channels; columns: R, G, B. Applied to the latents the denoiser sees (scaled space).
SD_FACTORS = (
    (0.3512, 0.2297, 0.3227),
    (0.3250, 0.4974, 0.2350),
    (-0.2829, 0.1762, 0.2721),
    (-0.2120, -0.2616, -0.7177),
)
SDXL_FACTORS = (
    (0.3651, 0.4232, 0.4341),
    (-0.2533, -0.0042, 0.1068),
    (0.1076, 0.1111, -0.0362),
    (-0.3165, -0.2492, -0.2188),
)
SDXL_BIAS = (0.1084, -0.0175, -0.0011)
TILE_SIDE = 256


def make_grid(images: Sequence[Image.Image], *, cols: int = 2) -> Image.Image:
    """Images (of one size) in rows of `cols`: four images make a 2x2 grid, one image stays as it is."""
    if len(images) == 1:
        return images[0]
    cols = min(cols, len(images))
    rows = math.ceil(len(images) / cols)
    w, h = images[0].size
    grid = Image.new("RGB", (cols * w, rows * h))
    for i, image in enumerate(images):
        grid.paste(image.resize((w, h)), ((i % cols) * w, (i // cols) * h))
    return grid


def _to_pil(rgb: torch.Tensor) -> list[Image.Image]:
    """(N, 3, H, W) in [0, 1] as PIL images."""
    array = (rgb.clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
    return [Image.fromarray(a) for a in array]


class LatentPreviewer:
    """Turns a batch's latents into one small image per job (a 2x2 grid for four images)."""

    def __init__(self, *, family: str, taesd: Any = None) -> None:
        self._family = family
        self._taesd = taesd

    def __call__(self, latents: torch.Tensor, counts: Sequence[int]) -> list[Image.Image]:
        """`latents` (N, C, H, W) of N = sum(counts) images, in job order."""
        with torch.inference_mode():
            images = _to_pil(self._decode(latents.detach()))
        previews, start = [], 0
        for count in counts:
            previews.append(make_grid(images[start : start + count]))
            start += count
        return previews

    def _decode(self, latents: torch.Tensor) -> torch.Tensor:
        if self._taesd is not None:
            config = self._taesd.config
            z = latents.to(self._taesd.dtype) / config.scaling_factor + getattr(config, "shift_factor", 0.0)
            rgb = self._taesd.decode(z, return_dict=False)[0].float() / 2 + 0.5
            scale = TILE_SIDE / max(rgb.shape[-2:])
            return torch.nn.functional.interpolate(rgb, scale_factor=scale, mode="area") if scale < 1 else rgb
        z = latents.float()
        if z.shape[1] == 4:
            factors = torch.tensor(SDXL_FACTORS if self._family == "sdxl" else SD_FACTORS, device=z.device)
            bias = torch.tensor(SDXL_BIAS if self._family == "sdxl" else (0.0, 0.0, 0.0), device=z.device)
            rgb = torch.einsum("nchw,cr->nrhw", z, factors) + bias.view(1, 3, 1, 1)
            return rgb / 2 + 0.5
        first = z[:, :3]
        mean = first.mean(dim=(2, 3), keepdim=True)
        std = first.std(dim=(2, 3), keepdim=True).clamp_min(1e-6)
        return (first - mean) / (4 * std) + 0.5
