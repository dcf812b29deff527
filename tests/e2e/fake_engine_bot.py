"""`python -m tests.e2e.fake_engine_bot`: the production `python -m bot`, on a `FakeEngine` instead of diffusers.

Everything but the engine is the real process: `bot.__main__.main` reads the settings, sets up logging with the
token mask, installs the SIGTERM/SIGINT handlers, opens the store, runs the GPU worker thread and discord.py
(redirected to the fake by the boot folder's sitecustomize). Crash, shutdown and security tests restart the bot
many times, and importing torch for a real model costs 5-10 s per start on two cores; this costs about one.

Test-only settings, read here and nowhere in the bot:

- `SONGE_TEST_SECONDS_PER_STEP`: the fake engine's time per denoising step (default 0).
- `SONGE_TEST_FAIL_PROMPTS`: prompts the fake engine refuses (`|`-separated), so a job can fail.
- `SONGE_TEST_LAG_FILE`: a heartbeat task measures the event loop's lag; its samples go there (JSON) at close.
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import bot.__main__ as entry
from bot.app import SongeBot
from bot.config import Settings
from pipelines.fake import FakeEngine
from pipelines.worker import LocalQueue

PROBE_INTERVAL = 0.010


class LagProbe:
    """A task that sleeps `interval` over and over and records how late it wakes: the event loop's lag.

    `samples` holds `(time.time() when it woke, seconds late)` pairs.
    """

    def __init__(self, interval: float = PROBE_INTERVAL) -> None:
        self.interval = interval
        self.samples: list[tuple[float, float]] = []
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        while True:
            before = time.perf_counter()
            await asyncio.sleep(self.interval)
            self.samples.append((time.time(), max(0.0, time.perf_counter() - before - self.interval)))

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    def worst(self, since: float = 0.0, until: float = float("inf")) -> float:
        """The longest lag seen between two `time.time()` instants."""
        return max((lag for at, lag in self.samples if since <= at <= until), default=0.0)


def fake_engine_queue(engine: FakeEngine) -> Any:
    """A queue factory for `SongeBot`: the production `LocalQueue` around `engine`."""

    async def factory(settings: Settings) -> LocalQueue:
        return LocalQueue(engine, max_batch=settings.max_batch, preview_interval=0.0)

    return factory


class ProbedBot(SongeBot):
    """`SongeBot` with a lag probe running from `setup_hook` to `close`; the result goes to `lag_file`."""

    def __init__(self, settings: Settings, *, lag_file: Path, **kwargs: Any) -> None:
        super().__init__(settings, **kwargs)
        self.lag_file = lag_file
        self.probe = LagProbe()

    async def setup_hook(self) -> None:
        self.probe.start()
        await super().setup_hook()

    async def close(self) -> None:
        await self.probe.stop()
        self.lag_file.write_text(json.dumps(self.probe.samples))
        await super().close()


def main() -> int:
    fail = os.environ.get("SONGE_TEST_FAIL_PROMPTS", "")
    engine = FakeEngine(
        seconds_per_step=float(os.environ.get("SONGE_TEST_SECONDS_PER_STEP", "0")),
        fail_prompts=[p for p in fail.split("|") if p],
    )
    lag_file = os.environ.get("SONGE_TEST_LAG_FILE")
    bot_class: Any = functools.partial(ProbedBot, lag_file=Path(lag_file)) if lag_file else SongeBot
    entry.SongeBot = functools.partial(bot_class, queue_factory=fake_engine_queue(engine))  # type: ignore[misc]
    return entry.main()


if __name__ == "__main__":
    sys.exit(main())
