"""The image operations on the tiny model: sizes, kept pixels, upscalers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from pipelines import operations
from pipelines.diffusers_engine import DiffusersEngine
from pipelines.engine import PreviewFactory
from pipelines.errors import GenerationError
from pipelines.loading import load_engine
from pipelines.types import Box, FailureKind, Operation
from pipelines.upscalers import ModelUpscaler
from tests.support.tiny_models import png_bytes, tiny_request


def no_steps(step: int, steps: int, previews: PreviewFactory) -> None:
    pass


@pytest.fixture(scope="module")
def engine(tiny_model_dir: Path) -> DiffusersEngine:
    return load_engine(str(tiny_model_dir), device="cpu")


@pytest.fixture(scope="module")
def source() -> Image.Image:
    """A 96x64 test card: smooth gradients plus a few hard edges."""
    y, x = np.mgrid[0:64, 0:96]
    card = np.stack([x * 255 / 95, y * 255 / 63, ((x // 16 + y // 16) % 2) * 200 + 20], axis=-1)
    return Image.fromarray(card.astype(np.uint8))


def pixels(image: Image.Image) -> np.ndarray:
    return np.asarray(image, dtype=np.float32) / 255


@pytest.mark.parametrize(
    ("operation", "fields", "size"),
    [
        (Operation.IMAGE_TO_IMAGE, {"strength": 0.35}, (96, 64)),
        (Operation.IMAGE_TO_IMAGE, {"strength": 0.75, "width": 64, "height": 64}, (64, 64)),
        (Operation.UPSCALE, {"width": 192, "height": 128}, (192, 128)),
        (Operation.UPSCALE, {"width": 192, "height": 128, "strength": 0.35}, (192, 128)),
        (Operation.OUTPAINT, {"width": 128, "height": 96, "placement": Box(16, 16, 112, 80)}, (128, 96)),
        (Operation.INPAINT, {"region": Box(8, 8, 48, 40)}, (96, 64)),
    ],
)
def test_every_operation_returns_images_of_the_requested_size(
    engine: DiffusersEngine, source: Image.Image, operation: Operation, fields: dict[str, object], size: tuple[int, int]
) -> None:
    request = tiny_request(operation=operation, source_image=png_bytes(source), count=2, **fields)
    (out,) = engine.run([request], no_steps)
    assert [image.size for image in out.images] == [size, size]
    assert out.seeds == [7, 8]


def test_outpaint_keeps_the_source_in_its_placement(engine: DiffusersEngine, source: Image.Image) -> None:
    width, height, placement = operations.zoom_out_canvas(96, 64, 2.0, max_pixels=192 * 128)
    request = tiny_request(
        operation=Operation.OUTPAINT, source_image=png_bytes(source), width=width, height=height, placement=placement
    )

    (out,) = engine.run([request], no_steps)

    box = (placement.left, placement.top, placement.right, placement.bottom)
    expected = pixels(source.resize((placement.width, placement.height), Image.Resampling.LANCZOS))
    for image in out.images:
        assert image.size == (width, height)
        kept = pixels(image.crop(box))
        assert np.abs(kept - expected).mean() < 0.05  # only a seam of a few pixels blends into the new border
        inner = np.s_[4:-4, 4:-4]  # inside the seam the pixels are the source's own
        assert np.array_equal(kept[inner], expected[inner])
        outside = pixels(image)[:, : placement.left]
        assert outside.std() > 0  # the new border was painted, not left empty


def test_inpaint_keeps_the_pixels_outside_the_region(engine: DiffusersEngine, source: Image.Image) -> None:
    region = Box(32, 16, 64, 48)
    request = tiny_request(operation=Operation.INPAINT, source_image=png_bytes(source), region=region)

    (out,) = engine.run([request], no_steps)

    original = pixels(source)
    seam = 6
    outside = np.ones(original.shape[:2], dtype=bool)
    outside[region.top - seam : region.bottom + seam, region.left - seam : region.right + seam] = False
    for image in out.images:
        result = pixels(image)
        assert np.array_equal(result[outside], original[outside])
        inside = np.s_[region.top : region.bottom, region.left : region.right]
        assert np.abs(result[inside] - original[inside]).mean() > 2 / 255


def test_a_plain_upscale_is_lanczos(engine: DiffusersEngine, source: Image.Image) -> None:
    request = tiny_request(operation=Operation.UPSCALE, source_image=png_bytes(source), width=192, height=128, count=1)
    (out,) = engine.run([request], no_steps)
    assert out.images[0].tobytes() == source.resize((192, 128), Image.Resampling.LANCZOS).tobytes()


def test_large_outputs_tile_the_vae_only_during_the_call(engine: DiffusersEngine, source: Image.Image) -> None:
    seen = []
    vae = engine._pipe.vae

    def watch(step: int, steps: int, previews: PreviewFactory) -> None:
        seen.append(vae.use_tiling)

    request = tiny_request(
        operation=Operation.UPSCALE, source_image=png_bytes(source), width=192, height=128, strength=0.5, count=1
    )
    engine.run([request], watch)

    assert seen and all(seen)
    assert vae.use_tiling is False


def test_a_model_upscaler_runs_the_network_then_fits_the_size(source: Image.Image) -> None:
    network = torch.nn.Upsample(scale_factor=4, mode="nearest")
    upscaler = ModelUpscaler(network, device=torch.device("cpu"), dtype=torch.float32, name="nearest-x4")

    result = upscaler.upscale(source, (192, 128))

    assert result.size == (192, 128)
    assert np.abs(pixels(result) - pixels(source.resize((192, 128), Image.Resampling.NEAREST))).mean() < 3 / 255


@pytest.mark.parametrize(
    ("operation", "fields", "message"),
    [
        (Operation.IMAGE_TO_IMAGE, {"strength": 0.5, "source_image": None}, "needs a source image"),
        (Operation.IMAGE_TO_IMAGE, {"strength": 0.5, "source_image": b"not an image"}, "could not be read"),
        (Operation.IMAGE_TO_IMAGE, {"strength": 0.0}, "strength"),
        (Operation.OUTPAINT, {"placement": None}, "needs a placement"),
        (Operation.OUTPAINT, {"placement": Box(0, 0, 200, 10)}, "does not fit"),
        (Operation.INPAINT, {"region": Box(10, 10, 10, 20)}, "does not fit"),
    ],
)
def test_bad_operation_inputs_are_bad_input(
    engine: DiffusersEngine, source: Image.Image, operation: Operation, fields: dict[str, object], message: str
) -> None:
    request_fields: dict[str, object] = {"operation": operation, "source_image": png_bytes(source)}
    request_fields.update(fields)
    with pytest.raises(GenerationError, match=message) as info:
        engine.run([tiny_request(**request_fields)], no_steps)
    assert info.value.kind is FailureKind.BAD_INPUT
