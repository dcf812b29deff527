"""Bot processes that a test starts, kills and restarts on one data directory against one fake Discord."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

from tests.e2e.conftest import REPO, BotProcess, World, songe_env
from tests.support.fake_discord import subprocess_env

FAKE_ENGINE_BOT = "tests.e2e.fake_engine_bot"


class BotLauncher:
    """Starts `python -m <module>` (default: the production bot on a fake engine); each run logs to its own file.

    `close()` kills whatever is still running. `logs()` is every run's output, for the token check.
    """

    def __init__(self, world: World, folder: Path, *, module: str = FAKE_ENGINE_BOT) -> None:
        self.world = world
        self.folder = folder
        self.module = module
        self.runs: list[BotProcess] = []

    def _spawn(self, data_dir: Path, overrides: dict[str, str]) -> BotProcess:
        env = subprocess_env(self.world.server.base_url, {**os.environ, **songe_env(self.world, data_dir, **overrides)})
        log_path = self.folder / f"bot-{len(self.runs)}.log"
        with open(log_path, "wb") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", self.module], cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT
            )
        run = BotProcess(process, log_path)
        self.runs.append(run)
        return run

    async def start(self, data_dir: Path, *, timeout: float = 60.0, **overrides: str) -> BotProcess:
        """Start one process and wait until its gateway session is ready (it has run its start-up recovery)."""
        server = self.world.server
        identified = server.identify_count
        run = self._spawn(data_dir, overrides)
        process = run.process

        def ready() -> bool:
            live = [s for s in server.gateway.sessions.values() if s.conn is not None and s.ready]
            return server.identify_count > identified and bool(live)

        try:
            await server.wait_until(lambda: ready() or process.poll() is not None, timeout=timeout, what="the bot")
        except TimeoutError:
            run.kill()
            raise AssertionError(f"the bot did not connect:\n{run.log()}") from None
        if process.poll() is not None:
            raise AssertionError(f"the bot exited with {process.returncode}:\n{run.log()}")
        return run

    def logs(self) -> str:
        return "\n".join(run.log() for run in self.runs)

    def close(self) -> None:
        for run in self.runs:
            run.kill()


async def wait_for_log(run: BotProcess, text: str, *, timeout: float = 10.0) -> None:
    """Wait until the process has logged `text` (a bounded poll of its log file: only the process knows)."""
    deadline = time.monotonic() + timeout
    while text not in run.log():
        if time.monotonic() > deadline:
            raise TimeoutError(f"the bot did not log {text!r}:\n{run.log()}")
        await asyncio.sleep(0.01)
