"""Fuzz every command's options at the bot's own level: only typed, readable errors, never a crash.

    python -m bench.bench_fuzz_commands [--cases 100000] [--images 3000] [--seed 1]

Each case goes through the path a command or modal takes with what a user typed or attached:

- /imagine: `parse_prompt` with random user defaults, options and suffix; then what the cog does with a parsed
  prompt: `format_parameters` (which must parse again), `RequestFactory.imagine` for each prompt;
- /prefer option set and suffix: `check_option_name`, `check_options`;
- Custom Zoom and Vary (Region) modals: `parse_zoom`, `parse_region`;
- /admin plan-edit and plan: `parse_plan_value` for each field, `parse_date`;
- attachments: `normalise_image` on random bytes and on real images with bytes flipped, cut or appended.

A refusal must be a `SongeError`, `PromptError` or `BadAttachment` and render in English and French through the
one error map (`bot.errors.describe`); anything else, or a rendering failure, is a crash: listed, and the run fails.
Speed is shown against a baseline measured in the same run: `str.split` on the same texts.
"""

from __future__ import annotations

import argparse
import io
import random
import sys
import time
import warnings
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from PIL import Image

from bench.bench_fuzz import flags, junk, soup
from bot.attachments import BadAttachment, normalise_image
from bot.cogs.admin import PLAN_FIELDS, parse_date, parse_plan_value
from bot.errors import SongeError, describe
from bot.job_types import new_job_id
from bot.parsing import ParseDefaults, PromptError, check_option_name, check_options, format_parameters, parse_prompt
from bot.requests import ModelProfile, RequestFactory
from bot.views.modals import parse_region, parse_zoom

TYPED = (SongeError, PromptError, BadAttachment)
LOCALES = ("en-US", "fr")
NUMBERS = ["0", "1", "1.5", "2", "2.0", "1,7", "-1", "1e3", "nan", "inf", "-inf", "1e-400", "0x10", "１．５", "½",
           "25", "75", "100%", "25%", "99.99", "1_000", "  3 ", "", "٣", "⑤"]  # fmt: skip
SEPARATORS = [",", ";", " ", ", ", "%,", "\t", "\n", "/"]
FACTORY = RequestFactory(ModelProfile(model="fuzz", base_resolution=512, steps=4, max_steps=50))


@dataclass
class Tally:
    """Cases run and outcomes, per target; crashes keep the input that caused them."""

    cases: Counter[str] = field(default_factory=Counter)
    outcomes: Counter[str] = field(default_factory=Counter)
    crashes: list[tuple[str, tuple[object, ...], BaseException]] = field(default_factory=list)

    def run(self, target: str, call: Callable[..., object], *data: object) -> None:
        """`call(*data)`: an accepted case, a typed refusal, or a crash."""
        self.cases[target] += 1
        try:
            call(*data)
        except TYPED as error:
            self._refused(target, error, data)
        except Exception as error:  # noqa: BLE001 - the point of the run: anything untyped is a bug, reported
            self.crashes.append((target, data, error))
        else:
            self.outcomes[f"{target}: accepted"] += 1

    def _refused(self, target: str, error: Exception, data: tuple[object, ...]) -> None:
        key = getattr(error, "message_key", None) or getattr(error, "key", "")
        try:
            texts = [describe(error, locale) for locale in LOCALES]
        except Exception as failure:  # noqa: BLE001 - a refusal that cannot be shown is a crash too
            self.crashes.append((f"{target} (rendering)", data, failure))
            return
        if not all(texts):
            missing = ValueError(f"no text for {type(error).__name__}")
            self.crashes.append((f"{target} (rendering)", data, missing))
            return
        self.outcomes[f"{target}: {type(error).__name__} {key}"] += 1


def defaults(rng: random.Random) -> ParseDefaults:
    """What /settings and the plan could set: aspect, stylize, quality, mode and the limits."""
    return ParseDefaults(
        aspect=rng.choice([None, (1, 1), (16, 9), (2, 3)]),
        stylize=rng.choice([None, 0, 100, 750, 1000]),
        quality=rng.choice([None, 0.25, 0.5, 1.0, 2.0]),
        mode=rng.choice([None, "fast", "relax", "turbo"]),
        max_steps=rng.choice([4, 50, 150]),
        max_jobs=rng.choice([1, 4, 40]),
    )


def imagine(text: str, options: dict[str, str], suffix: str, parse_defaults: ParseDefaults) -> None:
    """What /imagine does with a prompt before anything is reserved."""
    parsed = parse_prompt(text, defaults=parse_defaults, macros=options, suffix=suffix)
    again = parse_prompt(f"x {format_parameters(parsed)}")
    if format_parameters(again) != format_parameters(parsed):
        raise AssertionError(f"format_parameters does not round-trip: {format_parameters(parsed)!r}")
    for prompt in parsed.prompts:
        FACTORY.imagine(parsed, job_id=new_job_id(), user_id=1, prompt=prompt)


def prefer_option(name: str, value: str) -> None:
    """The parser's checks of a /prefer option: its name, then its value (flags only)."""
    check_option_name(name)
    check_options(value)


def number_text(rng: random.Random) -> str:
    return rng.choice(NUMBERS) if rng.random() < 0.7 else junk(rng, 8)


def region_text(rng: random.Random) -> str:
    """Mostly four percentages in any order (some of them a valid box), else junk among them."""
    parts = [str(rng.choice([rng.randint(0, 100), round(rng.uniform(-5, 105), 2)])) if rng.random() < 0.8
             else number_text(rng) for _ in range(rng.choice((3, 4, 4, 4, 4, 5)))]  # fmt: skip
    return rng.choice(SEPARATORS).join(parts)


def date_text(rng: random.Random) -> str:
    if rng.random() < 0.6:
        return f"{rng.randint(0, 10_000):04}-{rng.randint(0, 13):02}-{rng.randint(0, 32):02}"
    return junk(rng, 12)


def sample_images() -> list[bytes]:
    """Small real images in every format Pillow writes here, to mutate."""
    picture = Image.new("RGB", (48, 32), "orange")
    out = []
    for fmt, mode in (("PNG", "RGB"), ("JPEG", "RGB"), ("GIF", "P"), ("WEBP", "RGB"), ("BMP", "RGB"),
                      ("TIFF", "RGB"), ("PNG", "RGBA"), ("PNG", "I;16")):  # fmt: skip
        buffer = io.BytesIO()
        picture.convert(mode).save(buffer, format=fmt)
        out.append(buffer.getvalue())
    return out


def mutate(rng: random.Random, data: bytes) -> bytes:
    """Flip, cut, repeat or append bytes of a real image, or make up bytes from nothing."""
    kind = rng.randrange(5)
    if kind == 0:
        return rng.randbytes(rng.randint(0, 2048))
    if kind == 1:
        return data[: rng.randint(0, len(data))]
    if kind == 2:
        return data + rng.randbytes(rng.randint(1, 64))
    if kind == 3:
        start = rng.randrange(len(data))
        return data[:start] + data[start:] * 2
    flipped = bytearray(data)
    for _ in range(rng.randint(1, 8)):
        flipped[rng.randrange(len(flipped))] = rng.randrange(256)
    return bytes(flipped)


def fuzz(cases: int, images: int, seed: int) -> Tally:
    rng = random.Random(seed)
    tally = Tally()
    text_cases = cases - images
    share = text_cases // 8
    for index in range(share * 4):
        text = junk(rng, 400) if index % 4 == 3 else soup(rng)
        options = {rng.choice(["mine", "x", "AR", "s"]): flags(rng, 3)} if index % 5 == 0 else {}
        suffix = flags(rng, 3) if index % 3 == 0 else ""
        tally.run("/imagine prompt", imagine, text, options, suffix, defaults(rng))
    for _ in range(share):
        name = rng.choice(["mine", "--mine", "ar", "v", "niji", "a" * 33, "x-y_z", ""]) if rng.random() < 0.5 \
            else junk(rng, 40)  # fmt: skip
        tally.run("/prefer option", prefer_option, name, flags(rng, 4))
    for _ in range(share):
        tally.run("Custom Zoom", parse_zoom, number_text(rng))
    for _ in range(share):
        tally.run("Vary (Region)", parse_region, region_text(rng))
    for index in range(text_cases - 7 * share):
        if index % 2:
            tally.run("/admin plan until", parse_date, date_text(rng))
        else:
            words = ["yes", "no", "oui", "non", "monthly", "none", "15h", "0.4h", "true", "1h5"]
            text = number_text(rng) if rng.random() < 0.7 else rng.choice(words)
            tally.run("/admin plan-edit", parse_plan_value, rng.choice(PLAN_FIELDS), text)
    samples = sample_images()
    warnings.filterwarnings("ignore", category=UserWarning, module="PIL")  # Pillow's notes on broken files
    for _ in range(images):
        tally.run("attachment", normalise_image, mutate(rng, rng.choice(samples)))
    return tally


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=100_000)
    parser.add_argument("--images", type=int, default=3_000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)

    texts = [soup(random.Random(args.seed + n)) for n in range(2_000)]
    started = time.perf_counter()
    for text in texts:
        text.split()
    baseline = (time.perf_counter() - started) / len(texts)
    started = time.perf_counter()
    tally = fuzz(args.cases, args.images, args.seed)
    elapsed = time.perf_counter() - started

    total = sum(tally.cases.values())
    print(
        f"cases: {total:,} in {elapsed:.1f} s ({elapsed / total * 1e6:.0f} us a case, "
        f"x{elapsed / total / baseline:.0f} str.split); crashes: {len(tally.crashes)}"
    )
    for target, count in tally.cases.items():
        print(f"  {target:22} {count:7,} cases")
        for outcome, seen in sorted(tally.outcomes.items(), key=lambda item: -item[1]):
            if outcome.startswith(f"{target}:"):
                print(f"      {outcome[len(target) + 2 :]:58} {seen:7,}")
    for target, data, error in tally.crashes[:15]:
        print(f"CRASH in {target}: {type(error).__name__}: {error} <- {data!r:.300}", file=sys.stderr)
    assert total >= 100_000 or args.cases < 100_000, f"only {total} cases"
    assert not tally.crashes, f"{len(tally.crashes)} cases raised something other than a typed, readable error"
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
