"""bot.parsing: every flag form, every kind of bad value, permutations, weights, options, suffix; fuzzed."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.i18n import catalogue, placeholders, t
from bot.parsing import (
    FLAGS,
    MAX_PERMUTATIONS,
    ParseDefaults,
    ParsedPrompt,
    PromptError,
    check_option_name,
    check_options,
    format_parameters,
    parse_aspect,
    parse_prompt,
    split_weights,
)

VALID = [
    ("a cat", {}),
    ("a cat --ar 16:9", {"aspect": (16, 9)}),
    ("a cat --aspect 2:3", {"aspect": (2, 3)}),
    ("a cat --ar 32:18", {"aspect": (16, 9)}),
    ("a cat --ar 4:1", {"aspect": (4, 1)}),
    ("a cat --ar 1:4", {"aspect": (1, 4)}),
    ("a cat --ar １６:９", {"aspect": (16, 9)}),
    ("a cat --seed 0", {"seed": 0}),
    ("a cat --seed 4294967295", {"seed": 4294967295}),
    ("a cat --no dogs", {"negative": "dogs"}),
    ("a cat --no red dogs, birds", {"negative": "red dogs, birds"}),
    ("a cat --no dogs --no birds", {"negative": "dogs, birds"}),
    ("a cat --steps 1", {"steps": 1}),
    ("a cat --steps 150", {"steps": 150}),
    ("a cat --q .25", {"quality": 0.25}),
    ("a cat --q 0.5", {"quality": 0.5}),
    ("a cat --quality 1", {"quality": 1.0}),
    ("a cat --q 2", {"quality": 2.0}),
    ("a cat --stylize 0", {"stylize": 0}),
    ("a cat --s 1000", {"stylize": 1000}),
    ("a cat --chaos 100", {"chaos": 100}),
    ("a cat --c 0", {"chaos": 0}),
    ("a cat --stop 10", {"stop": 10}),
    ("a cat --stop 100", {"stop": 100}),
    ("a cat --tile", {"tile": True}),
    ("a cat --repeat 40", {"repeat": 40}),
    ("a cat --r 2", {"repeat": 2}),
    ("a cat --fast", {"mode": "fast"}),
    ("a cat --relax", {"mode": "relax"}),
    ("a cat --turbo", {"mode": "turbo"}),
    ("a cat --TURBO", {"mode": "turbo"}),
    ("a cat \u2014ar 3:2 \u2013seed 5", {"aspect": (3, 2), "seed": 5}),
    ("  a   cat\n--tile  ", {"prompts": ("a cat",), "tile": True}),
    ("a cat -- on a mat --tile", {"prompts": ("a cat -- on a mat",), "tile": True}),
    ("a cat ---tile", {"prompts": ("a cat ---tile",)}),
    ("a cat --ar 3:2 --seed 7 --no text --steps 20 --q .5 --s 250 --c 5 --stop 80 --tile --r 3 --relax",
     {"aspect": (3, 2), "seed": 7, "negative": "text", "steps": 20, "quality": 0.5, "stylize": 250, "chaos": 5,
      "stop": 80, "tile": True, "repeat": 3, "mode": "relax"}),
]  # fmt: skip


@pytest.mark.parametrize(("text", "expected"), VALID)
def test_valid_forms(text: str, expected: dict[str, object]) -> None:
    parsed = parse_prompt(text)
    defaults = {"prompts": ("a cat",), "negative": "", "aspect": None, "seed": None, "steps": None, "quality": None,
                "stylize": None, "chaos": 0, "stop": 100, "tile": False, "repeat": 1, "mode": None}  # fmt: skip
    assert {name: getattr(parsed, name) for name in defaults} == {**defaults, **expected}
    assert parsed.raw == text


INVALID = [
    ("", "prompt", "parse.error.empty"),
    ("   ", "prompt", "parse.error.empty"),
    ("--ar 16:9", "prompt", "parse.error.empty"),
    ("x" * 1501, "prompt", "parse.error.too_long"),
    ("cat --ar", "--ar", "parse.error.missing_value"),
    ("cat --ar 5:1", "--ar", "parse.error.aspect"),
    ("cat --ar 1:5", "--ar", "parse.error.aspect"),
    ("cat --ar 0:1", "--ar", "parse.error.aspect"),
    ("cat --ar 1.5:1", "--ar", "parse.error.aspect"),
    ("cat --ar 16x9", "--ar", "parse.error.aspect"),
    ("cat --aspect -1:1", "--aspect", "parse.error.aspect"),
    ("cat --seed -1", "--seed", "parse.error.range"),
    ("cat --seed 4294967296", "--seed", "parse.error.range"),
    ("cat --seed abc", "--seed", "parse.error.range"),
    ("cat --seed 99999999999999999999999", "--seed", "parse.error.range"),
    ("cat --seed", "--seed", "parse.error.missing_value"),
    ("cat --seed 1 2", "--seed", "parse.error.stray_text"),
    ("cat --seed 1 and a dog", "--seed", "parse.error.stray_text"),
    ("cat --no", "--no", "parse.error.missing_value"),
    ("cat --steps 0", "--steps", "parse.error.range"),
    ("cat --steps 151", "--steps", "parse.error.range"),
    ("cat --q 3", "--q", "parse.error.quality"),
    ("cat --quality 0.3", "--quality", "parse.error.quality"),
    ("cat --q nan", "--q", "parse.error.quality"),
    ("cat --q 1e0", "--q", "parse.error.quality"),
    ("cat --s 1001", "--s", "parse.error.range"),
    ("cat --stylize 2.5", "--stylize", "parse.error.range"),
    ("cat --c 101", "--c", "parse.error.range"),
    ("cat --chaos -5", "--chaos", "parse.error.range"),
    ("cat --stop 9", "--stop", "parse.error.range"),
    ("cat --stop 101", "--stop", "parse.error.range"),
    ("cat --tile yes", "--tile", "parse.error.stray_text"),
    ("cat --r 0", "--r", "parse.error.range"),
    ("cat --repeat 41", "--repeat", "parse.error.range"),
    ("cat --fast --relax", "--relax", "parse.error.modes"),
    ("cat --turbo --turbo", "--turbo", "parse.error.duplicate"),
    ("cat --relax now", "--relax", "parse.error.stray_text"),
    ("cat --ar 1:1 --aspect 2:3", "--aspect", "parse.error.duplicate"),
    ("cat --s 10 --stylize 20", "--stylize", "parse.error.duplicate"),
    ("cat --v 6", "--v", "parse.error.version"),
    ("cat --niji 6", "--niji", "parse.error.version"),
    ("cat --hd", "--hd", "parse.error.unknown_flag"),
    ("cat --ar=16:9", "--ar=16:9", "parse.error.unknown_flag"),
    ("cat --no {red, blue}", "--no", "parse.error.permutation_flags"),
    ("{a, b", "{}", "parse.error.braces"),
    ("a, b}", "{}", "parse.error.braces"),
    ("{a,b}{c,d}{e,f}{g,h}{i,j}{k,l}", "{}", "parse.error.permutations"),
    ("{" * 9 + "a" + "}" * 9, "{}", "parse.error.nesting"),
    ("{, } --tile", "prompt", "parse.error.empty"),
    ("{a,b,c,d,e} --r 9", "--repeat", "parse.error.too_many_jobs"),
    ("planet::-1", "::", "parse.error.weights"),
    ("a::1 b::-1", "::", "parse.error.weights"),
    ("a::0.1 b::0.2 c::-0.3", "::", "parse.error.weights"),
    ("a::1001", "::", "parse.error.weight"),
    ("::2", "prompt", "parse.error.empty"),
]


@pytest.mark.parametrize(("text", "param", "key"), INVALID)
def test_invalid_values_name_the_parameter(text: str, param: str, key: str) -> None:
    with pytest.raises(PromptError) as caught:
        parse_prompt(text)
    assert (caught.value.param, caught.value.message_key) == (param, key)
    _assert_renders(caught.value)


def test_unknown_flag_lists_known_flags_and_options() -> None:
    with pytest.raises(PromptError) as caught:
        parse_prompt("cat --sty 200", macros={"mine": "--s 50"})
    known = str(caught.value.values["known"])
    assert all(f"--{flag}" in known for flag in FLAGS) and "--mine" in known


def test_user_values_are_quoted_safely() -> None:
    with pytest.raises(PromptError) as caught:
        parse_prompt("cat --seed `" + "9" * 100)
    shown = str(caught.value.values["value"])
    assert "`" not in shown and len(shown) <= 40


def test_limits_from_defaults() -> None:
    limits = ParseDefaults(max_steps=50, max_repeat=4, max_jobs=6, max_prompt_chars=20)
    for text, param, high in (("cat --steps 51", "--steps", 50), ("cat --r 5", "--r", 4)):
        with pytest.raises(PromptError) as caught:
            parse_prompt(text, defaults=limits)
        assert (caught.value.param, caught.value.values["max"]) == (param, high)
    assert parse_prompt("cat --steps 50 --r 4", defaults=limits).job_count == 4
    with pytest.raises(PromptError, match="too_many_jobs"):
        parse_prompt("{a, b} --r 4", defaults=limits)
    with pytest.raises(PromptError, match="too_long"):
        parse_prompt("a" * 21, defaults=limits)


def test_defaults_apply_only_when_not_given() -> None:
    defaults = ParseDefaults(aspect=(3, 2), stylize=250, quality=0.5, mode="relax")
    implicit = parse_prompt("cat", defaults=defaults)
    assert (implicit.aspect, implicit.stylize, implicit.quality, implicit.mode) == ((3, 2), 250, 0.5, "relax")
    explicit = parse_prompt("cat --ar 1:1 --s 0 --q 2 --fast", defaults=defaults)
    assert (explicit.aspect, explicit.stylize, explicit.quality, explicit.mode) == ((1, 1), 0, 2.0, "fast")


PERMUTATIONS = [
    ("a {red, blue} bird", ("a red bird", "a blue bird")),
    ("{red, blue} {cat, dog}", ("red cat", "red dog", "blue cat", "blue dog")),
    ("a {big {red, blue}, small} car", ("a big red car", "a big blue car", "a small car")),
    ("a {,very} big car", ("a big car", "a very big car")),
    (r"a \{literal\} brace", ("a {literal} brace",)),
    (r"{one\, two, three}", ("one, two", "three")),
    (r"a \\ b", (r"a \ b",)),
    (r"a \n b", (r"a \n b",)),
    ("a {b}", ("a b",)),
    ("x::2 {y, z}", ("x::2 y", "x::2 z")),
]


@pytest.mark.parametrize(("text", "prompts"), PERMUTATIONS)
def test_permutations(text: str, prompts: tuple[str, ...]) -> None:
    parsed = parse_prompt(text + " --r 2")
    assert parsed.prompts == prompts
    assert len(parsed.weighted) == len(prompts) and parsed.job_count == 2 * len(prompts)


def test_permutations_up_to_the_cap() -> None:
    groups = "{a,b,c,d,e,f,g,h} {1,2,3,4,5}"
    assert len(parse_prompt(groups).prompts) == MAX_PERMUTATIONS
    with pytest.raises(PromptError) as caught:
        parse_prompt(groups + " {x,y}")
    assert caught.value.values["count"] == 2 * MAX_PERMUTATIONS


WEIGHTS = [
    ("space ship", (("space ship", 1.0),)),
    ("space ship::2 planet::-0.5", (("space ship", 2.0), ("planet", -0.5))),
    ("hot:: dog", (("hot", 1.0), ("dog", 1.0))),
    ("hot::dog", (("hot", 1.0), ("dog", 1.0))),
    ("cat::.5", (("cat", 0.5),)),
    ("cat::2d render", (("cat", 1.0), ("2d render", 1.0))),
    ("a::3 b::-2", (("a", 3.0), ("b", -2.0))),
    ("a::0 b", (("a", 0.0), ("b", 1.0))),
    ("::3 a", (("a", 1.0),)),
    ("time 12:30", (("time 12:30", 1.0),)),
]


@pytest.mark.parametrize(("prompt", "parts"), WEIGHTS)
def test_weights(prompt: str, parts: tuple[tuple[str, float], ...]) -> None:
    assert split_weights(prompt) == parts
    assert parse_prompt(prompt + " --tile").weighted == (parts,)


def test_macros_expand_in_place_of_their_flag() -> None:
    macros = {"Cinema": "--ar 21:9 --s 400", "grim": "--no colour --c 30"}
    parsed = parse_prompt("a street --cinema --grim --no people --seed 1", macros=macros)
    assert (parsed.aspect, parsed.stylize, parsed.chaos, parsed.seed) == ((7, 3), 400, 30, 1)
    assert parsed.negative == "colour, people"


@pytest.mark.parametrize(
    ("text", "macros", "param", "key"),
    [
        ("x --cinema 5", {"cinema": "--s 1"}, "--cinema", "parse.error.stray_text"),
        ("x --cinema --s 2", {"cinema": "--s 1"}, "--s", "parse.error.duplicate"),
        ("x --cinema", {"cinema": "--s 5000"}, "--s", "parse.error.range"),
        ("x --cinema", {"cinema": "moody --s 1"}, "--cinema", "parse.error.options_only"),
        ("x --a", {"a": "--b", "b": "--a"}, "--b", "parse.error.unknown_flag"),
    ],
)
def test_bad_macros(text: str, macros: dict[str, str], param: str, key: str) -> None:
    with pytest.raises(PromptError) as caught:
        parse_prompt(text, macros=macros)
    assert (caught.value.param, caught.value.message_key) == (param, key)


def test_builtin_flags_win_over_macros_of_the_same_name() -> None:
    assert parse_prompt("x --ar 1:2", macros={"ar": "--ar 2:1"}).aspect == (1, 2)


def test_suffix_fills_in_and_user_flags_override_it_by_kind() -> None:
    suffix = "--ar 16:9 --stylize 250 --relax --no text --cinema"
    macros = {"cinema": "--c 10"}
    plain = parse_prompt("a cat", suffix=suffix, macros=macros)
    assert (plain.aspect, plain.stylize, plain.mode, plain.negative, plain.chaos) == ((16, 9), 250, "relax", "text", 10)
    mine = parse_prompt("a cat --aspect 1:1 --s 5 --turbo --no dogs --c 0", suffix=suffix, macros=macros)
    assert (mine.aspect, mine.stylize, mine.mode, mine.negative, mine.chaos) == ((1, 1), 5, "turbo", "dogs", 0)


@pytest.mark.parametrize(
    ("suffix", "param", "key"),
    [("cinematic --ar 2:3", "suffix", "parse.error.options_only"), ("--ar 9:1", "--ar", "parse.error.aspect")],
)
def test_bad_suffix(suffix: str, param: str, key: str) -> None:
    with pytest.raises(PromptError) as caught:
        parse_prompt("a cat", suffix=suffix)
    assert (caught.value.param, caught.value.message_key) == (param, key)


def test_option_checks_for_prefer() -> None:
    assert check_option_name("--Cinema") == "cinema"
    assert check_options("  --ar 21:9   --s 400 ") == "--ar 21:9 --s 400"
    for name in ("ar", "s", "v", "has space", "", "x" * 33, "émoji"):
        with pytest.raises(PromptError, match="option_name"):
            check_option_name(name)
    for value, key in (("cinematic", "options_only"), ("--ar 7:1", "aspect"), ("--mine", "unknown_flag")):
        with pytest.raises(PromptError, match=key):
            check_options(value)


@pytest.mark.parametrize(
    ("text", "ratio"), [("16:9", (16, 9)), (" 4 : 6 ", (2, 3)), ("1:1", (1, 1)), ("100:25", (4, 1))]
)
def test_parse_aspect(text: str, ratio: tuple[int, int]) -> None:
    assert parse_aspect(text) == ratio


def test_parse_aspect_names_the_callers_parameter() -> None:
    with pytest.raises(PromptError) as caught:
        parse_aspect("wide", param="aspect")
    assert caught.value.param == "aspect"


def test_format_parameters_is_canonical() -> None:
    parsed = parse_prompt("x --turbo --no a, b --tile --c 5 --s 100 --q .25 --steps 9 --seed 7 --aspect 4:6 --stop 80")
    canonical = "--ar 2:3 --seed 7 --steps 9 --q 0.25 --s 100 --c 5 --stop 80 --tile --no a, b --turbo"
    assert format_parameters(parsed) == canonical
    assert format_parameters(parse_prompt("x --r 3")) == ""


# --- fuzz ---------------------------------------------------------------------------------------------------

_FLAG_WORDS = [f"--{flag}" for flag in FLAGS] + ["--v", "--niji", "--foo", "--mine", "--grim", "\u2014ar", "--AR", "--"]
_VALUES = ["16:9", "1:0", "0:0", "5:1", "3:2", "-1", "0", "1", "42", "150", "1000", "4294967296", ".25", "2", "x"]
_WORDS = ["cat", "a", "{red,", "blue}", "{", "}", "\\{", "\\", ",", "::2", "::-1", "::", "dog::0.5", "{a,{b,c}}"]
_token = st.one_of(
    st.sampled_from(_FLAG_WORDS + _VALUES + _WORDS), st.integers(-5, 2**33).map(str), st.text(max_size=5)
)
_value = st.one_of(st.sampled_from(_VALUES), st.integers(-5, 2**33).map(str), _token)
_flag = st.builds(
    lambda flag, values: " ".join([flag, *values]),
    st.sampled_from(_FLAG_WORDS),
    st.one_of(st.lists(_value, min_size=1, max_size=1), st.lists(_value, max_size=3)),
)
_soup = st.builds(  # prompt words, then flags with values, with stray tokens anywhere
    lambda words, flags: " ".join(words + flags),
    st.lists(st.one_of(st.sampled_from(_WORDS), _token), min_size=1, max_size=8),
    st.lists(st.one_of(_flag, _flag, _token), max_size=6),
)
_ratio = st.tuples(st.integers(1, 40), st.integers(1, 40)).filter(lambda r: r[0] <= 4 * r[1] and r[1] <= 4 * r[0])
_VALID_FLAGS = [
    _ratio.map(lambda r: f"--ar {r[0]}:{r[1]}"), st.integers(0, 2**32 - 1).map("--seed {}".format),
    st.integers(1, 150).map("--steps {}".format), st.sampled_from(["--q .25", "--q .5", "--q 1", "--q 2"]),
    st.integers(0, 1000).map("--s {}".format), st.integers(0, 100).map("--c {}".format),
    st.integers(10, 100).map("--stop {}".format), st.just("--tile"), st.integers(1, 20).map("--r {}".format),
    st.sampled_from(["--fast", "--relax", "--turbo"]), st.sampled_from(["--no text", "--no a, b c"]),
]  # fmt: skip
_valid_flags = st.lists(  # each kind at most once, so these always parse
    st.sampled_from(_VALID_FLAGS).flatmap(lambda strategy: strategy),
    max_size=len(_VALID_FLAGS),
    unique_by=lambda flag: "mode" if flag in ("--fast", "--relax", "--turbo") else flag.split()[0],
).map(" ".join)
_any_text = st.text(alphabet=st.characters(blacklist_categories=()), max_size=300)
_macros = st.dictionaries(st.sampled_from(["mine", "grim", "ar", "MINE"]), _soup, max_size=3)
_fuzz = settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@_fuzz
@given(text=_any_text)
def test_fuzz_arbitrary_text_raises_only_prompt_errors(text: str) -> None:
    _parse_checked(text, macros={}, suffix="")


@_fuzz
@given(text=_soup, macros=_macros, suffix=st.one_of(st.just(""), _soup))
def test_fuzz_flag_soup_raises_only_prompt_errors(text: str, macros: dict[str, str], suffix: str) -> None:
    _parse_checked(text, macros=macros, suffix=suffix)


@_fuzz
@given(prompt=st.sampled_from(["a cat", "{red, blue} car", "ship::2 sea"]), flags=_valid_flags)
def test_fuzz_format_parameters_round_trips(prompt: str, flags: str) -> None:
    parsed = _parse_checked(f"{prompt} {flags}", macros={}, suffix="")
    assert parsed is not None
    again = parse_prompt("x " + format_parameters(parsed))
    assert again == dataclasses.replace(parsed, prompts=("x",), weighted=((("x", 1.0),),), repeat=1)


def _parse_checked(text: str, *, macros: dict[str, str], suffix: str) -> ParsedPrompt | None:
    try:
        parsed = parse_prompt(text, macros=macros, suffix=suffix)
    except PromptError as error:
        _assert_renders(error)
        return None
    assert 1 <= len(parsed.prompts) <= MAX_PERMUTATIONS and all(parsed.prompts)
    assert len(parsed.weighted) == len(parsed.prompts) and 1 <= parsed.job_count <= 40
    assert all(sum(weight for _, weight in parts) > 0 for parts in parsed.weighted)
    if parsed.aspect is not None:
        width, height = parsed.aspect
        assert 0 < width <= 4 * height and 0 < height <= 4 * width
    assert parsed.seed is None or 0 <= parsed.seed < 2**32
    assert parsed.steps is None or 1 <= parsed.steps <= 150
    assert parsed.quality in (None, 0.25, 0.5, 1.0, 2.0)
    assert parsed.stylize is None or 0 <= parsed.stylize <= 1000
    assert 0 <= parsed.chaos <= 100 and 10 <= parsed.stop <= 100 and 1 <= parsed.repeat <= 40
    assert parsed.mode in (None, "fast", "relax", "turbo")
    return parsed


def _assert_renders(error: PromptError) -> None:
    assert error.values["param"] == error.param
    for locale in ("en-US", "fr"):
        lang = "fr" if locale == "fr" else "en"
        assert placeholders(catalogue(lang)[error.message_key]) <= set(error.values)
        assert t(error.message_key, locale, **error.values)
