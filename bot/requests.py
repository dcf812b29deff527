"""Turn parsed prompts and button clicks into `GenerationRequest`s (pure, no Discord)."""

from __future__ import annotations

import dataclasses
import math
import secrets
from dataclasses import dataclass

from bot.parsing import ParsedPrompt
from pipelines.operations import IMAGE_PROMPT_STRENGTH, UPSCALE_CREATIVE_STRENGTH
from pipelines.prompts import guidance_for_stylize
from pipelines.types import Box, GenerationRequest, Operation

MAX_SEED = 2**32 - 1


@dataclass(frozen=True)
class ModelProfile:
    """What the bot needs to know of the model to size requests (no weights needed)."""

    model: str
    base_resolution: int = 512
    steps: int = 30
    guidance: float = 7.0
    max_steps: int = 100
    multiple: int = 8
    max_side: int = 2048


def size_for_aspect(aspect: tuple[int, int], *, base: int, multiple: int = 8) -> tuple[int, int]:
    """About base x base pixels at the aspect ratio W:H, each side a multiple of `multiple`."""
    w, h = aspect
    ratio = w / h
    width = base * math.sqrt(ratio)
    height = base / math.sqrt(ratio)
    return max(multiple, round(width / multiple) * multiple), max(multiple, round(height / multiple) * multiple)


def random_seed() -> int:
    return secrets.randbelow(MAX_SEED + 1)


def guidance_for(profile: ModelProfile, stylize: int | None) -> float:
    """`--stylize` 0-1000: the model's guidance at the default 100 (see `guidance_for_stylize`)."""
    return profile.guidance if stylize is None else guidance_for_stylize(profile.guidance, stylize)


class RequestFactory:
    """Builds requests with the model's defaults."""

    def __init__(self, profile: ModelProfile) -> None:
        self.profile = profile

    def imagine(
        self,
        parsed: ParsedPrompt,
        *,
        job_id: str,
        user_id: int,
        prompt: str,
        seed: int | None = None,
        source_image: bytes | None = None,
    ) -> GenerationRequest:
        profile = self.profile
        width, height = size_for_aspect(
            parsed.aspect or (1, 1), base=profile.base_resolution, multiple=profile.multiple
        )
        steps = parsed.steps or profile.steps
        if parsed.quality is not None:
            steps = max(1, round(steps * parsed.quality))
        steps = min(steps, profile.max_steps)
        return GenerationRequest(
            job_id=job_id,
            user_id=user_id,
            prompt=prompt,
            negative_prompt=parsed.negative,
            width=width,
            height=height,
            seed=seed if seed is not None else (parsed.seed if parsed.seed is not None else random_seed()),
            steps=steps,
            guidance=guidance_for(profile, parsed.stylize),
            count=4,
            operation=Operation.IMAGE_TO_IMAGE if source_image else Operation.TEXT_TO_IMAGE,
            source_image=source_image,
            strength=IMAGE_PROMPT_STRENGTH if source_image else 0.0,
            chaos=parsed.chaos,
            tile=parsed.tile,
            stop=parsed.stop,
            model=profile.model,
        )

    def for_image(
        self, source: bytes, size: tuple[int, int], *, job_id: str, user_id: int, prompt: str = ""
    ) -> GenerationRequest:
        """A parent request for an image that came from outside (an attachment to /upscale)."""
        profile = self.profile
        width, height = (max(profile.multiple, side // profile.multiple * profile.multiple) for side in size)
        return GenerationRequest(
            job_id=job_id,
            user_id=user_id,
            prompt=prompt,
            width=width,
            height=height,
            seed=random_seed(),
            steps=profile.steps,
            guidance=profile.guidance,
            count=1,
            operation=Operation.IMAGE_TO_IMAGE,
            source_image=source,
            model=profile.model,
        )

    def reroll(self, parent: GenerationRequest, *, job_id: str, user_id: int) -> GenerationRequest:
        """The same prompt and parameters with a new seed."""
        return dataclasses.replace(parent, job_id=job_id, user_id=user_id, seed=random_seed())

    def _derived(
        self, parent: GenerationRequest, source: bytes, *, job_id: str, user_id: int, **changes: object
    ) -> GenerationRequest:
        """An image operation on one image of `parent`: a new seed, four images, no leftover geometry."""
        fields: dict[str, object] = {"seed": random_seed(), "count": 4, "placement": None, "region": None}
        fields.update(changes)
        return dataclasses.replace(parent, job_id=job_id, user_id=user_id, source_image=source, **fields)  # type: ignore[arg-type]

    def variation(
        self,
        parent: GenerationRequest,
        source: bytes,
        *,
        job_id: str,
        user_id: int,
        strength: float,
        prompt: str | None = None,
    ) -> GenerationRequest:
        """Vary (Subtle/Strong) and Remix: img2img from one image of the parent."""
        return self._derived(
            parent,
            source,
            job_id=job_id,
            user_id=user_id,
            prompt=parent.prompt if prompt is None else prompt,
            operation=Operation.IMAGE_TO_IMAGE,
            strength=strength,
        )

    def upscale(
        self, parent: GenerationRequest, source: bytes, *, job_id: str, user_id: int, creative: bool
    ) -> GenerationRequest:
        """Upscale (Subtle): 2x with no pass; (Creative): 2x with a detail pass. The seed is kept."""
        return self._derived(
            parent,
            source,
            job_id=job_id,
            user_id=user_id,
            seed=parent.seed,
            width=parent.width * 2,
            height=parent.height * 2,
            operation=Operation.UPSCALE,
            strength=UPSCALE_CREATIVE_STRENGTH if creative else 0.0,
            count=1,
            chaos=0,
        )

    def outpaint(
        self,
        parent: GenerationRequest,
        source: bytes,
        *,
        job_id: str,
        user_id: int,
        canvas: tuple[int, int],
        placement: Box,
        prompt: str | None = None,
    ) -> GenerationRequest:
        """Zoom Out, Make Square and Pan: the source placed on a larger canvas."""
        return self._derived(
            parent,
            source,
            job_id=job_id,
            user_id=user_id,
            prompt=parent.prompt if prompt is None else prompt,
            width=canvas[0],
            height=canvas[1],
            operation=Operation.OUTPAINT,
            strength=1.0,
            placement=placement,
        )

    def inpaint(
        self, parent: GenerationRequest, source: bytes, *, job_id: str, user_id: int, region: Box, prompt: str
    ) -> GenerationRequest:
        """Vary (Region): regenerate inside `region` of one image."""
        return self._derived(
            parent,
            source,
            job_id=job_id,
            user_id=user_id,
            prompt=prompt,
            operation=Operation.INPAINT,
            strength=1.0,
            region=region,
        )
