"""SDXL and Flux through the engine, on the GPU benchmark's architectures shrunk to a few kilobytes."""

from __future__ import annotations

import importlib.util
import tempfile
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from pipelines.engine import PreviewFactory
from pipelines.types import Box, Operation
from tests.support.tiny_models import png_bytes, tiny_request, write_clip_tokenizer

BENCH = Path(__file__).resolve().parents[2] / "bench" / "gpu_bench.py"


@pytest.fixture(scope="module")
def gpu_bench(tiny_model_dir: Path) -> ModuleType:  # tiny_model_dir: one torch thread, offline hub
    spec = importlib.util.spec_from_file_location("gpu_bench", BENCH)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module", params=["sdxl", "flux-schnell"])
def engine(request: pytest.FixtureRequest, gpu_bench: ModuleType) -> Any:
    with tempfile.TemporaryDirectory() as scratch:
        tokenizer = write_clip_tokenizer(Path(scratch))
    return gpu_bench.build_engine(
        request.param, tiny=True, device=torch.device("cpu"), dtype=torch.float32, tokenizer=tokenizer
    )


class Steps:
    def __init__(self) -> None:
        self.calls: list[tuple[int, int]] = []
        self.previews: list[Image.Image] = []

    def __call__(self, step: int, steps: int, previews: PreviewFactory) -> None:
        self.calls.append((step, steps))
        self.previews.extend(previews())


def test_the_benchmark_runs_every_model_at_tiny_scale(
    gpu_bench: ModuleType, capsys: pytest.CaptureFixture[str]
) -> None:
    assert gpu_bench.main(["--scale", "tiny", "--runs", "1"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in lines] == ["sd-turbo", "sdxl", "flux-schnell"]
    assert all("s per grid" in line for line in lines)


def test_text_to_image_with_weights_stop_and_previews(engine: Any) -> None:
    steps = Steps()
    request = tiny_request(prompt="a red fox::2 snow::1", width=64, height=64, steps=4, stop=50, guidance=3.0)

    (out,) = engine.run([request], steps)

    assert [image.size for image in out.images] == [(64, 64)] * 4
    assert steps.calls == [(1, 2), (2, 2)]
    assert steps.previews[-1].size == (16, 16)  # a 2x2 grid of 8x8 latent previews
    (again,) = engine.run([request], Steps())
    assert all(a.tobytes() == b.tobytes() for a, b in zip(out.images, again.images))


@pytest.mark.parametrize(
    ("operation", "fields"),
    [
        (Operation.IMAGE_TO_IMAGE, {"strength": 0.5}),
        (Operation.OUTPAINT, {"width": 96, "placement": Box(16, 0, 80, 64)}),
        (Operation.INPAINT, {"region": Box(16, 16, 48, 48)}),
    ],
)
def test_image_operations(engine: Any, operation: Operation, fields: dict[str, object]) -> None:
    source = Image.fromarray((np.random.default_rng(0).random((64, 64, 3)) * 255).astype(np.uint8))
    request_fields: dict[str, object] = {"width": 64, "height": 64, "steps": 2, "count": 2, **fields}
    request = tiny_request(operation=operation, source_image=png_bytes(source), **request_fields)

    (out,) = engine.run([request], Steps())

    assert [image.size for image in out.images] == [(request.width, 64)] * 2
