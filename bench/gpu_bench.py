"""Seconds per 2x2 grid and peak GPU memory for SD-Turbo, SDXL and FLUX.1-schnell, on random weights.

The architectures are built here from their published configs (nothing is downloaded), in
bf16 on the GPU, and driven through `DiffusersEngine` exactly as the bot drives them: four
images per job at the preset's size, steps and guidance. Weights are random, so the images
are noise, but every matrix has its real shape and the timings are the real ones. The
tokenizers are the tiny ones the tests write: only their output shapes matter.

    python bench/gpu_bench.py                      # all three on CUDA, a few minutes on one H100
    python bench/gpu_bench.py --models sdxl --compile
    python bench/gpu_bench.py --scale tiny         # shrunken configs, CPU, seconds: a smoke test
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch
from diffusers import (
    AutoencoderKL,
    EulerDiscreteScheduler,
    FlowMatchEulerDiscreteScheduler,
    FluxPipeline,
    FluxTransformer2DModel,
    StableDiffusionPipeline,
    StableDiffusionXLPipeline,
    UNet2DConditionModel,
)
from transformers import CLIPTextModel, CLIPTextModelWithProjection, CLIPTokenizer, T5Config, T5EncoderModel

from pipelines.diffusers_engine import DiffusersEngine
from pipelines.presets import PRESETS
from pipelines.types import GenerationRequest
from tests.support.tiny_models import clip_text_model, t5_tokenizer, write_clip_tokenizer

MODELS = ("sd-turbo", "sdxl", "flux-schnell")
TINY_SIZE = 64


@contextlib.contextmanager
def building(device: torch.device, dtype: torch.dtype) -> Iterator[None]:
    """New parameters are created (and randomly initialised) directly on `device` in `dtype`."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with device:
            yield
    finally:
        torch.set_default_dtype(previous)


def vae(tiny: bool, *, latent_channels: int = 4, **config: Any) -> AutoencoderKL:
    """The SD/SDXL/Flux autoencoder layout (128-256-512-512, two layers per block), or a tiny one."""
    return AutoencoderKL(
        block_out_channels=(8, 16, 16, 16) if tiny else (128, 256, 512, 512),
        layers_per_block=1 if tiny else 2,
        norm_num_groups=8 if tiny else 32,
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        latent_channels=latent_channels,
        **config,
    ).eval()


def sd_turbo(tokenizer: CLIPTokenizer, tiny: bool, device: torch.device, dtype: torch.dtype) -> StableDiffusionPipeline:
    """SD 2.1-base layout: OpenCLIP ViT-H text encoder (1024 wide, 23 layers), 4-level UNet at 64x64 latents."""
    with building(device, dtype):
        unet = UNet2DConditionModel(
            sample_size=8 if tiny else 64,
            block_out_channels=(32, 64) if tiny else (320, 640, 1280, 1280),
            down_block_types=("CrossAttnDownBlock2D", "DownBlock2D")
            if tiny
            else ("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
            up_block_types=("UpBlock2D", "CrossAttnUpBlock2D")
            if tiny
            else ("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
            layers_per_block=1 if tiny else 2,
            attention_head_dim=(2, 4) if tiny else (5, 10, 20, 20),
            cross_attention_dim=32 if tiny else 1024,
            use_linear_projection=True,
            norm_num_groups=8 if tiny else 32,
        ).eval()
        text_encoder = clip_text_model(
            tokenizer,
            vocab=None if tiny else 49408,
            hidden=32 if tiny else 1024,
            layers=2 if tiny else 23,
            heads=4 if tiny else 16,
            act="gelu",
            projection=32 if tiny else 512,
        )
        autoencoder = vae(tiny, sample_size=768, scaling_factor=0.18215)
    scheduler = EulerDiscreteScheduler(
        beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", timestep_spacing="trailing", steps_offset=1
    )
    return StableDiffusionPipeline(
        vae=autoencoder,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        unet=unet,
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )


def clip_vit_l(tokenizer: CLIPTokenizer, tiny: bool) -> CLIPTextModel | CLIPTextModelWithProjection:
    """CLIP ViT-L/14's text encoder, the first text encoder of SDXL and FLUX.1."""
    return clip_text_model(
        tokenizer,
        vocab=None if tiny else 49408,
        hidden=32 if tiny else 768,
        layers=2 if tiny else 12,
        heads=4 if tiny else 12,
        act="quick_gelu",
        projection=32 if tiny else 768,
    )


def sdxl(tokenizer: CLIPTokenizer, tiny: bool, device: torch.device, dtype: torch.dtype) -> StableDiffusionXLPipeline:
    """SDXL base layout: CLIP ViT-L + OpenCLIP bigG text encoders, 3-level UNet with 1/2/10 transformer layers."""
    with building(device, dtype):
        text_encoder = clip_vit_l(tokenizer, tiny)
        pooled = 32 if tiny else 1280
        text_encoder_2 = clip_text_model(
            tokenizer,
            vocab=None if tiny else 49408,
            hidden=32 if tiny else 1280,
            layers=2 if tiny else 32,
            heads=4 if tiny else 20,
            act="gelu",
            projection=pooled,
            with_projection=True,
        )
        time_dim = 8 if tiny else 256
        unet = UNet2DConditionModel(
            sample_size=8 if tiny else 128,
            block_out_channels=(32, 64) if tiny else (320, 640, 1280),
            down_block_types=("DownBlock2D", "CrossAttnDownBlock2D")
            if tiny
            else ("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
            up_block_types=("CrossAttnUpBlock2D", "UpBlock2D")
            if tiny
            else ("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
            layers_per_block=1 if tiny else 2,
            transformer_layers_per_block=(1, 2) if tiny else (1, 2, 10),
            attention_head_dim=(2, 4) if tiny else (5, 10, 20),
            cross_attention_dim=64 if tiny else 2048,  # both encoders' hidden states, concatenated
            use_linear_projection=True,
            addition_embed_type="text_time",
            addition_time_embed_dim=time_dim,
            projection_class_embeddings_input_dim=6 * time_dim + pooled,
            norm_num_groups=8 if tiny else 32,
        ).eval()
        autoencoder = vae(tiny, sample_size=1024, scaling_factor=0.13025)
    scheduler = EulerDiscreteScheduler(
        beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", timestep_spacing="leading", steps_offset=1
    )
    return StableDiffusionXLPipeline(
        vae=autoencoder,
        text_encoder=text_encoder,
        text_encoder_2=text_encoder_2,
        tokenizer=tokenizer,
        tokenizer_2=tokenizer,
        unet=unet,
        scheduler=scheduler,
        add_watermarker=False,
    )


def flux_schnell(tokenizer: CLIPTokenizer, tiny: bool, device: torch.device, dtype: torch.dtype) -> FluxPipeline:
    """FLUX.1 layout: CLIP ViT-L (pooled) + T5-v1.1-XXL, 19 double and 38 single blocks of width 3072."""
    with building(device, dtype):
        text_encoder = clip_vit_l(tokenizer, tiny)
        tokenizer_2 = t5_tokenizer(tokenizer, max_length=256)
        t5 = T5Config(
            vocab_size=len(tokenizer_2) if tiny else 32128,
            d_model=32 if tiny else 4096,
            d_kv=8 if tiny else 64,
            d_ff=64 if tiny else 10240,
            num_layers=2 if tiny else 24,
            num_heads=4 if tiny else 64,
            feed_forward_proj="gated-gelu",
        )
        transformer = FluxTransformer2DModel(
            in_channels=64,  # 16 latent channels in 2x2 patches
            num_layers=1 if tiny else 19,
            num_single_layers=1 if tiny else 38,
            attention_head_dim=16 if tiny else 128,
            num_attention_heads=2 if tiny else 24,
            joint_attention_dim=t5.d_model,
            pooled_projection_dim=32 if tiny else 768,
            guidance_embeds=False,
            axes_dims_rope=(4, 6, 6) if tiny else (16, 56, 56),
        ).eval()
        autoencoder = vae(
            tiny,
            latent_channels=16,
            sample_size=1024,
            scaling_factor=0.3611,
            shift_factor=0.1159,
            use_quant_conv=False,
            use_post_quant_conv=False,
        )
        t5_encoder = T5EncoderModel(t5).eval()
    return FluxPipeline(
        scheduler=FlowMatchEulerDiscreteScheduler(shift=1.0, use_dynamic_shifting=False),
        vae=autoencoder,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        text_encoder_2=t5_encoder,
        tokenizer_2=tokenizer_2,
        transformer=transformer,
    )


BUILDERS = {"sd-turbo": sd_turbo, "sdxl": sdxl, "flux-schnell": flux_schnell}


def build_engine(name: str, *, tiny: bool, device: torch.device, dtype: torch.dtype, tokenizer: CLIPTokenizer) -> Any:
    """A `DiffusersEngine` over random weights of `name`'s architecture, with the preset's scheduler and defaults."""
    torch.manual_seed(0)
    pipe = BUILDERS[name](tokenizer, tiny, device, dtype)
    return DiffusersEngine(pipe, model=f"bench-{name}", preset=PRESETS[name])


def bench(engine: Any, *, size: int, runs: int) -> list[float]:
    """Seconds per 2x2 grid (one job of four images at the preset's steps and guidance), after one warm-up."""
    request = GenerationRequest(
        "bench", 0, "a red fox in the snow", size, size, 7, engine.default_steps, engine.default_guidance
    )
    times = []
    for _ in range(runs + 1):
        start = time.perf_counter()
        engine.run([request], lambda step, steps, previews: None)
        times.append(time.perf_counter() - start)
    return times[1:]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(MODELS), help=f"comma-separated, of {', '.join(MODELS)}")
    parser.add_argument("--scale", choices=("real", "tiny"), default="real")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--compile", action="store_true", help="torch.compile the denoiser (warm-up compiles)")
    args = parser.parse_args(argv)
    tiny = args.scale == "tiny"
    unknown = set(args.models.split(",")) - set(MODELS)
    if unknown:
        parser.error(f"unknown models {', '.join(sorted(unknown))}: choose from {', '.join(MODELS)}")
    if not tiny and not torch.cuda.is_available():
        print("gpu_bench needs a CUDA GPU for --scale real; --scale tiny runs shrunken configs on the CPU.")
        return 2
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    if device.type == "cuda":
        print(f"device: {torch.cuda.get_device_name(device)}, torch {torch.__version__}, {dtype}")
    with tempfile.TemporaryDirectory() as scratch:
        tokenizer = write_clip_tokenizer(Path(scratch))
    for name in args.models.split(","):
        preset = PRESETS[name]
        engine = build_engine(name, tiny=tiny, device=device, dtype=dtype, tokenizer=tokenizer)
        if device.type == "cuda":
            torch.cuda.synchronize()
            weights_gib = torch.cuda.memory_allocated() / 2**30
            torch.cuda.reset_peak_memory_stats()
        if args.compile:
            engine.compile()
        size = TINY_SIZE if tiny else preset.default_size
        times = bench(engine, size=size, runs=args.runs)
        line = (
            f"{name}: 4 images {size}x{size}, {engine.default_steps} steps, guidance {engine.default_guidance}: "
            f"{statistics.median(times):.3f} s per grid (median of {len(times)}, min {min(times):.3f})"
        )
        if device.type == "cuda":
            peak_gib = torch.cuda.max_memory_allocated() / 2**30
            line += f", weights {weights_gib:.1f} GiB, peak {peak_gib:.1f} GiB"
        print(line, flush=True)
        del engine
        if device.type == "cuda":
            torch.cuda.empty_cache()
    return 0


if __name__ == "__main__":
    sys.exit(main())
