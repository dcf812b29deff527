"""Fuzz the prompt parser and the banned-word filter with random prompts; count outcomes, time them.

    python -m bench.bench_fuzz [--cases 100000] [--seed 1]

Every case goes through `parse_prompt` (with random user options and suffix) and `WordFilter.check`.
Anything but a `PromptError` from the parser, or any exception from the filter, fails the run.
Speeds are also shown against a baseline measured in the same run: splitting the same texts into words.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence

from bot.moderation import WordFilter
from bot.parsing import FLAGS, PromptError, parse_prompt

_FLAGS = [f"--{flag}" for flag in FLAGS] + ["--v", "--niji", "--hd", "--mine", "\u2014ar", "--AR", "--", "—"]
_VALUES = ["16:9", "2:3", "4:1", "5:1", "0:1", "1.5:1", "-1", "0", "7", "42", "150", "1000", "4294967296", ".25", ".5",
           "2", "3", "x", "{a,b}", "１６:９", "99999999999999999999"]  # fmt: skip
_WORDS = ["a", "cat", "castle", "at", "dusk", "{red,", "blue}", "{", "}", "\\{", "\\,", ",", "::2", "::-1", "::",
          "ship::1.5", "{a,{b,c}}", "n.u.d.e", "cl@ss", "a$$", "nüde", "ｎｓｆｗ", "\u200b"]  # fmt: skip
_BANNED = ["ass", "nsfw", "nude", "naked", "gore", "blood bath", "shit", "cunt", "rapist", "cock", "porn", "hentai",
           "beheading", "swastika", "pénis", "nichons", "salope", "putain", "connard", "enculé"]  # fmt: skip


def soup(rng: random.Random) -> str:
    """Prompt words, then flags, with random junk sprinkled in."""
    words = [rng.choice(_WORDS) if rng.random() < 0.8 else junk(rng, 6) for _ in range(rng.randint(0, 10))]
    return " ".join([*words, flags(rng, 6)])


def flags(rng: random.Random, most: int) -> str:
    """Up to `most` flags, each with zero to two values (mostly one), some of them junk."""
    words = []
    for _ in range(rng.randint(0, most)):
        words.append(rng.choice(_FLAGS))
        words.extend(
            rng.choice(_VALUES) if rng.random() < 0.8 else junk(rng, 6) for _ in range(rng.choice((0, 1, 1, 2)))
        )
    return " ".join(words)


def junk(rng: random.Random, size: int) -> str:
    """Random code points from everywhere, surrogates and controls included, biased to ASCII and Latin-1."""
    top = rng.choice((0x7F, 0xFF, 0x2FFF, 0x10FFFF))
    return "".join(chr(rng.randint(0, top)) for _ in range(rng.randint(0, size)))


def cases(count: int, seed: int) -> list[tuple[str, dict[str, str], str]]:
    """(text, options, suffix) triples: three soups for one text of pure junk."""
    rng = random.Random(seed)
    out = []
    for index in range(count):
        text = junk(rng, 400) if index % 4 == 3 else soup(rng)
        options = {"mine": flags(rng, 3)} if index % 5 == 0 else {}
        suffix = flags(rng, 3) if index % 3 == 0 else ""
        out.append((text, options, suffix))
    return out


def timed(run: Callable[[], object]) -> float:
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)

    generated = cases(args.cases, args.seed)
    word_filter = WordFilter(_BANNED)
    outcomes: Counter[str] = Counter()
    matches: Counter[str] = Counter()
    failures: list[tuple[str, BaseException]] = []

    def parse_all() -> None:
        for text, options, suffix in generated:
            try:
                parsed = parse_prompt(text, macros=options, suffix=suffix)
            except PromptError as error:
                outcomes[error.message_key] += 1
            except Exception as error:  # noqa: BLE001 - the point of the run: anything else is a bug, reported below
                failures.append((text, error))
            else:
                outcomes["parsed"] += 1
                outcomes["jobs"] += parsed.job_count - 1  # beyond the first: permutations x repeats

    def filter_all() -> None:
        for text, _, _ in generated:
            try:
                match = word_filter.check(text)
            except Exception as error:  # noqa: BLE001 - as above
                failures.append((text, error))
            else:
                matches[match.word if match else "(none)"] += 1

    baseline = timed(lambda: [text.split() for text, _, _ in generated])
    parse_seconds = timed(parse_all)
    filter_seconds = timed(filter_all)

    total = len(generated)
    print(f"cases: {total}  parsed: {outcomes['parsed']}  refused: {total - outcomes['parsed']}")
    print("refusals by key:")
    for key, count in sorted(outcomes.items(), key=lambda item: -item[1]):
        if key.startswith("parse."):
            print(f"  {key:36} {count:7}")
    print(f"extra jobs from permutations and repeats: {outcomes['jobs']}")
    print(f"word filter: {total - matches['(none)']} blocked; top: {matches.most_common(6)}")
    print(f"baseline (str.split):  {total / baseline:12,.0f} cases/s")
    print(f"parse_prompt:          {total / parse_seconds:12,.0f} cases/s  ({parse_seconds / baseline:.1f}x baseline)")
    print(
        f"WordFilter.check:      {total / filter_seconds:12,.0f} cases/s  ({filter_seconds / baseline:.1f}x baseline)"
    )
    for text, error in failures[:10]:
        print(f"UNEXPECTED {type(error).__name__}: {error!r} for {text!r}", file=sys.stderr)
    assert not failures, f"{len(failures)} cases raised something other than PromptError"
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
