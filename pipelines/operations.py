"""Geometry and pixel preparation for the image operations (pure: PIL only, no torch).

The canvas helpers (`zoom_out_canvas`, `make_square_canvas`, `pan_canvas`) turn a source
size into an output canvas and the `Box` where the source sits on it; the bot builds
OUTPAINT requests from them. Canvas sides are multiples of `multiple`; when a canvas would
pass `max_side` or `max_pixels`, the whole layout is scaled down (the source shrinks too),
so repeated zooms and pans keep a bounded cost.

The preparation helpers build what the inpainting pipeline needs (image, mask where white
means "paint here") and the mask that pastes the original pixels back afterwards.
"""

from __future__ import annotations

import io
import math
from typing import Literal

from PIL import Image, ImageFilter, UnidentifiedImageError

from pipelines.errors import GenerationError
from pipelines.types import Box

Direction = Literal["left", "right", "up", "down"]
VARY_SUBTLE_STRENGTH = 0.35
"""img2img strength of Vary (Subtle): keeps the composition."""
VARY_STRONG_STRENGTH = 0.7
"""img2img strength of Vary (Strong), V1-V4 and Remix."""
UPSCALE_CREATIVE_STRENGTH = 0.35
"""The detail pass of Upscale (Creative); Upscale (Subtle) has none."""
IMAGE_PROMPT_STRENGTH = 0.75
"""How far /imagine with an attached image moves from it."""

MAX_SIDE = 2048
MAX_PIXELS = 1024 * 1024


def _layout(
    src_w: int,
    src_h: int,
    canvas_w: float,
    canvas_h: float,
    *,
    align: tuple[float, float],
    multiple: int,
    max_side: int,
    max_pixels: int,
) -> tuple[int, int, Box]:
    """Scale a canvas of (canvas_w, canvas_h) into the budget, snap it to `multiple`, place the source by `align`."""
    if src_w <= 0 or src_h <= 0:
        raise ValueError(f"source size must be positive, got {src_w}x{src_h}")
    scale = min(1.0, max_side / max(canvas_w, canvas_h), math.sqrt(max_pixels / (canvas_w * canvas_h)))
    width = max(multiple, round(canvas_w * scale / multiple) * multiple)
    height = max(multiple, round(canvas_h * scale / multiple) * multiple)
    while width * height > max_pixels or max(width, height) > max_side:
        if width >= height and width > multiple:
            width -= multiple
        elif height > multiple:
            height -= multiple
        else:
            break
    fit = min(width / canvas_w, height / canvas_h)
    place_w, place_h = min(width, round(src_w * fit)), min(height, round(src_h * fit))
    left, top = round((width - place_w) * align[0]), round((height - place_h) * align[1])
    return width, height, Box(left, top, left + place_w, top + place_h)


def zoom_out_canvas(
    src_w: int, src_h: int, factor: float, *, multiple: int = 8, max_side: int = MAX_SIDE, max_pixels: int = MAX_PIXELS
) -> tuple[int, int, Box]:
    """Zoom Out: a canvas `factor` (1.0-2.0) times the source, the source centred on it."""
    if not 1.0 <= factor <= 2.0:
        raise ValueError(f"zoom factor must be between 1.0 and 2.0, got {factor}")
    return _layout(
        src_w,
        src_h,
        src_w * factor,
        src_h * factor,
        align=(0.5, 0.5),
        multiple=multiple,
        max_side=max_side,
        max_pixels=max_pixels,
    )


def make_square_canvas(
    src_w: int, src_h: int, *, multiple: int = 8, max_side: int = MAX_SIDE, max_pixels: int = MAX_PIXELS
) -> tuple[int, int, Box]:
    """Make Square: a square canvas on the source's longer side, the source centred on it."""
    side = max(src_w, src_h)
    return _layout(
        src_w, src_h, side, side, align=(0.5, 0.5), multiple=multiple, max_side=max_side, max_pixels=max_pixels
    )


def pan_canvas(
    src_w: int,
    src_h: int,
    direction: Direction,
    fraction: float = 0.5,
    *,
    multiple: int = 8,
    max_side: int = MAX_SIDE,
    max_pixels: int = MAX_PIXELS,
) -> tuple[int, int, Box]:
    """Pan: the canvas grows by `fraction` of the source on one side; the source keeps to the other."""
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"pan fraction must be in (0, 1], got {fraction}")
    grow_x = direction in ("left", "right")
    if not grow_x and direction not in ("up", "down"):
        raise ValueError(f"pan direction must be left, right, up or down, got {direction!r}")
    canvas_w = src_w * (1 + fraction) if grow_x else src_w
    canvas_h = src_h if grow_x else src_h * (1 + fraction)
    align = {"left": (1.0, 0.5), "right": (0.0, 0.5), "up": (0.5, 1.0), "down": (0.5, 0.0)}[direction]
    return _layout(
        src_w, src_h, canvas_w, canvas_h, align=align, multiple=multiple, max_side=max_side, max_pixels=max_pixels
    )


def decode_image(data: bytes | None, *, what: str = "source image") -> Image.Image:
    """Encoded PNG/JPEG/WebP bytes as an RGB image; `GenerationError` when missing or unreadable."""
    if not data:
        raise GenerationError(f"This operation needs a {what}.")
    try:
        with Image.open(io.BytesIO(data)) as image:
            return image.convert("RGB")
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise GenerationError(f"The {what} could not be read as an image ({exc.__class__.__name__}).") from exc


def feather_for(box: Box) -> int:
    """How many pixels the seam between kept and painted pixels overlaps and blurs."""
    return max(2, round(min(box.width, box.height) / 32))


def _rect_mask(size: tuple[int, int], box: Box, *, inset: int, blur: int) -> Image.Image:
    """White inside `box` shrunk by `inset` (grown when negative), black outside, blurred by `blur`."""
    mask = Image.new("L", size, 0)
    inner = (box.left + inset, box.top + inset, box.right - inset - 1, box.bottom - inset - 1)
    if inner[2] >= inner[0] and inner[3] >= inner[1]:
        mask.paste(255, (inner[0], inner[1], inner[2] + 1, inner[3] + 1))
    return mask.filter(ImageFilter.GaussianBlur(blur)) if blur else mask


def check_box(box: Box | None, size: tuple[int, int], *, what: str) -> Box:
    """`box` when it lies inside a canvas of `size` with a positive area; `GenerationError` otherwise."""
    width, height = size
    if box is None:
        raise GenerationError(f"This operation needs a {what}.")
    if not (0 <= box.left < box.right <= width and 0 <= box.top < box.bottom <= height):
        raise GenerationError(f"The {what} {box} does not fit a {width}x{height} image.")
    return box


def outpaint_inputs(source: Image.Image, size: tuple[int, int], *, placement: Box) -> tuple[Image.Image, Image.Image]:
    """The canvas (source on a blurred stretch of itself) and the keep mask (white where the source stays).

    The inpainting mask is the keep mask inverted: the painted area overlaps the source by a
    few feathered pixels so the seam blends.
    """
    placed = source.resize((placement.width, placement.height), Image.Resampling.LANCZOS)
    canvas = source.resize(size, Image.Resampling.BILINEAR).filter(ImageFilter.GaussianBlur(16))
    canvas.paste(placed, (placement.left, placement.top))
    feather = feather_for(placement)
    return canvas, _rect_mask(size, placement, inset=feather // 2, blur=feather // 2)


def inpaint_inputs(source: Image.Image, size: tuple[int, int], *, region: Box) -> tuple[Image.Image, Image.Image]:
    """The source at the output `size` and the keep mask (black over `region`, grown and feathered)."""
    image = source.resize(size, Image.Resampling.LANCZOS)
    feather = feather_for(region)
    paint = _rect_mask(size, region, inset=-feather, blur=feather // 2)
    return image, Image.eval(paint, lambda v: 255 - v)


def paste_back(generated: Image.Image, original: Image.Image, *, keep: Image.Image) -> Image.Image:
    """`generated` with `original` composited over it where `keep` is white."""
    return Image.composite(original, generated.resize(original.size), keep)
