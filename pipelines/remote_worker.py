"""Run a GPU worker on another machine: `run_worker`, and its command line.

    python -m pipelines worker --nats nats://host:4222 --user songe-worker --password-file FILE
    python -m pipelines.remote_worker --nats URL --fake     # a fake engine, for tests and benchmarks

The worker (`pipelines.nats_worker.RemoteWorker`) pulls jobs from NATS JetStream, runs them on its
own `LocalQueue` and posts their events back; see docs/scale-out.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
from collections.abc import Callable, Sequence
from pathlib import Path

from pipelines.engine import Engine, EngineOutput, StepCallback
from pipelines.nats_setup import INLINE_LIMIT, NATS_ERRORS, Layout, connect
from pipelines.nats_worker import RemoteWorker
from pipelines.types import GenerationRequest

log = logging.getLogger(__name__)


async def run_worker(
    url: str,
    engine: Engine,
    *,
    creds: str | Path | None = None,
    user: str | None = None,
    password: str | None = None,
    stream: str = "SONGE",
    max_batch: int = 4,
    prefetch: int | None = None,
    idle_poll: float = 1.0,
    inline_limit: int = INLINE_LIMIT,
    preview_interval: float = 1.0,
    reconnect_wait: float = 2.0,
    grace: float = 30.0,
    stop: asyncio.Event | None = None,
    name: str = "songe-worker",
) -> None:
    """Connect to `url` and serve jobs with `engine` until `stop` is set (forever without one).

    `prefetch`: jobs pulled ahead while a batch runs (default `max_batch`). `idle_poll`: seconds between
    looks at the queue when nothing rang (redeliveries do not ring). `grace`: seconds a stopping worker
    lets its running batch finish before handing it back.
    """
    stop = stop or asyncio.Event()
    layout = Layout(stream)
    worker = RemoteWorker(
        engine,
        layout=layout,
        max_batch=max_batch,
        prefetch=prefetch,
        idle_poll=idle_poll,
        inline_limit=inline_limit,
        preview_interval=preview_interval,
        grace=grace,
    )
    while True:
        try:
            nc = await connect(
                url,
                name=name,
                creds=creds,
                user=user,
                password=password,
                reconnect_wait=reconnect_wait,
                on_reconnect=worker.on_reconnect,
                inbox_prefix=layout.worker_inbox,
            )
            break
        except NATS_ERRORS as exc:
            log.warning("cannot reach %s (%r); retrying", url, exc)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(stop.wait(), reconnect_wait)
            if stop.is_set():
                return
    try:
        await worker.run(nc, stop)
    finally:
        await nc.close()


class _CrashOnPrompt:
    """Test aid: an engine that kills its process when a batch holds `prompt` (a poison job)."""

    def __init__(self, engine: Engine, prompt: str) -> None:
        self._engine = engine
        self._prompt = prompt
        self.model = engine.model

    def run(self, batch: Sequence[GenerationRequest], on_step: StepCallback) -> list[EngineOutput]:
        if any(request.prompt == self._prompt for request in batch):
            log.error("crashing on purpose: prompt %r", self._prompt)
            os._exit(70)
        return self._engine.run(batch, on_step)


EngineFactory = Callable[[argparse.Namespace], Engine]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The worker's command-line options (shared by `python -m pipelines worker` and this module)."""
    parser.add_argument("--nats", required=True, metavar="URL", help="NATS server(s), e.g. nats://gpu-hub:4222")
    parser.add_argument("--creds", type=Path, help="NATS credentials file (user JWT + seed)")
    parser.add_argument("--user", help="NATS user (with --password-file)")
    parser.add_argument("--password-file", type=Path, help="file holding the NATS user's password")
    parser.add_argument("--stream", default="SONGE", help="jobs stream name (default SONGE)")
    parser.add_argument("--max-batch", type=int, default=4, help="most compatible jobs per pipeline call")
    parser.add_argument("--prefetch", type=int, help="jobs pulled ahead while a batch runs (default: max batch)")
    parser.add_argument("--model", default="", help="model preset, diffusers id or folder")
    parser.add_argument("--name", default="songe-worker", help="connection name shown by the server")
    parser.add_argument("--idle-poll", type=float, default=1.0, help="seconds between looks at an idle queue")
    fake = parser.add_argument_group("tests and benchmarks only")
    fake.add_argument("--fake", action="store_true", help="use pipelines.fake.FakeEngine instead of a model")
    fake.add_argument("--fake-seconds-per-batch", type=float, default=0.0)
    fake.add_argument("--fake-seconds-per-step", type=float, default=0.0)
    fake.add_argument("--crash-on-prompt", metavar="TEXT", help="exit at once on a job with this prompt")


def add_worker_subcommand(
    subparsers: argparse._SubParsersAction,  # type: ignore[type-arg]
    *,
    engine_factory: EngineFactory | None = None,
) -> argparse.ArgumentParser:
    """Add ``worker`` to a CLI: ``args.func(args)`` then runs it until SIGINT/SIGTERM.

    `engine_factory(args)` builds the real engine (from ``args.model`` and any option the caller adds
    to the returned parser); without one, only ``--fake`` works.
    """
    parser: argparse.ArgumentParser = subparsers.add_parser("worker", help="serve jobs from NATS JetStream")
    add_arguments(parser)
    parser.set_defaults(func=lambda args: asyncio.run(serve_worker(args, worker_engine(args, engine_factory))))
    return parser


def worker_engine(args: argparse.Namespace, engine_factory: EngineFactory | None = None) -> Engine:
    """The engine the arguments ask for: the fake one, or `engine_factory`'s."""
    if args.fake:
        from pipelines.fake import FakeEngine

        engine: Engine = FakeEngine(
            seconds_per_batch=args.fake_seconds_per_batch,
            seconds_per_step=args.fake_seconds_per_step,
            model=args.model or "fake",
        )
    elif engine_factory is not None:
        engine = engine_factory(args)
    else:
        raise SystemExit("no engine: pass --fake, or run the worker through `python -m pipelines worker`")
    return _CrashOnPrompt(engine, args.crash_on_prompt) if args.crash_on_prompt else engine


async def serve_worker(args: argparse.Namespace, engine: Engine) -> int:
    """Run the worker the arguments describe until SIGINT/SIGTERM (then it hands back its waiting jobs)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    password = args.password_file.read_text().strip() if args.password_file else None
    await run_worker(
        args.nats,
        engine,
        creds=args.creds,
        user=args.user,
        password=password,
        stream=args.stream,
        max_batch=args.max_batch,
        prefetch=args.prefetch,
        idle_poll=args.idle_poll,
        stop=stop,
        name=args.name,
    )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipelines.remote_worker", description=__doc__.split("\n")[0])
    add_arguments(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return asyncio.run(serve_worker(args, worker_engine(args)))


if __name__ == "__main__":
    raise SystemExit(main())
