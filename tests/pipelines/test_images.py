"""Output images: PNG with text chunks, attachment-sized re-encodes, previews, seeds."""

from __future__ import annotations

import io
import random

import pytest
from PIL import Image

from pipelines.fake import fake_request
from pipelines.images import encode_png, encode_preview, fit_attachment, png_metadata, read_png_metadata
from pipelines.seeds import image_seeds
from pipelines.types import Operation


def noise(width: int, height: int, seed: int = 0) -> Image.Image:
    """An image PNG cannot compress, so that sizes are predictable."""
    return Image.frombytes("RGB", (width, height), random.Random(seed).randbytes(width * height * 3))


def test_png_round_trips_pixels_and_metadata_including_non_latin_text() -> None:
    request = fake_request("job-7", prompt="un renard roux 🦊", negative_prompt="texte", seed=9, steps=30, guidance=7.5)
    metadata = png_metadata(request, seed=10, model="tiny-sd")
    image = noise(32, 16)
    png = encode_png(image, metadata)
    assert read_png_metadata(png) == metadata
    assert metadata == {
        "prompt": "un renard roux 🦊",
        "negative_prompt": "texte",
        "seed": "10",
        "steps": "30",
        "guidance": "7.5",
        "model": "tiny-sd",
        "job_id": "job-7",
        "operation": Operation.TEXT_TO_IMAGE.value,
    }
    decoded = Image.open(io.BytesIO(png))
    assert decoded.format == "PNG" and decoded.tobytes() == image.tobytes()


def test_a_png_within_the_limit_is_kept_as_it_is() -> None:
    png = encode_png(noise(64, 64), {})
    assert fit_attachment(png, limit=len(png)) == (png, "png")


@pytest.mark.parametrize("fraction", [0.9, 0.3, 0.02])
def test_a_png_over_the_limit_is_re_encoded_within_it(fraction: float) -> None:
    png = encode_png(noise(256, 256), {"prompt": "x"})
    limit = int(len(png) * fraction)
    data, extension = fit_attachment(png, limit=limit)
    assert len(data) <= limit and extension in ("webp", "jpg")
    decoded = Image.open(io.BytesIO(data))
    assert decoded.format == {"webp": "WEBP", "jpg": "JPEG"}[extension]
    assert decoded.width <= 256 and decoded.width / decoded.height == pytest.approx(1.0, abs=0.02)


def test_an_image_that_cannot_fit_raises() -> None:
    with pytest.raises(ValueError):
        fit_attachment(encode_png(noise(64, 64), {}), limit=50)


@pytest.mark.parametrize("size", [(1024, 512), (64, 300), (100, 100)])
def test_previews_are_small_jpegs_keeping_the_aspect(size: tuple[int, int]) -> None:
    preview = Image.open(io.BytesIO(encode_preview(noise(*size))))
    assert preview.format == "JPEG"
    assert max(preview.size) == min(256, max(size))
    assert preview.width / preview.height == pytest.approx(size[0] / size[1], rel=0.05)


def test_image_seeds_follow_the_job_seed_and_wrap() -> None:
    assert image_seeds(41, 4) == [41, 42, 43, 44]
    assert image_seeds(2**32 - 2, 4) == [2**32 - 2, 2**32 - 1, 0, 1]
    assert image_seeds(5, 0) == []
