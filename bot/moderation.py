"""Banned words and phrases, matched through the usual disguises. Pure: no Discord, no I/O but `from_file`.

Both the banned entries and the prompt are folded the same way before matching:
    case and accents        casefold, NFKD, combining marks dropped (also fullwidth and styled letters)
    look-alikes             Cyrillic/Greek homoglyphs -> Latin, leetspeak 0 3 4 5 7 @ $ -> o e a s t a s
                            (`1`, and `!` or `|` inside a word, stand for either `i` or `l`)
    invisible characters    zero-width and other format characters removed
    separators              `n.s.f.w`, `n s f w`, `n-s-f-w`: runs of single letters are joined into a word,
                            and so are the pieces of one space-free chunk (`nu.de` -> `nude`)
    repeated letters        runs are capped at two letters (`nuuude` matches `nude`, `asss` matches `ass`)
An entry matches whole words only (`ass` matches `a$$`, `a s s`, `asses`, never `class` or `assistant`);
the words of a phrase may be run together or split by separators.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

_LOOKALIKES = str.maketrans(
    {
        # Cyrillic
        "а": "a", "б": "b", "в": "b", "г": "r", "д": "d", "е": "e", "ѕ": "s", "і": "i", "ј": "j",
        "к": "k", "м": "m", "н": "h", "о": "o", "п": "n", "р": "p", "с": "c", "т": "t", "у": "y",
        "х": "x", "ц": "u", "ш": "w", "щ": "w", "ь": "b", "ы": "bi", "ԁ": "d", "ԛ": "q", "ԝ": "w",
        "ӏ": "l", "һ": "h", "ү": "y", "ꙇ": "i",
        # Greek
        "α": "a", "β": "b", "γ": "y", "δ": "d", "ε": "e", "ζ": "z", "η": "n", "ι": "i", "κ": "k", "μ": "u",
        "ν": "v", "ο": "o", "ρ": "p", "σ": "o", "τ": "t", "υ": "u", "χ": "x", "ω": "w",
        # Latin look-alikes NFKD leaves alone
        "ı": "i", "ȷ": "j", "ɑ": "a", "ɡ": "g", "ɩ": "i", "ʟ": "l", "ø": "o", "đ": "d", "ł": "l", "ŧ": "t",
        # leetspeak; "1" stays itself and matches both i and l
        "0": "o", "3": "e", "4": "a", "5": "s", "7": "t", "@": "a", "$": "s",
    }
)  # fmt: skip
_CAPITALS = str.maketrans({"Η": "h", "Μ": "m", "Ν": "n", "Υ": "y"})  # Greek capitals unlike their small letters
_WORD = re.compile(r"[^\W_]+")
_INNER_ONE = re.compile(r"(?<=[^\W_])[!|](?=[^\W_])")  # sh!t, but not the "!" ending a sentence
_RUN = re.compile(r"(.)\1{2,}")
_LETTER_CLASS = {"i": "[i1]", "l": "[l1]"}


@dataclass(frozen=True)
class Match:
    """A banned entry found in a prompt: `word` as written in the list, `found` the folded text it matched."""

    word: str
    found: str


class WordFilter:
    """Finds banned words and phrases in prompts; see the module docstring for the disguises it sees through."""

    def __init__(self, words: Iterable[str]) -> None:
        self.words: tuple[str, ...] = tuple(dict.fromkeys(word.strip() for word in words if word.strip()))
        patterns: list[str] = []
        self._entries: list[str] = []
        for word in self.words:
            pattern = _pattern(word)
            if pattern is None:
                log.warning("banned entry %r has no letters once folded; ignored", word)
                continue
            patterns.append(f"({pattern})")
            self._entries.append(word)
        self._words = re.compile(rf"(?<!\S)(?:{'|'.join(patterns)})(?!\S)") if patterns else None
        self._inside = re.compile("|".join(patterns)) if patterns else None

    @classmethod
    def from_file(cls, path: str | Path) -> WordFilter:
        """One entry per line (UTF-8); `#` starts a comment, blank lines are skipped."""
        lines = Path(path).read_text(encoding="utf-8").splitlines()
        return cls(line.partition("#")[0] for line in lines)

    def __len__(self) -> int:
        return len(self._entries)

    def check(self, prompt: str) -> Match | None:
        """The first banned entry in `prompt`, or None."""
        if self._words is None or self._inside is None:
            return None
        views, spelled = _views(prompt)
        for regex, texts in ((self._words, views), (self._inside, spelled)):
            for text in texts:
                found = regex.search(text)
                if found is not None:
                    return Match(self._entries[(found.lastindex or 1) - 1], found[0])  # one group per entry
        return None


def fold(text: str) -> str:
    """Lower-case ASCII-ish letters: accents, look-alikes, leetspeak and invisible characters undone."""
    if text.isascii():  # most prompts: nothing to decompose
        kept = text.lower()
    else:
        decomposed = unicodedata.normalize("NFKD", unicodedata.normalize("NFKD", text).translate(_CAPITALS).casefold())
        kept = "".join(char for char in decomposed if unicodedata.category(char) not in ("Mn", "Me", "Cf"))
    return _INNER_ONE.sub("1", kept).translate(_LOOKALIKES)


def _views(text: str) -> tuple[list[str], list[str]]:
    """The folded text as words joined by single spaces, split at every separator and per space-free chunk;
    and the words spelled out letter by letter (`a n s f w` -> `ansfw`), to be searched inside."""
    chunks = fold(text).split()
    split, spelled = _join_single_letters([word for chunk in chunks for word in _WORD.findall(chunk)])
    joined, spelled_joined = _join_single_letters(["".join(_WORD.findall(chunk)) for chunk in chunks])
    views = [_RUN.sub(r"\1\1", " ".join(words)) for words in (split, joined)]
    return list(dict.fromkeys(views)), [_RUN.sub(r"\1\1", word) for word in {*spelled, *spelled_joined}]


def _join_single_letters(words: list[str]) -> tuple[list[str], list[str]]:
    """Words with runs of one-letter words joined (`n s f w`, `nn ss ff ww` -> `nsfw`), and those runs."""
    out: list[str] = []
    runs: list[str] = []
    in_run = False
    for word in filter(None, words):
        single = word.count(word[0]) == len(word)
        if single and in_run:
            out[-1] += word
            runs[-1] += word
        else:
            out.append(word)
            if single:
                runs.append(word)
        in_run = single
    return out, [run for run in runs if len(set(run)) > 1]


def _pattern(entry: str) -> str | None:
    """The regex of one folded entry: each letter once or twice (doubled letters twice), words run together or
    apart, and an optional plural."""
    words = [_RUN.sub(r"\1\1", word) for word in _join_single_letters(_WORD.findall(fold(entry)))[0]]
    if not words:
        return None
    parts = []
    for word in words:
        letters = [match[0] for match in re.finditer(r"(.)\1?", word)]
        parts.append("".join(_letter(run[0]) + ("{2}" if len(run) == 2 else "{1,2}") for run in letters))
    return " ?".join(parts) + "(?:e?s)?"


def _letter(char: str) -> str:
    return _LETTER_CLASS.get(char, re.escape(char))
