from __future__ import annotations

import io
import logging
import stat
from pathlib import Path

import pytest

from bot.files import ImageFiles
from bot.logs import RedactingFormatter


def test_images_are_saved_private_and_read_back(tmp_path: Path) -> None:
    files = ImageFiles(tmp_path / "images")
    job = "0123456789abcdef0123456789abcdef"
    names = files.save(job, [b"one", b"two"])
    assert names == ["0.png", "1.png"]
    assert files.read(job, 1) == b"two"
    assert stat.S_IMODE((tmp_path / "images" / job / "0.png").stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "images" / job).stat().st_mode) == 0o700


@pytest.mark.parametrize(
    "job", ["../../etc", "ABCDEF0123456789abcdef0123456789", "abc", "0123456789abcdef0123456789abcdef/.."]
)
def test_paths_come_only_from_job_ids(tmp_path: Path, job: str) -> None:
    with pytest.raises(ValueError):
        ImageFiles(tmp_path).read(job, 0)


def test_formatter_masks_the_token_in_messages_and_tracebacks() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(RedactingFormatter("%(message)s", ("tok.en.secret",)))
    logger = logging.getLogger("test.redact")
    logger.addHandler(handler)
    try:
        logger.error("connecting with %s", "tok.en.secret")
        try:
            raise RuntimeError("bad token tok.en.secret")
        except RuntimeError:
            logger.exception("failed")
    finally:
        logger.removeHandler(handler)
    text = stream.getvalue()
    assert "tok.en.secret" not in text
    assert "connecting with [redacted]" in text
    assert "RuntimeError: bad token [redacted]" in text
