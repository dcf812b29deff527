"""Counting the turns (iterations) of the running event loop, to check how work is spread over them."""

from __future__ import annotations

import asyncio
from collections import Counter


class TurnCounter:
    """`count` goes up by one in every turn of the loop while the counter runs (a callback that reschedules itself).

    `mark()` notes that something happened in the current turn; `per_turn` tallies the marks by turn.
    """

    def __init__(self) -> None:
        self.count = 0
        self.per_turn: Counter[int] = Counter()
        self._handle: asyncio.Handle | None = None

    def start(self) -> None:
        self._handle = asyncio.get_running_loop().call_soon(self._tick)

    def _tick(self) -> None:
        self.count += 1
        self._handle = asyncio.get_running_loop().call_soon(self._tick)

    def mark(self) -> int:
        self.per_turn[self.count] += 1
        return self.count

    def stop(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
