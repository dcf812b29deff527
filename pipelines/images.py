"""Encoding of output images: PNG with metadata, attachment-sized re-encodes, small JPEG previews."""

from __future__ import annotations

import io

from PIL import Image, PngImagePlugin

from pipelines.engine import EngineOutput
from pipelines.types import GenerationRequest, GenerationResult

ATTACHMENT_LIMIT = 10 * 1024 * 1024
"""Discord's upload limit for a server without boosts, in bytes."""

PREVIEW_SIDE = 256

# Lossy encodings tried in turn when a PNG is over the limit: WebP first, then JPEG at falling quality.
_LOSSY = (("WEBP", "webp", 90), ("JPEG", "jpg", 90), ("JPEG", "jpg", 80), ("JPEG", "jpg", 65), ("JPEG", "jpg", 50))
_SMALLEST_SIDE = 16


def png_metadata(request: GenerationRequest, *, seed: int, model: str) -> dict[str, str]:
    """The text chunks written into one output image of `request`."""
    return {
        "prompt": request.prompt,
        "negative_prompt": request.negative_prompt,
        "seed": str(seed),
        "steps": str(request.steps),
        "guidance": f"{request.guidance:g}",
        "model": model,
        "job_id": request.job_id,
        "operation": request.operation.value,
    }


def encode_png(image: Image.Image, metadata: dict[str, str]) -> bytes:
    """`image` as PNG bytes with one text chunk per `metadata` item (iTXt where the text is not Latin-1)."""
    info = PngImagePlugin.PngInfo()
    for key, value in metadata.items():
        info.add_text(key, value)
    if image.mode not in ("RGB", "RGBA", "L"):
        image = image.convert("RGB")
    out = io.BytesIO()
    image.save(out, format="PNG", pnginfo=info)
    return out.getvalue()


def read_png_metadata(data: bytes) -> dict[str, str]:
    """The text chunks of a PNG written by `encode_png`."""
    with Image.open(io.BytesIO(data)) as image:
        image.load()
        text = getattr(image, "text", {})
        return {str(key): str(value) for key, value in text.items()}


def fit_attachment(png: bytes, limit: int = ATTACHMENT_LIMIT) -> tuple[bytes, str]:
    """Bytes no larger than `limit` and their file extension.

    The PNG itself when it fits; otherwise WebP, then JPEG at falling quality, and as a last
    resort the same at three quarters of the size, again and again. Lossy copies lose the
    PNG's text chunks. Raises `ValueError` when not even a tiny JPEG fits.
    """
    if len(png) <= limit:
        return png, "png"
    with Image.open(io.BytesIO(png)) as decoded:
        image = decoded.convert("RGB")
    while min(image.size) >= _SMALLEST_SIDE:
        for fmt, extension, quality in _LOSSY:
            out = io.BytesIO()
            image.save(out, format=fmt, quality=quality)
            if out.tell() <= limit:
                return out.getvalue(), extension
        image = image.resize((image.width * 3 // 4, image.height * 3 // 4), Image.Resampling.LANCZOS)
    raise ValueError(f"no encoding of this image fits in {limit} bytes")


def encode_preview(image: Image.Image, *, side: int = PREVIEW_SIDE, quality: int = 70) -> bytes:
    """A small JPEG of `image`, its longest side at most `side` pixels."""
    small = image.convert("RGB")
    small.thumbnail((side, side), Image.Resampling.BILINEAR)
    out = io.BytesIO()
    small.save(out, format="JPEG", quality=quality)
    return out.getvalue()


def encode_result(
    request: GenerationRequest, output: EngineOutput, *, gpu_seconds: float, model: str
) -> GenerationResult:
    """The result of `request`: each image of `output` as a PNG carrying its metadata."""
    images = tuple(
        encode_png(image, png_metadata(request, seed=seed, model=model))
        for image, seed in zip(output.images, output.seeds, strict=True)
    )
    width, height = output.images[0].size if output.images else (request.width, request.height)
    return GenerationResult(
        job_id=request.job_id,
        images=images,
        seeds=tuple(output.seeds),
        width=width,
        height=height,
        gpu_seconds=gpu_seconds,
        model=model,
        nsfw=tuple(output.nsfw),
        truncated=output.truncated,
    )
