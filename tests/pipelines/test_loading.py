from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from diffusers import EulerDiscreteScheduler, StableDiffusionPipeline
from safetensors.torch import load_file

from pipelines.devices import pick_device, pick_dtype
from pipelines.diffusers_engine import DiffusersEngine
from pipelines.errors import ModelLoadError
from pipelines.loading import load_engine
from pipelines.presets import PRESETS, resolve_model
from pipelines.sources import validate_model_source


def test_load_engine_round_trips_the_saved_folder(tiny_model_dir: Path) -> None:
    engine = load_engine(str(tiny_model_dir), device="cpu")

    pipe = engine._pipe
    assert isinstance(pipe, StableDiffusionPipeline)
    saved = load_file(tiny_model_dir / "unet" / "diffusion_pytorch_model.safetensors")
    loaded = pipe.unet.state_dict()
    assert saved.keys() == loaded.keys()
    assert all(torch.equal(saved[k], loaded[k]) for k in saved)
    assert pipe.tokenizer("a red fox").input_ids[0] == pipe.tokenizer.bos_token_id
    assert (engine.family, engine.base_resolution, engine.size_multiple) == ("sd", 64, 8)
    assert engine.model == str(tiny_model_dir)


def test_tiny_model_is_deterministic(tiny_model_dir: Path, tmp_path: Path) -> None:
    from tests.support.tiny_models import build_tiny_sd

    again = build_tiny_sd(tmp_path / "again")
    for part in ("unet/diffusion_pytorch_model.safetensors", "text_encoder/model.safetensors"):
        first, second = load_file(tiny_model_dir / part), load_file(again / part)
        assert all(torch.equal(first[k], second[k]) for k in first)
    assert (tiny_model_dir / "tokenizer" / "tokenizer.json").read_text() == (
        again / "tokenizer" / "tokenizer.json"
    ).read_text()


@pytest.mark.parametrize("layout", ["missing", "no_index"])
def test_a_folder_without_a_pipeline_names_songe_model(tmp_path: Path, layout: str) -> None:
    folder = tmp_path / "model"
    if layout == "no_index":
        folder.mkdir()
        (folder / "unet").mkdir()

    for check in (validate_model_source, lambda m: load_engine(m, device="cpu")):
        with pytest.raises(ModelLoadError, match="SONGE_MODEL") as info:
            check(str(folder))
        assert "\n" not in str(info.value)


@pytest.mark.parametrize("value", ["", "   ", "not a model id!", "owner/name/with spaces"])
def test_validate_rejects_values_that_are_no_model(value: str) -> None:
    with pytest.raises(ModelLoadError, match="SONGE_MODEL"):
        validate_model_source(value)


@pytest.mark.parametrize("value", ["sd-turbo", "stabilityai/sd-turbo", "someone/some-model", "gpt2"])
def test_validate_accepts_presets_and_hub_ids_without_loading(value: str) -> None:
    validate_model_source(value)


def test_an_uncached_hub_id_offline_is_a_model_load_error() -> None:
    with pytest.raises(ModelLoadError, match="SONGE_MODEL='songe-tests/does-not-exist'"):
        load_engine("songe-tests/does-not-exist", device="cpu")


def test_a_folder_that_is_no_loadable_pipeline_is_a_model_load_error(tmp_path: Path) -> None:
    (tmp_path / "model_index.json").write_text(json.dumps({"_class_name": "StableDiffusionPipeline"}))
    with pytest.raises(ModelLoadError, match="SONGE_MODEL"):
        load_engine(str(tmp_path), device="cpu")


def test_an_upscaler_without_spandrel_says_how_to_install_it(tiny_model_dir: Path, tmp_path: Path) -> None:
    weights = tmp_path / "RealESRGAN_x2plus.pth"
    weights.write_bytes(b"not really weights")
    with pytest.raises(ModelLoadError, match="spandrel"):
        load_engine(str(tiny_model_dir), device="cpu", upscaler=weights)
    with pytest.raises(ModelLoadError, match="SONGE_UPSCALER"):
        load_engine(str(tiny_model_dir), device="cpu", upscaler=tmp_path / "missing.pth")


@pytest.mark.parametrize(
    ("value", "model_id", "preset"),
    [
        ("sd-turbo", "stabilityai/sd-turbo", "sd-turbo"),
        ("SDXL", "stabilityai/stable-diffusion-xl-base-1.0", "sdxl"),
        ("flux-schnell", "black-forest-labs/FLUX.1-schnell", "flux-schnell"),
        ("stabilityai/sd-turbo", "stabilityai/sd-turbo", "sd-turbo"),
        ("someone/other", "someone/other", None),
        ("/models/mine", "/models/mine", None),
    ],
)
def test_resolve_model(value: str, model_id: str, preset: str | None) -> None:
    resolved_id, resolved = resolve_model(value)
    assert resolved_id == model_id
    assert (resolved.name if resolved else None) == preset


def test_presets_carry_their_defaults() -> None:
    turbo, sdxl, flux = PRESETS["sd-turbo"], PRESETS["sdxl"], PRESETS["flux-schnell"]
    assert (turbo.guidance, turbo.default_size, turbo.step_range) == (0.0, 512, (1, 4))
    assert (sdxl.steps, sdxl.guidance, sdxl.default_size) == (30, 7.0, 1024)
    assert (flux.steps, flux.guidance, flux.licence) == (4, 0.0, "Apache-2.0")
    assert PRESETS["sd15"].model_id == "stable-diffusion-v1-5/stable-diffusion-v1-5"


def test_a_preset_sets_its_scheduler_and_defaults(tiny_model_dir: Path) -> None:
    pipe = StableDiffusionPipeline.from_pretrained(tiny_model_dir)
    pipe.scheduler = EulerDiscreteScheduler.from_config(pipe.scheduler.config, timestep_spacing="leading")

    engine = DiffusersEngine(pipe, model="sd-turbo", preset=PRESETS["sd-turbo"])

    assert isinstance(pipe.scheduler, EulerDiscreteScheduler)
    assert pipe.scheduler.config.timestep_spacing == "trailing"
    assert (engine.default_steps, engine.default_guidance, engine.base_resolution) == (4, 0.0, 512)
    assert engine.size_for_aspect(1, 1) == (512, 512)
    width, height = engine.size_for_aspect(16, 9)
    assert width % 8 == 0 and height % 8 == 0 and width > height
    assert abs(width * height - 512**2) / 512**2 < 0.05


def test_cpu_is_picked_without_a_gpu_and_runs_fp32() -> None:
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    device = pick_device("auto")
    assert device.type in ("cpu", "mps")
    assert pick_dtype(torch.device("cpu"), "auto") == torch.float32
    assert pick_dtype(torch.device("cpu"), "bf16") == torch.bfloat16


@pytest.mark.parametrize(("device", "setting"), [("cuda:7", "SONGE_DEVICE"), ("tpu", "SONGE_DEVICE")])
def test_unavailable_devices_name_their_setting(device: str, setting: str) -> None:
    if torch.cuda.device_count() > 7:
        pytest.skip("this machine has eight GPUs")
    with pytest.raises(ModelLoadError, match=setting):
        pick_device(device)


def test_an_unknown_dtype_names_its_setting() -> None:
    with pytest.raises(ModelLoadError, match="SONGE_DTYPE"):
        pick_dtype(torch.device("cpu"), "int3")
