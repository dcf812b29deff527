from __future__ import annotations

from pathlib import Path

import pytest

from bot.config import DEFAULT_MODEL, ConfigError, Settings


def test_minimal_settings_take_defaults() -> None:
    settings = Settings.from_env({"DISCORD_TOKEN": "abc.def"})
    assert settings.model == DEFAULT_MODEL
    assert settings.data_dir == Path("data")
    assert settings.device == "auto"
    assert settings.operator_ids == frozenset()
    assert settings.queue == "local"


def test_token_is_required_and_named() -> None:
    with pytest.raises(ConfigError, match="DISCORD_TOKEN"):
        Settings.from_env({})


def test_token_never_in_repr() -> None:
    settings = Settings.from_env({"DISCORD_TOKEN": "super-secret-token"})
    assert "super-secret-token" not in repr(settings)


def test_full_settings_parse() -> None:
    settings = Settings.from_env(
        {
            "DISCORD_TOKEN": "t",
            "SONGE_MODEL": "/models/sd",
            "SONGE_DATA_DIR": "/srv/songe",
            "SONGE_OPERATOR_IDS": "1, 2,3",
            "SONGE_GUILD_ID": "42",
            "SONGE_DEVICE": "cuda:1",
            "SONGE_MAX_BATCH": "8",
            "SONGE_FREE_SECONDS": "90.5",
            "SONGE_SKU_PLANS": "111:standard,222:pro",
            "SONGE_QUEUE": "nats",
            "SONGE_RESOLUTION": "64",
            "SONGE_STEPS": "2",
        }
    )
    assert settings.operator_ids == frozenset({1, 2, 3})
    assert settings.guild_id == 42
    assert settings.device == "cuda:1"
    assert settings.max_batch == 8
    assert settings.free_seconds == 90.5
    assert settings.sku_plans == {111: "standard", 222: "pro"}
    assert settings.queue == "nats"
    assert settings.database_path == Path("/srv/songe/songe.sqlite3")
    assert (settings.resolution, settings.steps) == (64, 2)


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("SONGE_OPERATOR_IDS", "12,abc"),
        ("SONGE_GUILD_ID", "server"),
        ("SONGE_DEVICE", "tpu"),
        ("SONGE_DTYPE", "int8"),
        ("SONGE_MAX_BATCH", "0"),
        ("SONGE_FREE_SECONDS", "-1"),
        ("SONGE_SKU_PLANS", "pro"),
        ("SONGE_QUEUE", "redis"),
        ("SONGE_COMPILE", "maybe"),
        ("SONGE_LOG_LEVEL", "LOUD"),
    ],
)
def test_bad_values_name_their_setting(key: str, value: str) -> None:
    with pytest.raises(ConfigError, match=key):
        Settings.from_env({"DISCORD_TOKEN": "t", key: value})
