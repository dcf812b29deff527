from __future__ import annotations

import io
import struct
import zlib

import pytest
from PIL import Image

from bot.attachments import MAX_BYTES, BadAttachment, normalise_image


def _image(fmt: str, size: tuple[int, int] = (64, 48)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (10, 20, 30)).save(out, format=fmt)
    return out.getvalue()


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP", "GIF"])
def test_real_images_become_png(fmt: str) -> None:
    data = normalise_image(_image(fmt))
    image = Image.open(io.BytesIO(data))
    assert image.format == "PNG"
    assert image.size == (64, 48)


def test_large_images_are_shrunk() -> None:
    image = Image.open(io.BytesIO(normalise_image(_image("PNG", (4000, 1000)), max_side=1024)))
    assert image.size == (1024, 256)


def _bomb_png(width: int, height: int) -> bytes:
    """A tiny PNG that claims a huge size (IHDR only matters to the check)."""
    raw = zlib.compress(b"\x00" * (width // 8 + 1) * 2)

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", raw) + chunk(b"IEND", b"")


@pytest.mark.parametrize(
    ("data", "key"),
    [
        (b"this is not an image", "attachment.not_an_image"),
        (b"", "attachment.not_an_image"),
        (_image("PNG")[:60], "attachment.not_an_image"),
        (_bomb_png(30000, 30000), "attachment.too_many_pixels"),
        (b"\x00" * (MAX_BYTES + 1), "attachment.too_large"),
    ],
    ids=["text", "empty", "truncated", "decompression-bomb", "too-large"],
)
def test_bad_attachments_are_refused_with_a_reason(data: bytes, key: str) -> None:
    with pytest.raises(BadAttachment) as info:
        normalise_image(data)
    assert info.value.key == key
