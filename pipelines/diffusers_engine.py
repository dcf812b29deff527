"""The diffusers engine: one batched pipeline call per batch, for every Midjourney image operation.

Text-to-image runs the loaded pipeline; image prompts, Vary, Remix and Upscale's optional
refining pass run its image-to-image sibling, and Zoom Out, Pan, Make Square and Vary
(Region) its inpainting sibling, both built with `from_pipe` so the weights are shared.
Requests of a batch that differ in guidance, strength or style reference run as separate
calls (the pipelines take those as scalars); everything else shares one call, with one
`torch.Generator` per image so a batch reproduces single runs.

`--stop` ends denoising early: with Euler-family schedulers the schedule is cut after the
requested share of steps and the last step lands on sigma 0, i.e. the model's clean-image
estimate at that point; other schedulers stop through the pipeline's interrupt flag and
decode the latents as they are (noisier). `--tile` switches every convolution of the UNet
and VAE to circular padding for the call, so the image wraps seamlessly.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import diffusers
import numpy as np
import torch
from diffusers import AutoPipelineForImage2Image, AutoPipelineForInpainting
from PIL import Image, ImageOps

from pipelines import conditioning, operations
from pipelines.devices import synchronize
from pipelines.engine import EngineOutput, StepCallback
from pipelines.errors import GenerationError
from pipelines.presets import Preset
from pipelines.previews import LatentPreviewer
from pipelines.prompts import parse_weights
from pipelines.seeds import image_seeds
from pipelines.types import FailureKind, GenerationRequest, Operation
from pipelines.upscalers import LanczosUpscaler, Upscaler

log = logging.getLogger(__name__)

# family: (steps, guidance, size multiple) for models without a preset
FAMILY_DEFAULTS: dict[str, tuple[int, float, int]] = {"sd": (30, 7.5, 8), "sdxl": (30, 7.0, 64), "flux": (28, 3.5, 16)}
STYLE_SCALE = 0.6
VAE_TILING_AREA = 2.0  # tile the VAE above this many times the base resolution's area


@dataclass
class _Job:
    request: GenerationRequest
    seeds: list[int]
    cond: conditioning.Conditioning
    image: Image.Image | None = None  # pipeline input at the output size (and the pixels pasted back)
    keep: Image.Image | None = None  # white where the original pixels stay (outpaint, inpaint)

    @property
    def pixels(self) -> Image.Image:
        """The prepared input image of an image operation."""
        if self.image is None:
            raise GenerationError("This operation needs a source image.")
        return self.image


@dataclass
class _Call:
    jobs: list[_Job]
    pipe: Any  # None when no denoising is needed (a plain upscale)
    kwargs: dict[str, Any] = field(default_factory=dict)
    steps: int = 0  # denoising steps it is expected to run
    stop_after: int | None = None  # raise the pipeline's interrupt flag after this many steps
    style_scale: float | None = None  # the IP-Adapter's scale for this call, when one is loaded


class _Progress:
    """One step count over all the calls of a batch."""

    def __init__(self, on_step: StepCallback, expected: list[int]) -> None:
        self._on_step = on_step
        self._expected = expected
        self._done = 0
        self._index = 0

    def step(self, i: int, steps: int, previews: Callable[[], Sequence[Image.Image]]) -> None:
        later = sum(self._expected[self._index + 1 :])
        self._on_step(self._done + min(i + 1, steps), self._done + steps + later, previews)

    def finish(self, steps: int) -> None:
        self._done += steps
        self._index += 1


class DiffusersEngine:
    """Runs batches on a loaded diffusers pipeline (see `pipelines.loading.load_engine`)."""

    def __init__(
        self,
        pipe: Any,
        *,
        model: str,
        preset: Preset | None = None,
        upscaler: Upscaler | None = None,
        taesd: Any = None,
        ip_adapter: bool = False,
    ) -> None:
        self.model = model
        self.preset = preset
        self.family = conditioning.family_of(pipe)
        self._pipe = pipe
        self._device: torch.device = pipe.device
        self._upscaler = upscaler or LanczosUpscaler()
        self._previewer = LatentPreviewer(family=self.family, taesd=taesd)
        self._ip_adapter = ip_adapter
        self._siblings: dict[str, Any] = {}
        if preset is not None:
            scheduler_class = getattr(diffusers, preset.scheduler)
            pipe.scheduler = scheduler_class.from_config(pipe.scheduler.config, **dict(preset.scheduler_options))
        if hasattr(pipe.vae, "enable_slicing"):
            pipe.vae.enable_slicing()  # decode a batch image by image: 16 images at once can need more than denoising
        pipe.set_progress_bar_config(disable=True)

    @property
    def default_steps(self) -> int:
        return self.preset.steps if self.preset else FAMILY_DEFAULTS[self.family][0]

    @property
    def default_guidance(self) -> float:
        return self.preset.guidance if self.preset else FAMILY_DEFAULTS[self.family][1]

    @property
    def size_multiple(self) -> int:
        return FAMILY_DEFAULTS[self.family][2]

    @property
    def base_resolution(self) -> int:
        """The side of the square the model was trained at (its sizes aim at this many pixels)."""
        if self.preset is not None:
            return self.preset.default_size
        if self.family == "flux":
            return int(self._pipe.default_sample_size * self._pipe.vae_scale_factor)
        return int(self._pipe.unet.config.sample_size * self._pipe.vae_scale_factor)

    def size_for_aspect(self, width: int, height: int) -> tuple[int, int]:
        """A size of aspect `width:height` and about `base_resolution`² pixels, sides multiples of `size_multiple`."""
        if width <= 0 or height <= 0:
            raise ValueError(f"aspect ratio sides must be positive, got {width}:{height}")
        m, area = self.size_multiple, self.base_resolution**2
        w = math.sqrt(area * width / height)
        return max(m, round(w / m) * m), max(m, round(area / w / m) * m)

    def compile(self) -> None:
        """`torch.compile` the denoiser in place and warm it up with one small run."""
        denoiser = self._pipe.transformer if self.family == "flux" else self._pipe.unet
        denoiser.compile()
        side = self.base_resolution
        warm = GenerationRequest(
            "warm-up", 0, "warm-up", side, side, 0, min(2, self.default_steps), self.default_guidance
        )
        self.run([warm], lambda step, steps, previews: None)
        log.info("compiled the %s denoiser and warmed it up", self.family)

    def run(self, batch: Sequence[GenerationRequest], on_step: StepCallback) -> list[EngineOutput]:
        """Generate every request of `batch` (they share a `batch_key`); one output per request."""
        if not batch:
            return []
        self._check(batch)
        first = batch[0]
        outputs: dict[int, EngineOutput] = {}
        with torch.inference_mode(), self._seamless(first.tile), self._vae_tiling(first.width * first.height):
            groups = self._groups(batch)
            calls = [self._plan([self._prepare(batch[i]) for i in group]) for group in groups]
            progress = _Progress(on_step, [c.steps for c in calls])
            for group, call in zip(groups, calls):
                outputs.update(zip(group, self._execute(call, progress)))
        synchronize(self._device)
        return [outputs[i] for i in range(len(batch))]

    def _check(self, batch: Sequence[GenerationRequest]) -> None:
        m = 16 if self.family == "flux" else 8
        for r in batch:
            if r.width <= 0 or r.height <= 0 or r.width % m or r.height % m:
                raise GenerationError(f"Image sides must be positive multiples of {m}, got {r.width}x{r.height}.")
            if r.count < 1 or r.steps < 1:
                raise GenerationError("A job needs at least one image and one step.")
            if r.style_image and not self._ip_adapter:
                raise GenerationError(
                    "Style references need IP-Adapter weights: the operator sets SONGE_IP_ADAPTER to enable them.",
                    FailureKind.UNSUPPORTED,
                )
            if r.tile and self.family == "flux":
                raise GenerationError("--tile needs a UNet model (SD or SDXL), not Flux.", FailureKind.UNSUPPORTED)
            if r.operation is Operation.IMAGE_TO_IMAGE and not 0 < r.strength <= 1:
                raise GenerationError(f"Image-to-image strength must be in (0, 1], got {r.strength}.")

    @staticmethod
    def _groups(batch: Sequence[GenerationRequest]) -> list[list[int]]:
        """Indices of requests that can share one call (equal guidance, strength and style), first-seen order."""
        groups: dict[tuple[object, ...], list[int]] = {}
        for i, r in enumerate(batch):
            groups.setdefault((r.guidance, r.strength, r.style_image), []).append(i)
        return list(groups.values())

    def _prepare(self, request: GenerationRequest) -> _Job:
        prompt = parse_weights(request.prompt, request.negative_prompt)
        cond = conditioning.encode(self._pipe, prompt, family=self.family, device=self._device)
        job = _Job(request, image_seeds(request.seed, request.count), cond)
        op, size = request.operation, (request.width, request.height)
        if op is Operation.TEXT_TO_IMAGE:
            return job
        source = operations.decode_image(request.source_image)
        if op is Operation.IMAGE_TO_IMAGE:
            job.image = source.resize(size, Image.Resampling.LANCZOS)
        elif op is Operation.UPSCALE:
            job.image = self._upscaler.upscale(source, size)
        elif op is Operation.OUTPAINT:
            placement = operations.check_box(request.placement, size, what="placement")
            job.image, job.keep = operations.outpaint_inputs(source, size, placement=placement)
        else:
            region = operations.check_box(request.region, size, what="region")
            job.image, job.keep = operations.inpaint_inputs(source, size, region=region)
        return job

    def _plan(self, jobs: list[_Job]) -> _Call:
        """The pipeline and arguments of one call for `jobs` (same operation, guidance, strength, style)."""
        r = jobs[0].request
        if r.operation is Operation.UPSCALE and r.strength <= 0:
            return _Call(jobs, None)
        kwargs: dict[str, Any] = conditioning.batch_kwargs(
            [j.cond for j in jobs],
            family=self.family,
            seeds=[j.seeds for j in jobs],
            chaos=[j.request.chaos for j in jobs],
        )
        kwargs.update(
            generator=[torch.Generator().manual_seed(s) for j in jobs for s in j.seeds],
            guidance_scale=r.guidance,
            output_type="pil",
            num_inference_steps=r.steps,
        )
        call = _Call(jobs, self._pipe, kwargs, steps=r.steps)
        images = [j.image for j in jobs for _ in j.seeds]
        if r.operation is Operation.TEXT_TO_IMAGE:
            kwargs.update(width=r.width, height=r.height)
            self._plan_stop(call, r)
        elif r.operation in (Operation.IMAGE_TO_IMAGE, Operation.UPSCALE):
            call.pipe = self._sibling("img2img")
            self._plan_strength(call, r.strength)
            kwargs.update(image=images)
            if self.family == "flux":
                kwargs.update(width=r.width, height=r.height)
        else:
            call.pipe = self._sibling("inpaint")
            self._plan_strength(call, r.strength or 1.0)
            masks = [ImageOps.invert(j.keep) for j in jobs if j.keep for _ in j.seeds]
            kwargs.update(image=images, mask_image=masks, width=r.width, height=r.height)
        if self._ip_adapter:
            style = operations.decode_image(r.style_image, what="style reference") if r.style_image else None
            call.style_scale = STYLE_SCALE if style else 0.0  # 0: the adapter still needs an image, ignored
            kwargs["ip_adapter_image"] = style or Image.new("RGB", (224, 224))
        return call

    def _plan_strength(self, call: _Call, strength: float) -> None:
        """Image-to-image runs int(steps x strength) steps: raise `steps` so that is at least one."""
        steps = call.kwargs["num_inference_steps"]
        if int(steps * strength) < 1:
            steps = math.ceil(1 / strength)
        call.kwargs.update(num_inference_steps=steps, strength=strength)
        call.steps = max(1, min(int(steps * strength), steps))

    def _plan_stop(self, call: _Call, r: GenerationRequest) -> None:
        keep = max(1, round(r.steps * r.stop / 100))
        if keep >= r.steps:
            return
        call.steps = keep
        sigmas = self._truncated_sigmas(r.steps, keep)
        if sigmas is None:
            call.stop_after = keep
        else:
            del call.kwargs["num_inference_steps"]
            call.kwargs["sigmas"] = sigmas

    def _truncated_sigmas(self, steps: int, keep: int) -> list[float] | None:
        """The first `keep` noise levels of a `steps` schedule, ending on 0 (Euler-family schedulers only)."""
        scheduler = self._pipe.scheduler
        if isinstance(scheduler, diffusers.FlowMatchEulerDiscreteScheduler):
            return [float(s) for s in np.linspace(1.0, 1 / steps, steps)[:keep]]  # shifted and ended by the scheduler
        if isinstance(scheduler, diffusers.EulerDiscreteScheduler):
            full: Any = copy.deepcopy(scheduler)
            full.set_timesteps(steps)
            return [float(s) for s in full.sigmas[:keep]] + [0.0]
        return None

    def _sibling(self, kind: str) -> Any:
        """The image-to-image or inpainting pipeline sharing the loaded components."""
        if kind not in self._siblings:
            auto = AutoPipelineForImage2Image if kind == "img2img" else AutoPipelineForInpainting
            sibling = auto.from_pipe(self._pipe)
            sibling.set_progress_bar_config(disable=True)
            self._siblings[kind] = sibling
        return self._siblings[kind]

    def _execute(self, call: _Call, progress: _Progress) -> list[EngineOutput]:
        counts = [len(j.seeds) for j in call.jobs]
        if call.pipe is None:
            progress.finish(0)
            return [self._output(j, [j.pixels] * len(j.seeds)) for j in call.jobs]
        r = call.jobs[0].request
        if call.style_scale is not None:
            call.pipe.set_ip_adapter_scale(call.style_scale)

        def on_step_end(pipe: Any, i: int, t: Any, tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
            latents = tensors["latents"]
            steps = call.stop_after or pipe.num_timesteps
            progress.step(i, steps, lambda: self._previews(latents, counts, size=(r.width, r.height)))
            if call.stop_after is not None and i + 1 >= call.stop_after:
                pipe._interrupt = True
            return {}

        result = call.pipe(
            **call.kwargs, callback_on_step_end=on_step_end, callback_on_step_end_tensor_inputs=["latents"]
        )
        progress.finish(call.stop_after or call.pipe.num_timesteps)
        images: list[Image.Image] = list(result.images)
        flags = getattr(result, "nsfw_content_detected", None) or [False] * len(images)
        outputs, start = [], 0
        for job, count in zip(call.jobs, counts):
            outputs.append(self._output(job, images[start : start + count], nsfw=flags[start : start + count]))
            start += count
        return outputs

    @staticmethod
    def _output(job: _Job, images: list[Image.Image], *, nsfw: Sequence[bool] = ()) -> EngineOutput:
        if job.keep is not None and job.image is not None:
            images = [operations.paste_back(image, job.image, keep=job.keep) for image in images]
        return EngineOutput(
            images=images,
            seeds=list(job.seeds),
            nsfw=[bool(f) for f in nsfw] or [False] * len(images),
            truncated=job.cond.truncated,
        )

    def _previews(self, latents: torch.Tensor, counts: list[int], *, size: tuple[int, int]) -> list[Image.Image]:
        if self.family == "flux":
            width, height = size
            latents = self._pipe._unpack_latents(latents, height, width, self._pipe.vae_scale_factor)
        return self._previewer(latents, counts)

    @contextlib.contextmanager
    def _seamless(self, enabled: bool) -> Iterator[None]:
        """Circular padding on every convolution of the UNet and VAE while the block runs."""
        if not enabled:
            yield
            return
        convs = [
            m
            for module in (self._pipe.unet, self._pipe.vae)
            for m in module.modules()
            if isinstance(m, torch.nn.Conv2d)
        ]
        saved = [m.padding_mode for m in convs]
        for conv in convs:
            conv.padding_mode = "circular"
        try:
            yield
        finally:
            for conv, mode in zip(convs, saved):
                conv.padding_mode = mode

    @contextlib.contextmanager
    def _vae_tiling(self, pixels: int) -> Iterator[None]:
        """VAE tiling for outputs much larger than the model's native size (large upscales)."""
        vae = self._pipe.vae
        if pixels <= VAE_TILING_AREA * self.base_resolution**2 or not hasattr(vae, "enable_tiling"):
            yield
            return
        vae.enable_tiling()
        try:
            yield
        finally:
            vae.disable_tiling()
