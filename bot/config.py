"""Settings: the only reader of the environment.

`Settings.from_env(os.environ)` validates every key and raises `ConfigError` with a one-line
message naming the setting. `.env` is merged under the real environment by `load_environment`.
The token never appears in `repr`.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_MODEL = "stabilityai/sd-turbo"


class ConfigError(Exception):
    """A setting is missing or malformed; the message names it."""


def load_environment(env_file: Path | None = None) -> dict[str, str]:
    """The process environment with `.env` values underneath (real variables win)."""
    from dotenv import dotenv_values

    merged = {k: v for k, v in dotenv_values(env_file or Path(".env")).items() if v is not None}
    merged.update(os.environ)
    return merged


def _int(env: Mapping[str, str], key: str, default: int, *, minimum: int = 0) -> int:
    raw = env.get(key, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{key} must be a whole number, got {raw!r}") from None
    if value < minimum:
        raise ConfigError(f"{key} must be at least {minimum}, got {value}")
    return value


def _float(env: Mapping[str, str], key: str, default: float) -> float:
    raw = env.get(key, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{key} must be a number, got {raw!r}") from None
    if value < 0:
        raise ConfigError(f"{key} must not be negative, got {value}")
    return value


def _ids(env: Mapping[str, str], key: str) -> frozenset[int]:
    raw = env.get(key, "")
    try:
        return frozenset(int(part) for part in raw.replace(" ", "").split(",") if part)
    except ValueError:
        raise ConfigError(f"{key} must be comma-separated Discord ids, got {raw!r}") from None


def _optional_id(env: Mapping[str, str], key: str) -> int | None:
    raw = env.get(key, "").strip()
    if not raw:
        return None
    if not raw.isdigit():
        raise ConfigError(f"{key} must be a Discord id (digits), got {raw!r}")
    return int(raw)


def _bool(env: Mapping[str, str], key: str, default: bool) -> bool:
    raw = env.get(key, "").strip().lower()
    if not raw:
        return default
    if raw in {"1", "true", "yes", "on"}:
        return True
    if raw in {"0", "false", "no", "off"}:
        return False
    raise ConfigError(f"{key} must be true or false, got {raw!r}")


def _optional_path(env: Mapping[str, str], key: str) -> Path | None:
    raw = env.get(key, "").strip()
    return Path(raw).expanduser() if raw else None


def _sku_plans(env: Mapping[str, str], key: str) -> dict[int, str]:
    mapping: dict[int, str] = {}
    for part in env.get(key, "").replace(" ", "").split(","):
        if not part:
            continue
        sku, sep, plan = part.partition(":")
        if not sep or not sku.isdigit() or not plan:
            raise ConfigError(f"{key} must look like 'SKU_ID:plan,SKU_ID:plan', got {part!r}")
        mapping[int(sku)] = plan
    return mapping


@dataclass(frozen=True)
class Settings:
    """Every setting of the bot; see `.env.example` for their meaning."""

    token: str = field(repr=False)
    model: str = DEFAULT_MODEL
    data_dir: Path = Path("data")
    operator_ids: frozenset[int] = frozenset()
    guild_id: int | None = None
    device: str = "auto"
    dtype: str = "auto"
    compile: bool = False
    upscaler: Path | None = None
    ip_adapter: str | None = None
    taesd: str | None = None
    max_batch: int = 4
    resolution: int | None = None
    steps: int | None = None
    guidance: float | None = None
    free_seconds: float = 1440.0
    free_daily_topup_seconds: float = 0.0
    free_cooldown_seconds: float = 0.0
    min_account_age_days: int = 0
    banned_words: Path | None = None
    appeal_channel_id: int | None = None
    upgrade_url: str = ""
    sku_plans: dict[int, str] = field(default_factory=dict)
    job_deadline_minutes: int = 60
    queue: str = "local"
    nats_url: str = "nats://127.0.0.1:4222"
    nats_creds: Path | None = None
    log_level: str = "INFO"

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        token = env.get("DISCORD_TOKEN", "").strip()
        if not token:
            raise ConfigError("DISCORD_TOKEN is not set: put your bot's token in .env (see .env.example)")
        queue = env.get("SONGE_QUEUE", "local").strip().lower() or "local"
        if queue not in {"local", "nats"}:
            raise ConfigError(f"SONGE_QUEUE must be 'local' or 'nats', got {queue!r}")
        device = env.get("SONGE_DEVICE", "auto").strip().lower() or "auto"
        if device not in {"auto", "cpu", "mps"} and not (device == "cuda" or device.startswith("cuda:")):
            raise ConfigError(f"SONGE_DEVICE must be auto, cuda, cuda:N, mps or cpu, got {device!r}")
        dtype = env.get("SONGE_DTYPE", "auto").strip().lower() or "auto"
        if dtype not in {"auto", "float32", "float16", "bfloat16"}:
            raise ConfigError(f"SONGE_DTYPE must be auto, float32, float16 or bfloat16, got {dtype!r}")
        level = env.get("SONGE_LOG_LEVEL", "INFO").strip().upper() or "INFO"
        if level not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
            raise ConfigError(f"SONGE_LOG_LEVEL must be DEBUG, INFO, WARNING or ERROR, got {level!r}")
        return cls(
            token=token,
            model=env.get("SONGE_MODEL", "").strip() or DEFAULT_MODEL,
            data_dir=Path(env.get("SONGE_DATA_DIR", "").strip() or "data").expanduser(),
            operator_ids=_ids(env, "SONGE_OPERATOR_IDS"),
            guild_id=_optional_id(env, "SONGE_GUILD_ID"),
            device=device,
            dtype=dtype,
            compile=_bool(env, "SONGE_COMPILE", False),
            upscaler=_optional_path(env, "SONGE_UPSCALER"),
            ip_adapter=env.get("SONGE_IP_ADAPTER", "").strip() or None,
            taesd=env.get("SONGE_TAESD", "").strip() or None,
            max_batch=_int(env, "SONGE_MAX_BATCH", 4, minimum=1),
            resolution=_int(env, "SONGE_RESOLUTION", 0, minimum=0) or None,
            steps=_int(env, "SONGE_STEPS", 0, minimum=0) or None,
            guidance=_float(env, "SONGE_GUIDANCE", -1.0) if env.get("SONGE_GUIDANCE", "").strip() else None,
            free_seconds=_float(env, "SONGE_FREE_SECONDS", 1440.0),
            free_daily_topup_seconds=_float(env, "SONGE_FREE_DAILY_SECONDS", 0.0),
            free_cooldown_seconds=_float(env, "SONGE_FREE_COOLDOWN_SECONDS", 0.0),
            min_account_age_days=_int(env, "SONGE_MIN_ACCOUNT_AGE_DAYS", 0),
            banned_words=_optional_path(env, "SONGE_BANNED_WORDS"),
            appeal_channel_id=_optional_id(env, "SONGE_APPEAL_CHANNEL_ID"),
            upgrade_url=env.get("SONGE_UPGRADE_URL", "").strip(),
            sku_plans=_sku_plans(env, "SONGE_SKU_PLANS"),
            job_deadline_minutes=_int(env, "SONGE_JOB_DEADLINE_MINUTES", 60, minimum=1),
            queue=queue,
            nats_url=env.get("SONGE_NATS_URL", "").strip() or "nats://127.0.0.1:4222",
            nats_creds=_optional_path(env, "SONGE_NATS_CREDS"),
            log_level=level,
        )

    def replace(self, **changes: object) -> Settings:
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]

    @property
    def database_path(self) -> Path:
        return self.data_dir / "songe.sqlite3"

    @property
    def images_dir(self) -> Path:
        return self.data_dir / "images"
