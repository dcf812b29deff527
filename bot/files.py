"""Result images on disk: `<data>/images/<job id>/<n>.png`, paths built only from ids the bot made."""

from __future__ import annotations

import os
import re
from pathlib import Path

_JOB_ID = re.compile(r"[0-9a-f]{32}")


class ImageFiles:
    """Saves and reads a job's images; directories 0700, files 0600."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _job_dir(self, job_id: str) -> Path:
        if not _JOB_ID.fullmatch(job_id):
            raise ValueError(f"not a Songe job id: {job_id!r}")
        return self.root / job_id

    def save(self, job_id: str, images: tuple[bytes, ...] | list[bytes]) -> list[str]:
        """Write each PNG atomically; returns the file names, in order."""
        folder = self._job_dir(job_id)
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        names = []
        for index, data in enumerate(images):
            name = f"{index}.png"
            tmp = folder / f".{name}.tmp"
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, folder / name)
            names.append(name)
        return names

    def read(self, job_id: str, index: int) -> bytes:
        """The PNG of image `index` (0-based) of a job."""
        return (self._job_dir(job_id) / f"{int(index)}.png").read_bytes()

    def read_all(self, job_id: str, count: int) -> list[bytes]:
        return [self.read(job_id, i) for i in range(count)]

    def exists(self, job_id: str, index: int) -> bool:
        return (self._job_dir(job_id) / f"{int(index)}.png").is_file()
