"""Midjourney-style prompts: the text, then `--flags`. Pure: no Discord, no I/O.

    parse_prompt("a castle {at dawn, at dusk}::2 fog --ar 3:2 --no people --seed 7")
    -> prompts=("a castle at dawn::2 fog", "a castle at dusk::2 fog"), aspect=(3, 2), negative="people", seed=7

The first token that starts with `--` (or an em/en dash, as phones write it) followed by a letter ends
the prompt text; everything after it is flags and their values. `{a, b}` permutations (nested, escaped with
`\\{`, `\\}`, `\\,`) expand the text into several prompts; `::` weights split each prompt into weighted parts.
User options (`/prefer option set`) expand in place of `--name`; the `/prefer suffix` adds its flags for
every kind of flag the user did not give. Every problem raises `PromptError`, and nothing else.
"""

from __future__ import annotations

import itertools
import math
import re
import unicodedata
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

MAX_PROMPT_CHARS = 1500
MAX_PERMUTATIONS = 40
MAX_NESTING = 8
MAX_WEIGHT = 1000
MAX_SEED = 2**32 - 1
QUALITIES = (0.25, 0.5, 1.0, 2.0)

# flag name -> the kind of setting it gives; aliases share a kind, and a kind may be given once.
FLAGS: Mapping[str, str] = {
    "ar": "aspect", "aspect": "aspect", "seed": "seed", "no": "no", "steps": "steps",
    "q": "quality", "quality": "quality", "s": "stylize", "stylize": "stylize", "c": "chaos", "chaos": "chaos",
    "stop": "stop", "tile": "tile", "r": "repeat", "repeat": "repeat", "fast": "mode", "relax": "mode", "turbo": "mode",
}  # fmt: skip
_SWITCHES = frozenset({"tile", "mode"})
_VERSION_FLAGS = frozenset({"v", "version", "niji"})
_EXAMPLES = {
    "aspect": "--ar 16:9", "seed": "--seed 1234", "no": "--no text, watermark", "steps": "--steps 30",
    "quality": "--q .5", "stylize": "--s 250", "chaos": "--c 20", "stop": "--stop 80", "repeat": "--r 4",
}  # fmt: skip
_FLAG_TOKEN = re.compile(r"(?:--|[\u2013\u2014])([^\W\d_]\S*)\Z")
_WHOLE = re.compile(r"[0-9]{1,12}\Z")
_DECIMAL = re.compile(r"[0-9]{0,12}\.?[0-9]{1,12}\Z")
_WEIGHT = re.compile(r"(-?(?:[0-9]+(?:\.[0-9]+)?|\.[0-9]+))(?=\s|\Z)")
_OPTION_NAME = re.compile(r"[a-z0-9_-]{1,32}\Z")


class PromptError(Exception):
    """A prompt the bot cannot run: `param` names the culprit, `message_key` + `values` say what is allowed.

    Render it with `bot.i18n.t(err.message_key, locale, **err.values)`; `values` always holds `param`.
    """

    def __init__(self, param: str, message_key: str, **values: object) -> None:
        self.param = param
        self.message_key = message_key
        self.values: dict[str, object] = {"param": param, **values}
        super().__init__(f"{param}: {message_key} {values}")


@dataclass(frozen=True)
class ParseDefaults:
    """What applies when the user does not say (their /settings) and the caller's limits (plan, model)."""

    aspect: tuple[int, int] | None = None
    stylize: int | None = None
    quality: float | None = None
    mode: str | None = None
    max_steps: int = 150
    max_repeat: int = 40
    max_jobs: int = 40
    max_prompt_chars: int = MAX_PROMPT_CHARS


@dataclass(frozen=True)
class ParsedPrompt:
    """A parsed /imagine: one job per entry of `prompts`, each `repeat` times (see `job_count`).

    `weighted[i]` is `prompts[i]` split at its `::` weights (one part of weight 1 when it has none).
    None means "not given": the bot uses its own default (stylize None is Midjourney's 100).
    """

    prompts: tuple[str, ...]
    weighted: tuple[tuple[tuple[str, float], ...], ...]
    negative: str = ""
    aspect: tuple[int, int] | None = None
    seed: int | None = None
    steps: int | None = None
    quality: float | None = None
    stylize: int | None = None
    chaos: int = 0
    stop: int = 100
    tile: bool = False
    repeat: int = 1
    mode: str | None = None
    raw: str = field(default="", compare=False)  # the text as typed, before options and suffix

    @property
    def prompt(self) -> str:
        return self.prompts[0]

    @property
    def job_count(self) -> int:
        return len(self.prompts) * self.repeat


def parse_prompt(
    text: str, *, defaults: ParseDefaults | None = None, macros: Mapping[str, str] | None = None, suffix: str = ""
) -> ParsedPrompt:
    """Parse an /imagine prompt with its `--flags`; raises `PromptError` (and only that) when it cannot run."""
    defaults = defaults or ParseDefaults()
    macros = {name.lower(): value for name, value in (macros or {}).items()}
    if len(text) > defaults.max_prompt_chars:
        raise PromptError("prompt", "parse.error.too_long", length=len(text), max=defaults.max_prompt_chars)
    tokens = text.split()
    start = next((i for i, token in enumerate(tokens) if _flag_name(token) is not None), len(tokens))
    body = " ".join(tokens[:start])
    if not body:
        raise PromptError("prompt", "parse.error.empty")
    given = _settings(_read_flags(tokens[start:], macros=macros), defaults)
    if suffix:
        given = {**_settings(_read_flags(_option_tokens(suffix, "suffix"), macros=macros), defaults), **given}
    prompts = tuple(_permute(body))
    weighted = tuple(split_weights(prompt) for prompt in prompts)
    repeat: int = given.get("repeat", 1)
    if len(prompts) * repeat > defaults.max_jobs:
        raise PromptError(
            "--repeat" if repeat > 1 else "{}", "parse.error.too_many_jobs", prompts=len(prompts), repeat=repeat,
            total=len(prompts) * repeat, max=defaults.max_jobs,
        )  # fmt: skip
    return ParsedPrompt(
        prompts=prompts,
        weighted=weighted,
        negative=str(given.get("no", "")),
        aspect=given.get("aspect", defaults.aspect),
        seed=given.get("seed"),
        steps=given.get("steps"),
        quality=given.get("quality", defaults.quality),
        stylize=given.get("stylize", defaults.stylize),
        chaos=given.get("chaos", 0),
        stop=given.get("stop", 100),
        tile=given.get("tile", False),
        repeat=repeat,
        mode=given.get("mode", defaults.mode),
        raw=text,
    )


def parse_aspect(text: str, *, param: str = "--ar") -> tuple[int, int]:
    """`"16:9"` -> (16, 9) reduced to lowest terms; whole numbers, between 1:4 and 4:1."""
    width, sep, height = unicodedata.normalize("NFKC", text).strip().partition(":")
    width, height = width.strip(), height.strip()
    if sep and _WHOLE.match(width) and _WHOLE.match(height):
        w, h = int(width), int(height)
        if w > 0 and h > 0 and w <= 4 * h and h <= 4 * w:
            divisor = math.gcd(w, h)
            return w // divisor, h // divisor
    raise PromptError(param, "parse.error.aspect", value=_shown(text))


def format_parameters(parsed: ParsedPrompt) -> str:
    """The canonical flags of a parsed prompt (`--ar 3:2 --seed 7 ...`), re-parsable; defaults left out."""
    parts: list[str] = []
    if parsed.aspect is not None:
        parts.append(f"--ar {parsed.aspect[0]}:{parsed.aspect[1]}")
    for flag, value, default in (
        ("--seed", parsed.seed, None), ("--steps", parsed.steps, None), ("--q", parsed.quality, None),
        ("--s", parsed.stylize, None), ("--c", parsed.chaos, 0), ("--stop", parsed.stop, 100),
    ):  # fmt: skip
        if value is not None and value != default:
            parts.append(f"{flag} {value:g}" if isinstance(value, float) else f"{flag} {value}")
    if parsed.tile:
        parts.append("--tile")
    if parsed.negative:
        parts.append(f"--no {parsed.negative}")
    if parsed.mode:
        parts.append(f"--{parsed.mode}")
    return " ".join(parts)


def split_weights(prompt: str) -> tuple[tuple[str, float], ...]:
    """`"space ship::2 planet::-0.5"` -> (("space ship", 2.0), ("planet", -0.5)); the weights must sum above 0."""
    pieces = prompt.split("::")
    if len(pieces) == 1:
        return ((prompt, 1.0),)
    parts: list[tuple[str, Decimal]] = []
    current = pieces[0]
    for piece in pieces[1:]:
        match = _WEIGHT.match(piece)
        weight = Decimal(match[1]) if match else Decimal(1)
        if match and abs(weight) > MAX_WEIGHT:
            raise PromptError("::", "parse.error.weight", value=_shown(match[1]), max=MAX_WEIGHT)
        parts.append((current.strip(), weight))
        current = piece[match.end() :] if match else piece
    parts.append((current.strip(), Decimal(1)))
    parts = [(text, weight) for text, weight in parts if text]
    if not parts:
        raise PromptError("prompt", "parse.error.empty")
    total = sum((weight for _, weight in parts), Decimal(0))
    if total <= 0:
        raise PromptError("::", "parse.error.weights", total=f"{total.normalize():f}")
    return tuple((text, float(weight)) for text, weight in parts)


def check_option_name(name: str, *, param: str = "name") -> str:
    """A /prefer option name: 1-32 of `a-z 0-9 - _`, not a built-in flag. Returns it lower-cased."""
    name = name.strip().removeprefix("--").lower()
    if not _OPTION_NAME.match(name) or name in FLAGS or name in _VERSION_FLAGS:
        raise PromptError(param, "parse.error.option_name", value=_shown(name))
    return name


def check_options(
    text: str, *, param: str = "value", macros: Mapping[str, str] | None = None, defaults: ParseDefaults | None = None
) -> str:
    """Validate a /prefer option value or suffix (flags only); returns it with whitespace normalised."""
    macros = {name.lower(): value for name, value in (macros or {}).items()}
    _settings(_read_flags(_option_tokens(text, param), macros=macros), defaults or ParseDefaults())
    return " ".join(text.split())


# --- flags -------------------------------------------------------------------------------------------------


@dataclass
class _Given:
    param: str  # as the user wrote it, e.g. "--s"
    name: str | None  # the flag, or None for an option the user expanded (it takes no value)
    values: list[str] = field(default_factory=list)


def _flag_name(token: str) -> str | None:
    match = _FLAG_TOKEN.match(token)
    return match[1].lower() if match else None


def _option_tokens(text: str, param: str) -> list[str]:
    tokens = text.split()
    if tokens and _flag_name(tokens[0]) is None:
        raise PromptError(param, "parse.error.options_only", value=_shown(tokens[0]))
    return tokens


def _read_flags(tokens: list[str], *, macros: Mapping[str, str], expand: bool = True) -> list[_Given]:
    given: list[_Given] = []
    for token in tokens:
        name = _flag_name(token)
        if name is None:
            given[-1].values.append(token)
        elif name in FLAGS:
            given.append(_Given(f"--{name}", name))
        elif expand and name in macros:
            given.extend(_read_flags(_option_tokens(macros[name], f"--{name}"), macros=macros, expand=False))
            given.append(_Given(f"--{name}", None))
        elif name in _VERSION_FLAGS:
            raise PromptError(f"--{name}", "parse.error.version")
        else:
            known = ", ".join(f"--{flag}" for flag in (*FLAGS, *(sorted(macros) if expand else ())))
            raise PromptError(_shown(f"--{name}"), "parse.error.unknown_flag", known=known)
    return given


def _settings(given: list[_Given], defaults: ParseDefaults) -> dict[str, Any]:
    """Flags -> {kind: value}; each kind once (`--no` accumulates), every value checked."""
    out: dict[str, Any] = {}
    seen: dict[str, str] = {}
    for flag in given:
        if flag.name is None:
            if flag.values:
                raise PromptError(flag.param, "parse.error.stray_text", value=_shown(" ".join(flag.values)))
            continue
        kind = FLAGS[flag.name]
        if kind in seen and kind != "no":
            key = "parse.error.modes" if kind == "mode" and seen[kind] != flag.param else "parse.error.duplicate"
            raise PromptError(flag.param, key, other=seen[kind])
        seen[kind] = flag.param
        if any(brace in value for value in flag.values for brace in "{}"):
            raise PromptError(flag.param, "parse.error.permutation_flags")
        value = _value(kind, flag, defaults)
        out[kind] = f"{out[kind]}, {value}" if kind == "no" and kind in out else value
    return out


def _value(kind: str, flag: _Given, defaults: ParseDefaults) -> object:
    param, values = flag.param, flag.values
    if kind in _SWITCHES:
        if values:
            raise PromptError(param, "parse.error.stray_text", value=_shown(" ".join(values)))
        return flag.name if kind == "mode" else True
    if not values:
        raise PromptError(param, "parse.error.missing_value", example=_EXAMPLES[kind])
    if kind == "no":
        return " ".join(values)
    if len(values) > 1:
        raise PromptError(param, "parse.error.stray_text", value=_shown(" ".join(values[1:])))
    value = unicodedata.normalize("NFKC", values[0])  # fullwidth digits from Asian keyboards
    if kind == "aspect":
        return parse_aspect(value, param=param)
    if kind == "quality":
        if _DECIMAL.match(value) and float(value) in QUALITIES:
            return float(value)
        raise PromptError(param, "parse.error.quality", value=_shown(value))
    low, high = {
        "seed": (0, MAX_SEED), "steps": (1, min(150, defaults.max_steps)), "stylize": (0, 1000),
        "chaos": (0, 100), "stop": (10, 100), "repeat": (1, min(40, defaults.max_repeat)),
    }[kind]  # fmt: skip
    if _WHOLE.match(value) and low <= int(value) <= high:
        return int(value)
    raise PromptError(param, "parse.error.range", value=_shown(value), min=low, max=high)


def _shown(value: str, limit: int = 40) -> str:
    """A user value safe to quote inside `code` in a Discord message."""
    value = value.replace("`", "'")
    return value if len(value) <= limit else value[: limit - 1] + "…"


# --- permutations ------------------------------------------------------------------------------------------

# A sequence is a list of text pieces and groups; a group is a list of alternative sequences.
_Seq = list["str | _Group"]
_Group = list[_Seq]


def _permute(body: str) -> list[str]:
    """Expand `{a, b}` groups (nested, several) into prompts, at most MAX_PERMUTATIONS."""
    if not any(char in body for char in "{}\\"):
        return [body]
    tree = _parse_groups(body)
    count = _count(tree)
    if count > MAX_PERMUTATIONS:
        raise PromptError("{}", "parse.error.permutations", count=count, max=MAX_PERMUTATIONS)
    prompts = [" ".join(text.split()) for text in _expand(tree)]
    if not all(prompts):
        raise PromptError("prompt", "parse.error.empty")
    return prompts


def _parse_groups(body: str) -> _Seq:
    root: _Seq = []
    stack: list[tuple[_Seq, _Group]] = []  # for each open group: the sequence it sits in, and the group
    current, chars = root, iter(enumerate(body))
    for position, char in chars:
        if char == "\\":
            escaped = next(chars, (position, ""))[1]
            current.append(escaped if escaped in "{},\\" and escaped else "\\" + escaped)
        elif char == "{":
            if len(stack) >= MAX_NESTING:
                raise PromptError("{}", "parse.error.nesting", max=MAX_NESTING)
            group: _Group = [[]]
            current.append(group)
            stack.append((current, group))
            current = group[0]
        elif char == "}":
            if not stack:
                raise PromptError("{}", "parse.error.braces", position=position + 1)
            current = stack.pop()[0]
        elif char == "," and stack:
            current = []
            stack[-1][1].append(current)
        else:
            current.append(char)
    if stack:
        raise PromptError("{}", "parse.error.braces", position=len(body))
    return root


def _count(seq: _Seq) -> int:
    return math.prod(sum(_count(alt) for alt in piece) for piece in seq if not isinstance(piece, str))


def _expand(seq: _Seq) -> Iterator[str]:
    choices = [
        [piece] if isinstance(piece, str) else [x.strip() for alt in piece for x in _expand(alt)] for piece in seq
    ]
    for combination in itertools.product(*choices):
        yield "".join(combination)
