"""Pure rendering: grids, blurred copies, progress bars. No Discord, no I/O beyond bytes."""

from __future__ import annotations

import io

from PIL import Image, ImageFilter


def _open(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image.convert("RGB")


def compose_grid(images: list[bytes], *, blur: tuple[bool, ...] = ()) -> bytes:
    """A 2x2 PNG grid of up to four same-size images (twice their width and height)."""
    tiles = [_open(data) for data in images[:4]]
    if not tiles:
        raise ValueError("a grid needs at least one image")
    width, height = tiles[0].size
    grid = Image.new("RGB", (width * 2, height * 2), (24, 24, 27))
    for index, tile in enumerate(tiles):
        if tile.size != (width, height):
            tile = tile.resize((width, height), Image.Resampling.LANCZOS)
        if index < len(blur) and blur[index]:
            tile = blurred(tile)
        grid.paste(tile, ((index % 2) * width, (index // 2) * height))
    out = io.BytesIO()
    grid.save(out, format="PNG", optimize=False, compress_level=6)
    return out.getvalue()


def blurred(image: Image.Image) -> Image.Image:
    """A copy too blurred to show anything (for images flagged by a safety checker)."""
    radius = max(image.size) / 12
    return image.filter(ImageFilter.GaussianBlur(radius))


def blur_png(data: bytes) -> bytes:
    out = io.BytesIO()
    blurred(_open(data)).save(out, format="PNG")
    return out.getvalue()


def progress_bar(percent: int, width: int = 12) -> str:
    """`▰▰▰▱▱▱ 50%`."""
    percent = max(0, min(100, percent))
    filled = round(width * percent / 100)
    return "▰" * filled + "▱" * (width - filled) + f" {percent}%"


def format_seconds(seconds: float) -> str:
    """GPU time for people: `42 s`, `3.5 min`, `1.2 h`."""
    seconds = max(0.0, seconds)
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"
