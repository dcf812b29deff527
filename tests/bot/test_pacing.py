"""The pacer lets a burst of interactions in a few per turn of the event loop, in arrival order."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from bot.pacing import Pacer
from tests.support.turns import TurnCounter


@pytest.fixture
async def turns() -> AsyncIterator[TurnCounter]:
    counter = TurnCounter()
    counter.start()
    yield counter
    counter.stop()


async def enter(pacer: Pacer, turns: TurnCounter, name: int, passed: list[int]) -> None:
    await pacer.turn()
    turns.mark()
    passed.append(name)


async def test_a_burst_passes_a_few_per_turn_in_arrival_order(turns: TurnCounter) -> None:
    pacer = Pacer(per_turn=8)
    passed: list[int] = []
    await asyncio.gather(*(enter(pacer, turns, n, passed) for n in range(100)))
    assert passed == list(range(100))
    assert max(turns.per_turn.values()) == 8
    assert len(turns.per_turn) >= 100 // 8
    assert pacer.waiting == 0


async def test_on_a_quiet_loop_a_caller_passes_without_waiting_for_a_turn(turns: TurnCounter) -> None:
    pacer = Pacer(per_turn=2)
    for _ in range(3):
        before = turns.count
        await pacer.turn()
        assert turns.count == before
        await asyncio.sleep(0.001)  # the burst is over: the next caller finds a fresh turn


async def test_callers_arriving_while_others_wait_queue_behind_them(turns: TurnCounter) -> None:
    pacer = Pacer(per_turn=3)
    passed: list[int] = []
    first = [asyncio.create_task(enter(pacer, turns, n, passed)) for n in range(10)]
    await asyncio.sleep(0)
    late = [asyncio.create_task(enter(pacer, turns, n, passed)) for n in range(10, 15)]
    await asyncio.gather(*first, *late)
    assert passed == list(range(15))
    assert max(turns.per_turn.values()) == 3


async def test_a_cancelled_waiter_gives_its_place_to_the_next(turns: TurnCounter) -> None:
    pacer = Pacer(per_turn=4)
    passed: list[int] = []
    tasks = [asyncio.create_task(enter(pacer, turns, n, passed)) for n in range(20)]
    await asyncio.sleep(0)
    tasks[6].cancel()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert isinstance(results[6], asyncio.CancelledError)
    assert passed == [n for n in range(20) if n != 6]
    assert max(turns.per_turn.values()) == 4


def test_a_pacer_lets_at_least_one_caller_through_per_turn() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        Pacer(per_turn=0)
