"""Plain values that cross the `pipelines` boundary: requests, results and job events.

Nothing here imports torch or diffusers, so the bot (and remote transports) can use
these types freely. Every type is a frozen dataclass or a `str` enum so that it can be
serialised (see `pipelines.codec`) and compared in tests.
"""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable
from dataclasses import dataclass


class Lane(str, enum.Enum):
    """Which queue a job waits in; `priority` orders them (lower runs first)."""

    TURBO = "turbo"
    FAST = "fast"
    RELAX = "relax"

    @property
    def priority(self) -> int:
        return {Lane.TURBO: 0, Lane.FAST: 1, Lane.RELAX: 2}[self]


class Operation(str, enum.Enum):
    """What a job does to pixels. Each maps onto one diffusers pipeline family."""

    TEXT_TO_IMAGE = "txt2img"
    IMAGE_TO_IMAGE = "img2img"  # image prompt, Vary (Subtle/Strong), Remix, Upscale (Creative) pass
    UPSCALE = "upscale"  # Upscale (Subtle): upscaler model or Lanczos, optional light img2img pass
    OUTPAINT = "outpaint"  # Zoom Out, Make Square, Pan: source placed on a larger canvas
    INPAINT = "inpaint"  # Vary (Region): regenerate inside `region`


@dataclass(frozen=True)
class Box:
    """A pixel rectangle, right and bottom exclusive."""

    left: int
    top: int
    right: int
    bottom: int

    @property
    def width(self) -> int:
        return self.right - self.left

    @property
    def height(self) -> int:
        return self.bottom - self.top


@dataclass(frozen=True)
class GenerationRequest:
    """One job for the GPU: produce `count` images.

    `width`/`height` are the output size. Image operations carry their input in
    `source_image` (encoded PNG/JPEG/WebP bytes). For OUTPAINT, `placement` is where
    the (resized) source sits on the output canvas; for INPAINT, `region` is the
    area to regenerate, in output pixels.
    """

    job_id: str
    user_id: int
    prompt: str
    width: int
    height: int
    seed: int
    steps: int
    guidance: float
    negative_prompt: str = ""
    count: int = 4
    lane: Lane = Lane.FAST
    operation: Operation = Operation.TEXT_TO_IMAGE
    source_image: bytes | None = None
    strength: float = 0.0
    placement: Box | None = None
    region: Box | None = None
    upscale_factor: int = 2
    chaos: int = 0
    tile: bool = False
    stop: int = 100
    model: str = ""
    not_before: float = 0.0  # unix time; relax jobs of heavy relax users wait (only when others are waiting)
    style_image: bytes | None = None  # style reference (--sref), encoded image bytes; needs IP-Adapter weights

    @property
    def work_units(self) -> float:
        """Relative GPU cost: megapixels x steps actually run x images."""
        steps_run = max(1, round(self.steps * self.stop / 100))
        return self.width * self.height / 1_000_000 * steps_run * self.count

    @property
    def batch_key(self) -> tuple[object, ...]:
        """Jobs with equal keys can share one pipeline call."""
        return (self.model, self.operation, self.width, self.height, self.steps, self.stop, self.tile)


@dataclass(frozen=True)
class GenerationResult:
    """The images of a finished job, each PNG-encoded with its metadata in text chunks."""

    job_id: str
    images: tuple[bytes, ...]
    seeds: tuple[int, ...]
    width: int
    height: int
    gpu_seconds: float
    model: str
    nsfw: tuple[bool, ...] = ()
    truncated: bool = False  # the prompt was longer than the text encoder reads and was cut


class FailureKind(str, enum.Enum):
    """Why a job failed; the bot turns each into user text."""

    OUT_OF_MEMORY = "out_of_memory"
    BAD_INPUT = "bad_input"
    UNSUPPORTED = "unsupported"  # e.g. style reference without IP-Adapter weights
    INTERNAL = "internal"
    POISON = "poison"  # a remote job that kept crashing workers


@dataclass(frozen=True)
class QueuePosition:
    """Where a queued job stands: 1-based `position` of `total`, and a rough wait."""

    position: int
    total: int
    eta_seconds: float


@dataclass(frozen=True)
class Queued:
    job_id: str
    position: int
    total: int


@dataclass(frozen=True)
class Started:
    job_id: str


@dataclass(frozen=True)
class Progressed:
    """A step finished; `preview` is a small JPEG of the current latents, when available."""

    job_id: str
    step: int
    steps: int
    preview: bytes | None = None

    @property
    def percent(self) -> int:
        return int(100 * self.step / max(1, self.steps))


@dataclass(frozen=True)
class Finished:
    job_id: str
    result: GenerationResult


@dataclass(frozen=True)
class Failed:
    job_id: str
    kind: FailureKind
    message: str


@dataclass(frozen=True)
class Cancelled:
    job_id: str


JobEvent = Queued | Started | Progressed | Finished | Failed | Cancelled
TERMINAL_EVENTS = (Finished, Failed, Cancelled)

EventSink = Callable[[JobEvent], Awaitable[None] | None]
"""Receives every job event, always on the event loop that started the queue.

For a terminal event the sink may return an awaitable that completes once the outcome is durable (the job
settled or refunded in the bot's database); a queue whose events are durable (NATS) acknowledges the event
only then, so that an event the bot took but died before recording is delivered again after its restart."""
