"""Text conditioning: weighted prompt parts encoded and blended, then stacked for one batched call.

Each family's pipeline encodes one text at a time through its own `encode_prompt`, so the
embeddings are exactly what the pipeline would have built; `::` parts are blended by their
normalised weights (embeddings and, for SDXL/Flux, pooled embeddings alike).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from pipelines.prompts import PromptPart, WeightedPrompt, chaos_noise

FLUX_MAX_SEQUENCE = 256
CHAOS_SALT = 0x5EED_C4A0


def family_of(pipe: Any) -> str:
    """`sd` (SD 1.x/2.x), `sdxl` or `flux`: which conditioning and latent layout the pipeline uses."""
    if getattr(pipe, "transformer", None) is not None and hasattr(pipe, "_pack_latents"):
        return "flux"
    if getattr(pipe, "text_encoder_2", None) is not None:
        return "sdxl"
    if getattr(pipe, "unet", None) is not None and hasattr(pipe, "text_encoder"):
        return "sd"
    raise ValueError(f"{type(pipe).__name__} is not a Stable Diffusion, SDXL or Flux pipeline")


@dataclass
class Conditioning:
    """One request's blended text conditioning, batch dimension 1."""

    embeds: torch.Tensor
    pooled: torch.Tensor | None
    negative: torch.Tensor | None
    negative_pooled: torch.Tensor | None
    truncated: bool


def _token_limit(pipe: Any, family: str) -> tuple[Any, int]:
    if family == "flux":
        return pipe.tokenizer_2, FLUX_MAX_SEQUENCE
    return pipe.tokenizer, int(pipe.tokenizer.model_max_length)


def _encode_one(pipe: Any, text: str, *, family: str, device: torch.device) -> tuple[torch.Tensor, torch.Tensor | None]:
    if family == "sd":
        embeds, _ = pipe.encode_prompt(text, device, 1, False)
        return embeds, None
    if family == "sdxl":
        embeds, _, pooled, _ = pipe.encode_prompt(
            prompt=text, device=device, num_images_per_prompt=1, do_classifier_free_guidance=False
        )
        return embeds, pooled
    embeds, pooled, _ = pipe.encode_prompt(
        prompt=text, prompt_2=None, device=device, num_images_per_prompt=1, max_sequence_length=FLUX_MAX_SEQUENCE
    )
    return embeds, pooled


def _mix(tensors: Sequence[torch.Tensor], weights: Sequence[float]) -> torch.Tensor:
    total = sum(weights)
    mixed = tensors[0] * (weights[0] / total)
    for tensor, weight in zip(tensors[1:], weights[1:]):
        mixed = mixed + tensor * (weight / total)
    return mixed


def _blend(
    pipe: Any, parts: Sequence[PromptPart], *, family: str, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor | None]:
    encoded = [_encode_one(pipe, p.text, family=family, device=device) for p in parts]
    weights = [p.weight for p in parts]
    pooled = [p for _, p in encoded if p is not None]
    return _mix([e for e, _ in encoded], weights), (_mix(pooled, weights) if pooled else None)


def encode(pipe: Any, prompt: WeightedPrompt, *, family: str, device: torch.device) -> Conditioning:
    """Encode and blend the positive parts, and (SD/SDXL) the negative ones or the empty prompt."""
    tokenizer, limit = _token_limit(pipe, family)
    truncated = any(len(tokenizer(p.text, truncation=False).input_ids) > limit for p in prompt.positive)
    embeds, pooled = _blend(pipe, prompt.positive, family=family, device=device)
    negative = negative_pooled = None
    if family != "flux":
        if prompt.negative:
            negative, negative_pooled = _blend(pipe, prompt.negative, family=family, device=device)
        elif family == "sdxl" and pipe.config.force_zeros_for_empty_prompt:
            negative = torch.zeros_like(embeds)
            negative_pooled = None if pooled is None else torch.zeros_like(pooled)
        else:
            negative, negative_pooled = _blend(pipe, (PromptPart("", 1.0),), family=family, device=device)
    return Conditioning(embeds, pooled, negative, negative_pooled, truncated)


def _with_chaos(embeds: torch.Tensor, seeds: Sequence[int], chaos: int) -> torch.Tensor:
    """`embeds` (1, ...) repeated once per seed, each copy with its own seeded noise when chaos > 0."""
    repeated = embeds.repeat(len(seeds), *([1] * (embeds.dim() - 1)))
    scale = chaos_noise(chaos)
    if scale == 0:
        return repeated
    std = float(embeds.float().std())
    noise = torch.stack(
        [
            torch.randn(embeds.shape[1:], generator=torch.Generator().manual_seed((s + CHAOS_SALT) % 2**63))
            for s in seeds
        ]
    )
    return repeated + (noise * scale * std).to(embeds.device, embeds.dtype)


def batch_kwargs(
    conds: Sequence[Conditioning], *, family: str, seeds: Sequence[Sequence[int]], chaos: Sequence[int]
) -> dict[str, torch.Tensor]:
    """The embedding arguments of one pipeline call: one row per image, jobs in order."""

    def stack(pick: str, noisy: bool) -> torch.Tensor:
        rows = []
        for cond, job_seeds, job_chaos in zip(conds, seeds, chaos):
            tensor = getattr(cond, pick)
            rows.append(_with_chaos(tensor, job_seeds, job_chaos if noisy else 0))
        return torch.cat(rows)

    kwargs = {"prompt_embeds": stack("embeds", True)}
    if family in ("sdxl", "flux"):
        kwargs["pooled_prompt_embeds"] = stack("pooled", True)
    if family != "flux":
        kwargs["negative_prompt_embeds"] = stack("negative", False)
    if family == "sdxl":
        kwargs["negative_pooled_prompt_embeds"] = stack("negative_pooled", False)
    return kwargs
