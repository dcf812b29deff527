"""Shared fixtures. Nothing in the test suite may reach the network: the hub is offline from here on."""

from __future__ import annotations

import os

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random-weight Stable Diffusion pipeline saved with save_pretrained (built once per session).

    Tiny models gain nothing from intra-op threads, and OpenMP's spin-waiting makes them several
    times slower on a busy machine, so torch runs on one thread wherever this fixture is used.
    """
    import torch

    from tests.support.tiny_models import build_tiny_sd

    torch.set_num_threads(1)
    return build_tiny_sd(tmp_path_factory.mktemp("tiny-sd"))
