from __future__ import annotations

import io

import pytest
from PIL import Image

from bot.render import compose_grid, format_seconds, progress_bar


def _png(color: tuple[int, int, int], size: tuple[int, int] = (48, 32)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, color).save(out, format="PNG")
    return out.getvalue()


def test_grid_is_twice_the_size_with_each_image_in_its_quadrant() -> None:
    colors = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0)]
    grid = Image.open(io.BytesIO(compose_grid([_png(c) for c in colors])))
    assert grid.size == (96, 64)
    assert grid.getpixel((10, 10)) == colors[0]
    assert grid.getpixel((60, 10)) == colors[1]
    assert grid.getpixel((10, 40)) == colors[2]
    assert grid.getpixel((60, 40)) == colors[3]


def test_flagged_images_are_blurred_in_the_grid() -> None:
    checker = Image.new("RGB", (48, 32), (0, 0, 0))
    for x in range(0, 48, 2):
        for y in range(32):
            checker.putpixel((x, y), (255, 255, 255))
    out = io.BytesIO()
    checker.save(out, format="PNG")
    grid = Image.open(io.BytesIO(compose_grid([out.getvalue()] * 4, blur=(True, False, False, False))))
    blurred_pixel = grid.getpixel((24, 16))
    sharp_pixel = grid.getpixel((48 + 24, 16))
    assert 60 < blurred_pixel[0] < 200
    assert sharp_pixel[0] in (0, 255)


@pytest.mark.parametrize(("percent", "text"), [(0, "0%"), (50, "50%"), (100, "100%"), (140, "100%")])
def test_progress_bar(percent: int, text: str) -> None:
    assert progress_bar(percent).endswith(text)


@pytest.mark.parametrize(("seconds", "text"), [(12, "12 s"), (150, "2.5 min"), (7200, "2.0 h"), (-3, "0 s")])
def test_format_seconds(seconds: float, text: str) -> None:
    assert format_seconds(seconds) == text
