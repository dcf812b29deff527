"""Reading images that users attach: size and pixel limits, real decoding, never trusted."""

from __future__ import annotations

import io
import warnings

from PIL import Image, UnidentifiedImageError

MAX_BYTES = 20 * 1024 * 1024
MAX_PIXELS = 40_000_000
MAX_SIDE = 2048


class BadAttachment(Exception):
    """The attachment cannot be used as an image; `key` is the catalogue key of the reason."""

    def __init__(self, key: str, **values: object) -> None:
        super().__init__(key)
        self.key = key
        self.values = values


def normalise_image(data: bytes, *, max_side: int = MAX_SIDE) -> bytes:
    """Decode untrusted bytes, refuse bombs and non-images, return a PNG at most `max_side` px."""
    if len(data) > MAX_BYTES:
        raise BadAttachment("attachment.too_large", limit=MAX_BYTES // (1024 * 1024))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as probe:
                width, height = probe.size
                if width * height > MAX_PIXELS:
                    raise BadAttachment("attachment.too_many_pixels", limit=MAX_PIXELS // 1_000_000)
                probe.verify()
            with Image.open(io.BytesIO(data)) as image:
                image.load()
                rgb = image.convert("RGB")
    except BadAttachment:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise BadAttachment("attachment.too_many_pixels", limit=MAX_PIXELS // 1_000_000) from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        raise BadAttachment("attachment.not_an_image") from None
    if max(rgb.size) > max_side:
        rgb.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    rgb.save(out, format="PNG")
    return out.getvalue()
