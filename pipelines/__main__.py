"""`python -m pipelines`: generate from the command line through the same worker the bot uses.

    python -m pipelines "a red fox" --ar 3:2 --seed 7 --out fox.png     # imagine: a 2x2 grid
    python -m pipelines "a red fox" --split --out fox.png               # fox-1.png ... fox-4.png
    python -m pipelines upscale fox-1.png --out fox-big.png
    python -m pipelines vary fox-1.png --strong --out fox-vary.png
    python -m pipelines zoom fox-1.png --factor 2 --out fox-zoom.png

Every command is one entry of `COMMANDS` (its help, its arguments, its coroutine); a prompt
with no command runs `imagine`. Progress goes to stderr, written files to stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import logging
import secrets
import sys
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from PIL import Image

from pipelines.errors import GenerationError, PipelineError
from pipelines.images import encode_png, read_png_metadata
from pipelines.operations import (
    UPSCALE_CREATIVE_STRENGTH,
    VARY_STRONG_STRENGTH,
    VARY_SUBTLE_STRENGTH,
    zoom_out_canvas,
)
from pipelines.previews import make_grid
from pipelines.seeds import SEED_LIMIT
from pipelines.types import (
    Cancelled,
    Failed,
    Finished,
    GenerationRequest,
    GenerationResult,
    JobEvent,
    Operation,
    Progressed,
)

if TYPE_CHECKING:
    from pipelines.diffusers_engine import DiffusersEngine


@dataclass(frozen=True)
class Command:
    help: str
    arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], Coroutine[Any, Any, int]]


class ProgressBar:
    """One line on `stream`, redrawn for each step: `[######------]  50%  step 2/4`."""

    def __init__(self, stream: TextIO, *, width: int = 30) -> None:
        self._stream = stream
        self._width = width
        self._drawn = False

    def update(self, event: Progressed) -> None:
        filled = self._width * event.step // max(1, event.steps)
        bar = "#" * filled + "-" * (self._width - filled)
        self._stream.write(f"\r[{bar}] {event.percent:3d}%  step {event.step}/{event.steps}")
        self._stream.flush()
        self._drawn = True

    def close(self) -> None:
        if self._drawn:
            self._stream.write("\n")
            self._drawn = False


async def run_jobs(
    engine: DiffusersEngine, requests: Sequence[GenerationRequest], *, stream: TextIO | None = None
) -> list[GenerationResult]:
    """Run `requests` through a `LocalQueue` on `engine`; their results, in order. Raises on any failure.

    A progress bar goes to `stream` (default: stderr).
    """
    from pipelines.worker import LocalQueue

    bar = ProgressBar(stream or sys.stderr)
    ended: dict[str, JobEvent] = {}
    all_done = asyncio.Event()

    def sink(event: JobEvent) -> None:
        if isinstance(event, Progressed):
            bar.update(event)
        elif isinstance(event, (Finished, Failed, Cancelled)):
            ended[event.job_id] = event
            if len(ended) == len(requests):
                all_done.set()

    queue = LocalQueue(engine)
    await queue.start(sink)
    try:
        for request in requests:
            await queue.submit(request)
        await all_done.wait()
    finally:
        await queue.close()
        bar.close()
    results = []
    for request in requests:
        event = ended[request.job_id]
        if isinstance(event, Failed):
            raise GenerationError(event.message, event.kind)
        if not isinstance(event, Finished):
            raise GenerationError(f"job {request.job_id} was cancelled")
        results.append(event.result)
    return results


def _engine_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, required=True, help="where to write the PNG")
    parser.add_argument("--model", default="sd-turbo", help="preset, hub id or diffusers folder (default: sd-turbo)")
    parser.add_argument("--device", default="auto", help="auto, cuda, cuda:N, mps or cpu")
    parser.add_argument("--dtype", default="auto", help="auto, fp32, fp16 or bf16")
    parser.add_argument("--upscaler", type=Path, help="a Real-ESRGAN-class model file (needs spandrel)")
    parser.add_argument("--taesd", help="a TAESD model id or folder for previews")
    parser.add_argument("--seed", type=int, help="default: random")
    parser.add_argument("--steps", type=int, help="default: the model's")
    parser.add_argument("--guidance", type=float, help="default: the model's")
    parser.add_argument("--no", dest="negative", default="", help="what to keep out of the image")


def _grid_options(parser: argparse.ArgumentParser) -> None:
    _engine_options(parser)
    parser.add_argument("--split", action="store_true", help="write the four images, not a 2x2 grid")


def _source_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("image", type=Path, help="the source image")
    parser.add_argument("--prompt", help="default: the prompt stored in the image, if any")


def _load(args: argparse.Namespace) -> DiffusersEngine:
    from pipelines.loading import load_engine

    return load_engine(args.model, device=args.device, dtype=args.dtype, upscaler=args.upscaler, taesd=args.taesd)


def _request(args: argparse.Namespace, engine: DiffusersEngine, **fields: Any) -> GenerationRequest:
    """A request with the command line's common options, and `fields` (prompt, size, operation...)."""
    seed = args.seed if args.seed is not None else secrets.randbelow(SEED_LIMIT)
    common: dict[str, Any] = {
        "job_id": f"cli-{secrets.token_hex(4)}",
        "user_id": 0,
        "seed": seed % SEED_LIMIT,
        "steps": args.steps or engine.default_steps,
        "guidance": args.guidance if args.guidance is not None else engine.default_guidance,
        "negative_prompt": args.negative,
        "model": args.model,
    }
    return GenerationRequest(**(common | fields))


def _snap(value: float, multiple: int) -> int:
    return max(multiple, round(value / multiple) * multiple)


def _source(args: argparse.Namespace) -> tuple[bytes, int, int, str]:
    """The image's bytes, size, and the prompt to use (given, or stored in the PNG)."""
    try:
        data = args.image.read_bytes()
        with Image.open(io.BytesIO(data)) as image:
            width, height = image.size
    except OSError as exc:
        raise GenerationError(f"cannot read {args.image}: {exc}") from exc
    prompt = args.prompt if args.prompt is not None else read_png_metadata(data).get("prompt", "")
    return data, width, height, prompt


def _write(args: argparse.Namespace, result: GenerationResult) -> list[Path]:
    """The result as one PNG (a grid for several images) or, with --split, one PNG per image."""
    out: Path = args.out
    if len(result.images) == 1 or not getattr(args, "split", False):
        data = result.images[0]
        if len(result.images) > 1:
            grid = make_grid([Image.open(io.BytesIO(png)) for png in result.images])
            metadata = read_png_metadata(data) | {"seeds": ",".join(map(str, result.seeds))}
            data = encode_png(grid, metadata)
        out.write_bytes(data)
        return [out]
    paths = [out.with_name(f"{out.stem}-{i}{out.suffix or '.png'}") for i in range(1, len(result.images) + 1)]
    for path, png in zip(paths, result.images):
        path.write_bytes(png)
    return paths


async def _finish(args: argparse.Namespace, engine: DiffusersEngine, request: GenerationRequest) -> int:
    print(f"seed {request.seed}, {request.width}x{request.height}, {request.steps} steps", file=sys.stderr)
    (result,) = await run_jobs(engine, [request])
    for path in _write(args, result):
        print(path)
    return 0


def _imagine_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("prompt", help="what to draw (`::` weights allowed)")
    parser.add_argument("--ar", default="1:1", help="aspect ratio, e.g. 3:2 or 16:9")
    parser.add_argument("--chaos", type=int, default=0, help="0-100: how different the four images are")
    parser.add_argument("--stop", type=int, default=100, help="10-100: stop after this share of the steps")
    parser.add_argument("--tile", action="store_true", help="a seamless, tileable image")
    _grid_options(parser)


async def _imagine(args: argparse.Namespace) -> int:
    try:
        aspect_w, aspect_h = (int(part) for part in args.ar.split(":"))
    except ValueError:
        raise GenerationError(f"--ar must look like 3:2, got {args.ar!r}") from None
    engine = _load(args)
    width, height = engine.size_for_aspect(aspect_w, aspect_h)
    request = _request(
        args, engine, prompt=args.prompt, width=width, height=height, chaos=args.chaos, stop=args.stop, tile=args.tile
    )
    return await _finish(args, engine, request)


def _upscale_arguments(parser: argparse.ArgumentParser) -> None:
    _source_options(parser)
    parser.add_argument("--creative", action="store_true", help="repaint details with a light image-to-image pass")
    _engine_options(parser)


async def _upscale(args: argparse.Namespace) -> int:
    data, width, height, prompt = _source(args)
    engine = _load(args)
    m = engine.size_multiple
    request = _request(
        args,
        engine,
        prompt=prompt,
        operation=Operation.UPSCALE,
        source_image=data,
        width=_snap(2 * width, m),
        height=_snap(2 * height, m),
        count=1,
        strength=UPSCALE_CREATIVE_STRENGTH if args.creative else 0.0,
    )
    return await _finish(args, engine, request)


def _vary_arguments(parser: argparse.ArgumentParser) -> None:
    _source_options(parser)
    parser.add_argument(
        "--strong",
        action="store_true",
        help=f"vary more (strength {VARY_STRONG_STRENGTH} instead of {VARY_SUBTLE_STRENGTH})",
    )
    _grid_options(parser)


async def _vary(args: argparse.Namespace) -> int:
    data, width, height, prompt = _source(args)
    engine = _load(args)
    m = engine.size_multiple
    request = _request(
        args,
        engine,
        prompt=prompt,
        operation=Operation.IMAGE_TO_IMAGE,
        source_image=data,
        width=_snap(width, m),
        height=_snap(height, m),
        strength=VARY_STRONG_STRENGTH if args.strong else VARY_SUBTLE_STRENGTH,
    )
    return await _finish(args, engine, request)


def _zoom_arguments(parser: argparse.ArgumentParser) -> None:
    _source_options(parser)
    parser.add_argument("--factor", type=float, default=2.0, help="1.0-2.0 (default 2)")
    _grid_options(parser)


async def _zoom(args: argparse.Namespace) -> int:
    data, width, height, prompt = _source(args)
    engine = _load(args)
    try:
        canvas_w, canvas_h, placement = zoom_out_canvas(
            width, height, args.factor, multiple=engine.size_multiple, max_pixels=engine.base_resolution**2
        )
    except ValueError as exc:
        raise GenerationError(str(exc)) from exc
    request = _request(
        args,
        engine,
        prompt=prompt,
        operation=Operation.OUTPAINT,
        source_image=data,
        width=canvas_w,
        height=canvas_h,
        placement=placement,
    )
    return await _finish(args, engine, request)


def _worker_arguments(parser: argparse.ArgumentParser) -> None:
    from pipelines.remote_worker import add_arguments

    add_arguments(parser)
    parser.add_argument("--device", default="auto", help="auto, cuda, cuda:N, mps or cpu")
    parser.add_argument("--dtype", default="auto", help="auto, fp32, fp16 or bf16")
    parser.add_argument("--upscaler", type=Path, help="a Real-ESRGAN-class model file (needs spandrel)")
    parser.add_argument("--taesd", help="a TAESD model id or folder for previews")


async def _worker(args: argparse.Namespace) -> int:
    from pipelines.remote_worker import serve_worker, worker_engine

    args.model = args.model or "sd-turbo"
    return await serve_worker(args, worker_engine(args, _load))


COMMANDS: dict[str, Command] = {
    "imagine": Command("text to a 2x2 grid (the default command)", _imagine_arguments, _imagine),
    "upscale": Command("an image at twice its size", _upscale_arguments, _upscale),
    "vary": Command("four variations of an image", _vary_arguments, _vary),
    "zoom": Command("zoom out: the image smaller, new surroundings painted around it", _zoom_arguments, _zoom),
    "worker": Command(
        "serve jobs from a NATS JetStream server (a GPU worker of a scaled-out bot)", _worker_arguments, _worker
    ),
}
DEFAULT_COMMAND = "imagine"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m pipelines", description="Songe's image pipelines, by hand.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, command in COMMANDS.items():
        command.arguments(commands.add_parser(name, help=command.help, description=command.help))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; a first argument that names no command is an `imagine` prompt."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    if arguments and arguments[0] not in COMMANDS and arguments[0] not in ("-h", "--help"):
        arguments.insert(0, DEFAULT_COMMAND)
    args = build_parser().parse_args(arguments)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        return asyncio.run(COMMANDS[args.command].run(args))
    except PipelineError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
