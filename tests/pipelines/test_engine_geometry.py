"""Canvas geometry for Zoom Out, Make Square and Pan, and the prompt features' pure functions."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from pipelines.errors import GenerationError
from pipelines.operations import inpaint_inputs, make_square_canvas, outpaint_inputs, pan_canvas, zoom_out_canvas
from pipelines.previews import make_grid
from pipelines.prompts import PromptPart, chaos_noise, guidance_for_stylize, parse_weights
from pipelines.types import Box


@pytest.mark.parametrize(
    ("call", "expected"),
    [
        (lambda: zoom_out_canvas(512, 512, 2.0, max_pixels=2048**2), (1024, 1024, Box(256, 256, 768, 768))),
        (lambda: zoom_out_canvas(1024, 1024, 2.0), (1024, 1024, Box(256, 256, 768, 768))),
        (lambda: zoom_out_canvas(512, 512, 1.5, max_pixels=2048**2), (768, 768, Box(128, 128, 640, 640))),
        (lambda: zoom_out_canvas(96, 64, 2.0, max_pixels=192 * 128), (192, 128, Box(48, 32, 144, 96))),
        (lambda: zoom_out_canvas(512, 512, 1.0), (512, 512, Box(0, 0, 512, 512))),
        (lambda: make_square_canvas(96, 64), (96, 96, Box(0, 16, 96, 80))),
        (lambda: make_square_canvas(64, 96), (96, 96, Box(16, 0, 80, 96))),
        (lambda: pan_canvas(512, 512, "left", max_pixels=2048**2), (768, 512, Box(256, 0, 768, 512))),
        (lambda: pan_canvas(512, 512, "right", max_pixels=2048**2), (768, 512, Box(0, 0, 512, 512))),
        (lambda: pan_canvas(512, 512, "up", max_pixels=2048**2), (512, 768, Box(0, 256, 512, 768))),
        (lambda: pan_canvas(512, 512, "down", 1.0, max_pixels=2048**2), (512, 1024, Box(0, 0, 512, 512))),
        (lambda: pan_canvas(2048, 1024, "right", max_pixels=2048**2), (2048, 680, Box(0, 0, 1360, 680))),
    ],
)
def test_canvas_layouts(call, expected) -> None:  # type: ignore[no-untyped-def]
    assert call() == expected


@given(
    src_w=st.integers(64, 3000),
    src_h=st.integers(64, 3000),
    factor=st.floats(1.0, 2.0),
    multiple=st.sampled_from([8, 16, 64]),
    kind=st.sampled_from(["zoom", "square", "left", "right", "up", "down"]),
)
def test_every_canvas_fits_the_budget_and_holds_the_source(
    src_w: int, src_h: int, factor: float, multiple: int, kind: str
) -> None:
    limits = {"multiple": multiple, "max_side": 2048, "max_pixels": 1024 * 1024}
    if kind == "zoom":
        width, height, box = zoom_out_canvas(src_w, src_h, factor, **limits)
    elif kind == "square":
        width, height, box = make_square_canvas(src_w, src_h, **limits)
    else:
        width, height, box = pan_canvas(src_w, src_h, kind, factor - 1 or 0.5, **limits)  # type: ignore[arg-type]

    assert width % multiple == 0 and height % multiple == 0
    assert width * height <= 1024 * 1024 and max(width, height) <= 2048
    assert 0 <= box.left < box.right <= width and 0 <= box.top < box.bottom <= height
    assert abs(box.width / box.height - src_w / src_h) < 0.05 * src_w / src_h + 2 / box.height
    assert box.width <= src_w + multiple and box.height <= src_h + multiple  # snapping may enlarge it a little


@pytest.mark.parametrize(
    "call",
    [
        lambda: zoom_out_canvas(512, 512, 2.5),
        lambda: zoom_out_canvas(512, 512, 0.9),
        lambda: pan_canvas(512, 512, "sideways"),  # type: ignore[arg-type]
        lambda: pan_canvas(512, 512, "left", 0.0),
        lambda: make_square_canvas(0, 512),
    ],
)
def test_impossible_layouts_are_value_errors(call) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError):
        call()


def test_outpaint_and_inpaint_masks_cover_the_right_pixels() -> None:
    source = Image.new("RGB", (64, 64), (200, 10, 10))
    canvas, keep = outpaint_inputs(source, (128, 128), placement=Box(32, 32, 96, 96))
    assert canvas.getpixel((64, 64)) == (200, 10, 10)
    assert keep.getpixel((64, 64)) == 255 and keep.getpixel((5, 5)) == 0 and keep.getpixel((32, 64)) < 255

    image, keep = inpaint_inputs(source, (64, 64), region=Box(16, 16, 48, 48))
    assert image.size == (64, 64)
    assert keep.getpixel((32, 32)) == 0 and keep.getpixel((2, 2)) == 255


@pytest.mark.parametrize(
    ("prompt", "negative", "positive", "negatives"),
    [
        ("a red fox", "", [("a red fox", 1.0)], []),
        ("a red fox", "rain", [("a red fox", 1.0)], [("rain", 1.0)]),
        ("hot dog::", "", [("hot dog", 1.0)], []),
        ("hot:: dog", "", [("hot", 1.0), ("dog", 1.0)], []),
        ("space ship::2 planet::1", "", [("space ship", 2.0), ("planet", 1.0)], []),
        ("castle::1.5 fog::-0.5", "text", [("castle", 1.5)], [("text", 1.0), ("fog", 0.5)]),
        ("a::.5 b", "", [("a", 0.5), ("b", 1.0)], []),
        ("a::0 b", "", [("b", 1.0)], []),
        ("https://example.com/x.png a cat", "", [("https://example.com/x.png a cat", 1.0)], []),
    ],
)
def test_parse_weights(
    prompt: str, negative: str, positive: list[tuple[str, float]], negatives: list[tuple[str, float]]
) -> None:
    parsed = parse_weights(prompt, negative)
    assert parsed.positive == tuple(PromptPart(t, w) for t, w in positive)
    assert parsed.negative == tuple(PromptPart(t, w) for t, w in negatives)


def test_a_prompt_without_positive_weight_is_refused() -> None:
    with pytest.raises(GenerationError, match="positive weight"):
        parse_weights("fog::-1 rain::-2")


@pytest.mark.parametrize(
    ("guidance", "stylize", "expected"),
    [
        (7.0, 100, 7.0),
        (7.0, 0, 3.5),
        (7.0, 1000, 14.57),
        (7.0, 5000, 14.57),
        (0.0, 1000, 0.0),
        (1.0, 0, 1.0),
        (2.0, 0, 1.0),
    ],
)
def test_guidance_for_stylize(guidance: float, stylize: int, expected: float) -> None:
    assert guidance_for_stylize(guidance, stylize) == pytest.approx(expected, abs=0.01)


def test_chaos_noise_grows_from_nothing() -> None:
    assert chaos_noise(0) == 0
    assert 0 < chaos_noise(10) < chaos_noise(50) < chaos_noise(100) == chaos_noise(400)


def test_grid_of_four_is_two_by_two() -> None:
    tiles = [Image.new("RGB", (30, 20), (i * 60, 0, 0)) for i in range(4)]
    grid = make_grid(tiles)
    assert grid.size == (60, 40)
    assert grid.getpixel((45, 25)) == (180, 0, 0)
    assert make_grid(tiles[:1]) is tiles[0]
