"""`python -m pipelines` on the tiny model, through the real LocalQueue."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from pipelines.__main__ import main
from pipelines.images import read_png_metadata


def run(tiny_model_dir: Path, *argv: str) -> int:
    return main([*argv, "--model", str(tiny_model_dir), "--device", "cpu", "--steps", "2"])


def test_imagine_writes_a_grid_of_the_aspect_ratio_with_the_prompt_inside(
    tiny_model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "fox.png"

    assert run(tiny_model_dir, "a red fox", "--ar", "3:2", "--seed", "7", "--out", str(out)) == 0

    printed = capsys.readouterr()
    assert printed.out.split() == [str(out)]
    assert "100%  step 2/2" in printed.err
    with Image.open(out) as grid:
        width, height = grid.size
    assert width > height and width % 2 == 0 and (width // 2) % 8 == 0 and (height // 2) % 8 == 0
    metadata = read_png_metadata(out.read_bytes())
    assert (metadata["prompt"], metadata["seeds"]) == ("a red fox", "7,8,9,10")


def test_the_same_seed_writes_the_same_images_split(tiny_model_dir: Path, tmp_path: Path) -> None:
    for name in ("a", "b"):
        assert (
            run(tiny_model_dir, "imagine", "a castle", "--seed", "3", "--split", "--out", str(tmp_path / f"{name}.png"))
            == 0
        )

    for i in range(1, 5):
        first, second = Image.open(tmp_path / f"a-{i}.png"), Image.open(tmp_path / f"b-{i}.png")
        assert first.tobytes() == second.tobytes()
    assert Image.open(tmp_path / "a-1.png").tobytes() != Image.open(tmp_path / "a-2.png").tobytes()


def test_upscale_vary_and_zoom_start_from_an_image(tiny_model_dir: Path, tmp_path: Path) -> None:
    source = tmp_path / "source.png"
    assert run(tiny_model_dir, "a red fox", "--ar", "1:1", "--split", "--out", str(source)) == 0
    first = tmp_path / "source-1.png"

    assert run(tiny_model_dir, "upscale", str(first), "--out", str(tmp_path / "big.png")) == 0
    assert run(tiny_model_dir, "vary", str(first), "--strong", "--out", str(tmp_path / "vary.png")) == 0
    assert run(tiny_model_dir, "zoom", str(first), "--factor", "2", "--out", str(tmp_path / "zoom.png")) == 0

    assert Image.open(tmp_path / "big.png").size == (128, 128)
    assert Image.open(tmp_path / "vary.png").size == (128, 128)  # a 2x2 grid of 64x64
    assert Image.open(tmp_path / "zoom.png").size == (128, 128)  # the zoom keeps the model's 64x64 budget
    assert read_png_metadata((tmp_path / "vary.png").read_bytes())["prompt"] == "a red fox"


@pytest.mark.parametrize(
    ("argv", "message"),
    [(["x", "--ar", "3x2"], "--ar must look like 3:2"), (["zoom", "missing.png"], "cannot read")],
)
def test_mistakes_are_one_line_errors(
    tiny_model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    assert run(tiny_model_dir, *argv, "--out", str(tmp_path / "x.png")) == 1
    assert message in capsys.readouterr().err


def test_an_unknown_option_is_a_usage_error(tiny_model_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as info:
        run(tiny_model_dir, "a fox", "--ratio", "3:2", "--out", str(tmp_path / "x.png"))
    assert info.value.code == 2


def test_a_missing_model_folder_is_reported(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["a fox", "--model", str(tmp_path / "nowhere"), "--out", str(tmp_path / "x.png")]) == 1
    assert "no such folder" in capsys.readouterr().err


def test_the_worker_subcommand_takes_the_nats_and_model_options() -> None:
    from pipelines.__main__ import build_parser

    args = build_parser().parse_args(["worker", "--nats", "nats://gpu-hub:4222", "--model", "sdxl", "--device", "cuda"])
    assert (args.command, args.nats, args.model, args.device) == ("worker", "nats://gpu-hub:4222", "sdxl", "cuda")
