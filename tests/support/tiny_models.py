"""Tiny random-weight diffusers pipelines for tests and CPU smoke runs; nothing is downloaded.

The tokenizer is written here too: CLIP's conventions (NFC + whitespace squeeze + lower case,
CLIP's split pattern, byte-level symbols, a `</w>` suffix on each word's last symbol, the
`<|startoftext|>`/`<|endoftext|>` specials) applied through the `tokenizers` library, with
merges learned from a small prompt corpus by a deterministic byte-pair loop (the library's
trainer breaks ties differently from run to run, and the tiny model must be the same every
time). `build_tiny_sd(folder)` saves a Stable-Diffusion-shaped pipeline that loads through
`AutoPipelineForText2Image` and, through `from_pipe`, as image-to-image and inpainting.
"""

from __future__ import annotations

import collections
import io
import itertools
import json
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from diffusers import AutoencoderKL, EulerDiscreteScheduler, StableDiffusionPipeline, UNet2DConditionModel
from PIL import Image
from safetensors.torch import save_file
from tokenizers import Regex, normalizers, pre_tokenizers
from transformers import (
    CLIPTextConfig,
    CLIPTextModel,
    CLIPTextModelWithProjection,
    CLIPTokenizer,
    CLIPVisionConfig,
    CLIPVisionModelWithProjection,
    T5Tokenizer,
)

from pipelines.types import GenerationRequest

CLIP_SPLIT = r"""<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+"""
BOS, EOS = "<|startoftext|>", "<|endoftext|>"
SUFFIX = "</w>"

CORPUS = (
    "a red fox in the snow, a cat and a dog, portrait of a woman, oil painting, watercolor landscape,",
    "photo of a mountain lake at sunset, cinematic lighting, highly detailed, a castle on a hill,",
    "a bowl of fruit on a wooden table, cyberpunk city street at night, neon lights, rain,",
    "a lighthouse by the sea, stormy clouds, studio photograph, soft light, a robot reading a book,",
    "an astronaut riding a horse, pencil sketch, the forest in autumn, golden hour, a blue bird,",
    "a cup of coffee, minimalist poster, vintage film, macro shot of a flower, a dragon flying over",
    "the ocean, pixel art, anime style, a cozy cabin in the woods, snow falling, the moon and stars",
)


def _normaliser() -> normalizers.Normalizer:
    return normalizers.Sequence([normalizers.NFC(), normalizers.Replace(Regex(r"\s+"), " "), normalizers.Lowercase()])


def _pre_tokenizer() -> pre_tokenizers.PreTokenizer:
    return pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(CLIP_SPLIT), behavior="removed", invert=True),
            pre_tokenizers.ByteLevel(add_prefix_space=False),
        ]
    )


def _word_counts(corpus: Sequence[str]) -> collections.Counter[tuple[str, ...]]:
    """Each word of the corpus as byte-level symbols, the last one carrying CLIP's `</w>`."""
    normaliser, pre_tokenizer = _normaliser(), _pre_tokenizer()
    counts: collections.Counter[tuple[str, ...]] = collections.Counter()
    for line in corpus:
        for word, _span in pre_tokenizer.pre_tokenize_str(normaliser.normalize_str(line)):
            counts[(*word[:-1], word[-1] + SUFFIX)] += 1
    return counts


def _merge(word: tuple[str, ...], pair: tuple[str, str]) -> tuple[str, ...]:
    out: list[str] = []
    i = 0
    while i < len(word):
        if i + 1 < len(word) and (word[i], word[i + 1]) == pair:
            out.append(word[i] + word[i + 1])
            i += 2
        else:
            out.append(word[i])
            i += 1
    return tuple(out)


def learn_merges(corpus: Sequence[str], *, max_merges: int = 400) -> list[tuple[str, str]]:
    """Byte-pair merges of `corpus`, most frequent pair first, ties broken by the pair itself."""
    words = _word_counts(corpus)
    merges: list[tuple[str, str]] = []
    while len(merges) < max_merges:
        pairs: collections.Counter[tuple[str, str]] = collections.Counter()
        for word, count in words.items():
            for pair in itertools.pairwise(word):
                pairs[pair] += count
        if not pairs:
            break
        best = min(pairs, key=lambda p: (-pairs[p], p))
        if pairs[best] < 2:
            break
        merges.append(best)
        words = collections.Counter({_merge(w, best): c for w, c in words.items()})
    return merges


def write_clip_tokenizer(folder: Path, *, max_length: int = 77) -> CLIPTokenizer:
    """Write vocab.json and merges.txt in CLIP's layout under `folder` and load them."""
    folder.mkdir(parents=True, exist_ok=True)
    merges = learn_merges(CORPUS)
    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    vocab = alphabet + [c + SUFFIX for c in alphabet] + ["".join(m) for m in merges] + [BOS, EOS]
    vocab_file, merges_file = folder / "vocab.json", folder / "merges.txt"
    vocab_file.write_text(json.dumps({token: i for i, token in enumerate(vocab)}, ensure_ascii=False), encoding="utf-8")
    merges_file.write_text("#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in merges), encoding="utf-8")
    return CLIPTokenizer(str(vocab_file), str(merges_file), model_max_length=max_length)


def t5_tokenizer(clip: CLIPTokenizer, *, max_length: int = 512) -> T5Tokenizer:
    """A unigram tokenizer in T5's conventions (`▁`-prefixed pieces) over the tiny CLIP vocabulary's words."""
    words = sorted({t.removesuffix(SUFFIX) for t in clip.get_vocab() if t.removesuffix(SUFFIX).isalpha()})
    pieces = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("▁", -2.0)]
    pieces += [(f"▁{word}", -1.0) for word in words] + [(letter, -5.0) for letter in "abcdefghijklmnopqrstuvwxyz"]
    return T5Tokenizer(vocab=pieces, extra_ids=0, model_max_length=max_length)


def clip_text_model(
    tokenizer: CLIPTokenizer,
    *,
    hidden: int = 32,
    layers: int = 2,
    heads: int = 4,
    act: str = "quick_gelu",
    projection: int = 32,
    vocab: int | None = None,
    with_projection: bool = False,
) -> CLIPTextModel | CLIPTextModelWithProjection:
    """A CLIP text encoder for `tokenizer` (tiny by default); `with_projection` for SDXL's second encoder."""
    config = CLIPTextConfig(
        vocab_size=vocab or len(tokenizer),
        hidden_size=hidden,
        intermediate_size=4 * hidden,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        hidden_act=act,
        projection_dim=projection,
        max_position_embeddings=77,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    return (CLIPTextModelWithProjection if with_projection else CLIPTextModel)(config).eval()


def tiny_sd_pipeline(tokenizer: CLIPTokenizer, *, seed: int = 0) -> StableDiffusionPipeline:
    """A Stable-Diffusion-shaped pipeline: 8x VAE, a two-level UNet, 64 px native size."""
    torch.manual_seed(seed)
    unet = UNet2DConditionModel(
        sample_size=8,
        block_out_channels=(32, 64),
        layers_per_block=1,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=32,
        attention_head_dim=(2, 4),
        norm_num_groups=8,
    )
    torch.manual_seed(seed + 1)
    vae = AutoencoderKL(
        sample_size=32,  # tiles of 32 px when tiling is on, so the tests exercise it
        block_out_channels=(8, 16, 16, 16),
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        latent_channels=4,
        layers_per_block=1,
        norm_num_groups=8,
    )
    torch.manual_seed(seed + 2)
    text_encoder = clip_text_model(tokenizer)
    scheduler = EulerDiscreteScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        timestep_spacing="trailing",
        steps_offset=1,
    )
    return StableDiffusionPipeline(
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        unet=unet,
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )


def build_tiny_sd(folder: Path, *, seed: int = 0) -> Path:
    """Save the tiny SD pipeline under `folder` (about 2 MB) and return the folder."""
    with tempfile.TemporaryDirectory() as scratch:
        pipe = tiny_sd_pipeline(write_clip_tokenizer(Path(scratch)), seed=seed)
        pipe.save_pretrained(folder, safe_serialization=True)
    return folder


def tiny_request(**overrides: Any) -> GenerationRequest:
    """A 96x64, 2-step, four-image text-to-image request for the tiny model; fields overridable."""
    fields: dict[str, Any] = {
        "job_id": "job-1",
        "user_id": 1,
        "prompt": "a red fox in the snow",
        "width": 96,
        "height": 64,
        "seed": 7,
        "steps": 2,
        "guidance": 0.0,
    }
    fields.update(overrides)
    return GenerationRequest(**fields)


def png_bytes(image: Image.Image) -> bytes:
    """`image` encoded as PNG, as a request's source image."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def build_tiny_ip_adapter(folder: Path, unet: UNet2DConditionModel, *, seed: int = 0) -> Path:
    """IP-Adapter weights for `unet` and a tiny CLIP image encoder beside them; returns the weights file.

    The layout is h94/IP-Adapter's: `ip-adapter.safetensors` with `image_proj.*` (four image
    tokens) and `ip_adapter.{1,3,5...}.to_{k,v}_ip.weight` per cross-attention layer, and the
    encoder in `image_encoder/`.
    """
    torch.manual_seed(seed)
    encoder = CLIPVisionModelWithProjection(
        CLIPVisionConfig(
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=1,
            num_attention_heads=4,
            image_size=32,
            patch_size=8,
            projection_dim=32,
        )
    )
    encoder.save_pretrained(folder / "image_encoder")
    cross = unet.config.cross_attention_dim
    weights = {
        "image_proj.proj.weight": torch.randn(4 * cross, 32) * 0.1,
        "image_proj.proj.bias": torch.zeros(4 * cross),
        "image_proj.norm.weight": torch.ones(cross),
        "image_proj.norm.bias": torch.zeros(cross),
    }
    layers = [p for name, p in unet.attn_processors.items() if name.endswith("attn2.processor")]
    widths = [m.to_q.out_features for name, m in unet.named_modules() if name.endswith("attn2")]
    assert len(layers) == len(widths)
    for i, width in enumerate(widths):
        for kind in ("k", "v"):
            weights[f"ip_adapter.{2 * i + 1}.to_{kind}_ip.weight"] = torch.randn(width, cross) * 0.1
    path = folder / "ip-adapter.safetensors"
    save_file(weights, path)
    return path
