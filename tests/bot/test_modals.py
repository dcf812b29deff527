from __future__ import annotations

import pytest

from bot.errors import SongeError
from bot.views.modals import parse_region, parse_zoom


@pytest.mark.parametrize(("text", "factor"), [("1", 1.0), ("1.5", 1.5), ("2", 2.0), ("1,25", 1.25)])
def test_zoom_factor(text: str, factor: float) -> None:
    assert parse_zoom(text) == factor


@pytest.mark.parametrize("text", ["0.9", "2.5", "big", ""])
def test_bad_zoom_factor(text: str) -> None:
    with pytest.raises(SongeError):
        parse_zoom(text)


def test_region_in_percent() -> None:
    assert parse_region("25, 25, 75, 75") == (0.25, 0.25, 0.75, 0.75)
    assert parse_region("0% 0% 50% 100%") == (0.0, 0.0, 0.5, 1.0)


@pytest.mark.parametrize("text", ["75,25,25,75", "1,2,3", "0,0,101,50", "a,b,c,d", "10,10,10.5,10.5"])
def test_bad_region(text: str) -> None:
    with pytest.raises(SongeError):
        parse_region(text)
