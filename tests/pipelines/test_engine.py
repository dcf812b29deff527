"""Text-to-image on the tiny model: seeds, batching, progress, interruption and the prompt features."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
import torch
from diffusers import AutoencoderTiny, DDIMScheduler, StableDiffusionPipeline, UNet2DConditionModel
from PIL import Image

from pipelines.diffusers_engine import DiffusersEngine
from pipelines.engine import EngineOutput, PreviewFactory
from pipelines.errors import GenerationError, Interrupted, ModelLoadError
from pipelines.loading import load_engine
from pipelines.types import FailureKind
from tests.support.tiny_models import build_tiny_ip_adapter, png_bytes, tiny_request


@pytest.fixture(scope="module")
def engine(tiny_model_dir: Path) -> DiffusersEngine:
    return load_engine(str(tiny_model_dir), device="cpu")


class Steps:
    """Records every step callback; optionally asks for the previews."""

    def __init__(self, *, previews: bool = False) -> None:
        self.calls: list[tuple[int, int]] = []
        self.previews: list[Sequence[Image.Image]] = []
        self._want_previews = previews

    def __call__(self, step: int, steps: int, previews: PreviewFactory) -> None:
        self.calls.append((step, steps))
        if self._want_previews:
            self.previews.append(previews())


def pixels(image: Image.Image) -> np.ndarray:
    return np.asarray(image, dtype=np.float32) / 255


def mean_diff(a: Image.Image, b: Image.Image) -> float:
    return float(np.abs(pixels(a) - pixels(b)).mean())


def same_images(a: EngineOutput, b: EngineOutput, tolerance: float = 0.0) -> bool:
    return len(a.images) == len(b.images) and all(mean_diff(x, y) <= tolerance for x, y in zip(a.images, b.images))


def test_four_images_of_the_requested_aspect_ratio(engine: DiffusersEngine) -> None:
    width, height = engine.size_for_aspect(3, 2)
    (out,) = engine.run([tiny_request(width=width, height=height)], Steps())

    assert width > height
    assert [image.size for image in out.images] == [(width, height)] * 4
    assert out.seeds == [7, 8, 9, 10]
    assert out.nsfw == [False] * 4 and out.truncated is False
    assert len({image.tobytes() for image in out.images}) == 4


def test_the_same_seed_gives_the_same_grid_and_another_seed_another(engine: DiffusersEngine) -> None:
    first, again, other = (engine.run([tiny_request(seed=s)], Steps())[0] for s in (7, 7, 8))

    assert same_images(first, again)
    assert other.images[0].tobytes() == first.images[1].tobytes() or not same_images(first, other)
    assert not same_images(first, other, tolerance=1 / 255)


def test_a_batch_matches_single_runs(engine: DiffusersEngine) -> None:
    a = tiny_request(job_id="a", prompt="a castle on a hill", seed=1, count=2)
    b = tiny_request(job_id="b", prompt="a blue bird", seed=100, count=3, negative_prompt="rain")

    batched = engine.run([a, b], Steps())
    singles = [engine.run([a], Steps())[0], engine.run([b], Steps())[0]]

    assert [o.seeds for o in batched] == [[1, 2], [100, 101, 102]]
    for together, alone in zip(batched, singles):
        assert same_images(together, alone, tolerance=1 / 255)


def test_requests_with_different_guidance_share_a_batch(engine: DiffusersEngine) -> None:
    a = tiny_request(job_id="a", guidance=1.0, count=1)
    b = tiny_request(job_id="b", guidance=6.0, count=1)
    steps = Steps()

    batched = engine.run([a, b], steps)

    assert steps.calls == [(1, 4), (2, 4), (3, 4), (4, 4)]
    assert same_images(batched[1], engine.run([b], Steps())[0], tolerance=1 / 255)


def test_progress_reports_each_step_with_one_preview_per_job(engine: DiffusersEngine) -> None:
    steps = Steps(previews=True)
    engine.run([tiny_request(job_id="a", steps=3), tiny_request(job_id="b", steps=3, count=1)], steps)

    assert steps.calls == [(1, 3), (2, 3), (3, 3)]
    grid, single = steps.previews[-1]
    assert grid.size == (2 * 96 // 8, 2 * 64 // 8)  # a 2x2 grid of latent-sized previews
    assert single.size == (96 // 8, 64 // 8)


def test_interrupting_from_the_callback_stops_within_one_step(engine: DiffusersEngine) -> None:
    calls = []

    def stop(step: int, steps: int, previews: PreviewFactory) -> None:
        calls.append(step)
        raise Interrupted()

    with pytest.raises(Interrupted):
        engine.run([tiny_request(steps=4)], stop)
    assert calls == [1]


@pytest.mark.parametrize("scheduler", ["euler", "ddim"])
def test_stop_ends_denoising_early(tiny_model_dir: Path, scheduler: str) -> None:
    engine = load_engine(str(tiny_model_dir), device="cpu")
    if scheduler == "ddim":  # no custom sigmas: the interrupt flag stops it
        engine._pipe.scheduler = DDIMScheduler.from_config(engine._pipe.scheduler.config)
    full, early = Steps(), Steps()

    (complete,) = engine.run([tiny_request(steps=4)], full)
    (stopped,) = engine.run([tiny_request(steps=4, stop=50)], early)

    assert len(full.calls) == 4
    assert early.calls == [(1, 2), (2, 2)]
    assert [image.size for image in stopped.images] == [(96, 64)] * 4
    assert not same_images(complete, stopped)


def test_tile_runs_and_restores_the_padding(engine: DiffusersEngine) -> None:
    convs = [m for m in engine._pipe.unet.modules() if isinstance(m, torch.nn.Conv2d)]

    (tiled,) = engine.run([tiny_request(tile=True)], Steps())
    (plain,) = engine.run([tiny_request()], Steps())

    assert [image.size for image in tiled.images] == [(96, 64)] * 4
    assert not same_images(tiled, plain, tolerance=1 / 255)
    assert {m.padding_mode for m in convs} == {"zeros"}


def test_a_prompt_longer_than_the_encoder_reads_is_flagged(engine: DiffusersEngine) -> None:
    long_prompt = " ".join(["a red fox in the snow"] * 20)
    (cut,) = engine.run([tiny_request(prompt=long_prompt, count=1)], Steps())
    (short,) = engine.run([tiny_request(prompt="a red fox", count=1)], Steps())

    assert cut.truncated is True
    assert short.truncated is False


def test_weights_change_the_image_and_equal_weights_do_not(engine: DiffusersEngine) -> None:
    def image(prompt: str, negative: str = "") -> EngineOutput:
        return engine.run([tiny_request(prompt=prompt, negative_prompt=negative, guidance=5.0, count=1)], Steps())[0]

    plain = image("a red fox")
    assert same_images(image("a red fox::1"), plain, tolerance=1e-4)
    assert same_images(image("a red fox::3"), plain, tolerance=1e-4)  # one part: weights are relative
    assert not same_images(image("a red fox::2 a blue bird::1"), plain, tolerance=1 / 255)
    assert same_images(image("a red fox:: rain::-1"), image("a red fox", negative="rain"), tolerance=1e-4)


def test_chaos_spreads_the_images_reproducibly(engine: DiffusersEngine) -> None:
    (calm,) = engine.run([tiny_request(guidance=5.0)], Steps())
    (wild,) = engine.run([tiny_request(guidance=5.0, chaos=100)], Steps())
    (again,) = engine.run([tiny_request(guidance=5.0, chaos=100)], Steps())

    assert same_images(wild, again)
    assert all(mean_diff(a, b) > 1e-3 for a, b in zip(calm.images, wild.images))  # random weights react weakly


def test_a_style_reference_without_ip_adapter_is_unsupported(engine: DiffusersEngine) -> None:
    with pytest.raises(GenerationError, match="IP-Adapter") as info:
        engine.run([tiny_request(style_image=b"\x89PNG...")], Steps())
    assert info.value.kind is FailureKind.UNSUPPORTED


@pytest.mark.parametrize("bad", [{"width": 100}, {"height": 0}, {"count": 0}, {"steps": 0}, {"prompt": "fog::-1"}])
def test_bad_requests_fail_before_any_step(engine: DiffusersEngine, bad: dict[str, object]) -> None:
    steps = Steps()
    with pytest.raises(GenerationError) as info:
        engine.run([dataclasses.replace(tiny_request(), **bad)], steps)
    assert info.value.kind is FailureKind.BAD_INPUT
    assert steps.calls == []


def test_an_empty_batch_runs_nothing(engine: DiffusersEngine) -> None:
    assert engine.run([], Steps()) == []


def test_a_tiny_autoencoder_decodes_the_previews(tiny_model_dir: Path) -> None:
    pipe = StableDiffusionPipeline.from_pretrained(tiny_model_dir)
    taesd = AutoencoderTiny(
        encoder_block_out_channels=(8, 8, 8, 8),
        decoder_block_out_channels=(8, 8, 8, 8),
        num_encoder_blocks=(1, 1, 1, 1),
        num_decoder_blocks=(1, 1, 1, 1),
    )
    engine = DiffusersEngine(pipe, model="tiny", taesd=taesd)
    steps = Steps(previews=True)

    engine.run([tiny_request(steps=1)], steps)

    (grid,) = steps.previews[0]
    assert grid.size == (2 * 96, 2 * 64)  # full-size decodes (below the preview cap), four in a grid


def test_a_style_reference_steers_the_images_through_ip_adapter(tiny_model_dir: Path, tmp_path: Path) -> None:
    weights = build_tiny_ip_adapter(tmp_path, UNet2DConditionModel.from_pretrained(tiny_model_dir / "unet"))
    engine = load_engine(str(tiny_model_dir), device="cpu", ip_adapter=str(weights))
    style = png_bytes(Image.new("RGB", (40, 40), (200, 30, 30)))
    styled, plain = tiny_request(job_id="styled", style_image=style), tiny_request(job_id="plain")

    together = engine.run([styled, plain], Steps())
    alone = [engine.run([styled], Steps())[0], engine.run([plain], Steps())[0]]

    assert not same_images(alone[0], alone[1])
    assert same_images(together[0], alone[0], tolerance=1 / 255)
    assert same_images(together[1], alone[1], tolerance=1 / 255)


def test_a_malformed_ip_adapter_setting_names_it(tiny_model_dir: Path) -> None:
    with pytest.raises(ModelLoadError, match="SONGE_IP_ADAPTER"):
        load_engine(str(tiny_model_dir), device="cpu", ip_adapter="h94/IP-Adapter")
