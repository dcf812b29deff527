"""`python -m bot`: read the settings, check the model, run until SIGTERM or SIGINT."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys

from bot.app import SongeBot
from bot.config import ConfigError, Settings, load_environment
from bot.logs import setup_logging
from pipelines.errors import ModelLoadError
from pipelines.sources import validate_model_source

log = logging.getLogger("bot")


async def run(settings: Settings) -> None:
    bot = SongeBot(settings)
    loop = asyncio.get_running_loop()

    def stop(signame: str) -> None:
        log.info("%s received: finishing the running batch, keeping queued jobs for the next start", signame)
        loop.create_task(bot.close())

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop, sig.name)
    async with bot:
        await bot.start(settings.token)


def main() -> int:
    try:
        settings = Settings.from_env(load_environment())
        if settings.queue == "local":
            validate_model_source(settings.model)
    except (ConfigError, ModelLoadError) as exc:
        print(f"songe: {exc}", file=sys.stderr)
        return 2
    setup_logging(settings.log_level, secrets=(settings.token,))
    try:
        asyncio.run(run(settings))
    except ModelLoadError as exc:
        log.error("%s", exc)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
