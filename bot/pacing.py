"""Pacing: a burst of interactions enters the bot a few per turn of the event loop, in arrival order.

discord.py handles every gateway message already buffered in one go and starts one task per interaction, so a
burst of a thousand makes hundreds of tasks ready in the same turn of the loop, and that turn holds up every other
task (heartbeats, timers, deliveries) until all of them have taken their first step. Commands (`SongeTree`) and
buttons (`JobButton`) first wait for their turn here: the same work, spread over short turns. Measured by
`bench/bench_load.py`, together with the store resuming its callers a few per turn: the worst loop lag under 1000
/imagine at once fell from 58-135 ms to 33-76 ms (median ~42 ms over 19 runs), and the deferrals did not get slower.
"""

from __future__ import annotations

import asyncio
from collections import deque

PER_TURN = 16
"""Interactions that take their first step in one turn of the event loop, at most (~0.15 ms each on a core)."""


class Pacer:
    """`await pacer.turn()` returns at once while this turn has room, else in a later turn, first come first served."""

    def __init__(self, per_turn: int = PER_TURN) -> None:
        if per_turn < 1:
            raise ValueError("per_turn must be at least 1")
        self.per_turn = per_turn
        self._admitted = 0
        self._waiting: deque[asyncio.Future[None]] = deque()
        self._ticking = False

    @property
    def waiting(self) -> int:
        """Callers waiting for a later turn."""
        return len(self._waiting)

    async def turn(self) -> None:
        if not self._waiting and self._admitted < self.per_turn:
            self._admitted += 1
            self._tick_soon()
            return
        future = asyncio.get_running_loop().create_future()
        self._waiting.append(future)
        self._tick_soon()
        await future

    def _tick_soon(self) -> None:
        if not self._ticking:
            self._ticking = True
            asyncio.get_running_loop().call_soon(self._tick)

    def _tick(self) -> None:
        """A new turn: release up to `per_turn` waiters (they run in the next turn), then tick again if any wait."""
        self._ticking = False
        self._admitted = 0
        while self._waiting and self._admitted < self.per_turn:
            future = self._waiting.popleft()
            if not future.done():  # a cancelled waiter gives its place to the next
                future.set_result(None)
                self._admitted += 1
        if self._waiting or self._admitted:
            self._tick_soon()
