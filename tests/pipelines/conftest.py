"""Fixtures of the pipelines tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.nats_server import NatsServer, require_nats_server


@pytest.fixture
def server(tmp_path: Path) -> Iterator[NatsServer]:
    """A real nats-server with JetStream, stopped after the test (skipped when none is installed)."""
    require_nats_server()
    with NatsServer(tmp_path / "nats") as running:
        yield running
