"""The order in which queued jobs reach the GPU.

Rules, in order of precedence:

1. Due before not due. A job whose `not_before` (unix time) has passed, or is 0, is due. A job
   not yet due runs only when no due job waits at all: the GPU never idles while work is queued,
   so `not_before` is a soft delay (used for the relax jobs of heavy relax users).
2. Lanes by `Lane.priority`: turbo, then fast, then relax.
3. Inside one lane, round-robin between users, as start-time fair queueing with one unit per job:
   a user's next job carries a tag (how many turns that user has had), later jobs the next tags,
   and the lowest tag runs first, ties going to the user who queued first. A user arriving (or
   coming back) starts at the tag of the last job started, so one user's ten queued jobs never
   hold back another user's first, and nobody banks turns while away.

A batch is the first job of that order (the head), then the following jobs of the same lane,
eligibility and `batch_key`, in the same order, up to `max_batch`. Lower lanes never ride in a
higher lane's batch: they would slow it down.

Not thread-safe: the worker guards it with its lock.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field

from pipelines.types import GenerationRequest, Lane

_FORGET_AFTER = 256  # departed users remembered before pruning those whose tags no longer matter


@dataclass
class _User:
    tag: int  # the tag of this user's next job
    arrival: int  # breaks ties between equal tags
    jobs: list[GenerationRequest] = field(default_factory=list)


@dataclass
class _Lane:
    users: dict[int, _User] = field(default_factory=dict)
    clock: int = 0  # the tag of the last job started (virtual time)
    departed: dict[int, int] = field(default_factory=dict)  # user -> next tag, for users whose queue emptied

    def user(self, user_id: int, arrival: int) -> _User:
        if user_id not in self.users:
            self.users[user_id] = _User(max(self.clock, self.departed.pop(user_id, 0)), arrival)
        return self.users[user_id]

    def drop_if_idle(self, user_id: int) -> None:
        user = self.users[user_id]
        if not user.jobs:
            del self.users[user_id]
            self.departed[user_id] = user.tag
            if len(self.departed) > _FORGET_AFTER:
                self.departed = {u: tag for u, tag in self.departed.items() if tag > self.clock}


class Scheduler:
    """Queued jobs, by lane and user; `take` pops the next batch, `order` predicts the whole run order."""

    def __init__(self) -> None:
        self._lanes = [_Lane() for _ in sorted({lane.priority for lane in Lane})]
        self._jobs: dict[str, GenerationRequest] = {}
        self._arrivals = itertools.count()

    def __len__(self) -> int:
        return len(self._jobs)

    def __contains__(self, job_id: object) -> bool:
        return job_id in self._jobs

    def add(self, request: GenerationRequest) -> None:
        """Queue `request` behind its user's earlier jobs (a new job id only)."""
        self._jobs[request.job_id] = request
        lane = self._lanes[request.lane.priority]
        lane.user(request.user_id, next(self._arrivals)).jobs.append(request)

    def remove(self, job_id: str) -> GenerationRequest | None:
        """Take a queued job out without running it; None if it is not queued."""
        request = self._jobs.pop(job_id, None)
        if request is not None:
            lane = self._lanes[request.lane.priority]
            lane.users[request.user_id].jobs.remove(request)
            lane.drop_if_idle(request.user_id)
        return request

    def take(self, *, max_batch: int, now: float) -> list[GenerationRequest]:
        """Pop the next batch (empty when nothing is queued); each of its jobs spends one of its user's turns."""
        for due in (True, False):
            for lane in self._lanes:
                candidates = _fair_order(lane, due=due, now=now)
                head = next(candidates, None)
                if head is None:
                    continue
                fillers = (r for r in candidates if r.batch_key == head.batch_key)
                batch = [head, *itertools.islice(fillers, max_batch - 1)]
                for request in batch:
                    self._start(lane, request)
                return batch
        return []

    def order(self, *, now: float) -> list[GenerationRequest]:
        """Every queued job in the order `take` would start them, ignoring batching."""
        result: list[GenerationRequest] = []
        for due in (True, False):
            for lane in self._lanes:
                result.extend(_fair_order(lane, due=due, now=now))
        return result

    def place(self, job_id: str, *, now: float) -> tuple[int, int, float] | None:
        """(1-based position, total, work units ahead) of a queued job in `order`; None if not queued."""
        order = self.order(now=now)
        ahead = 0.0
        for position, request in enumerate(order, 1):
            if request.job_id == job_id:
                return position, len(order), ahead
            ahead += request.work_units
        return None

    def _start(self, lane: _Lane, request: GenerationRequest) -> None:
        del self._jobs[request.job_id]
        user = lane.users[request.user_id]
        user.jobs.remove(request)
        lane.clock = max(lane.clock, user.tag)
        user.tag += 1
        lane.drop_if_idle(request.user_id)


def _fair_order(lane: _Lane, *, due: bool, now: float) -> Iterator[GenerationRequest]:
    """The jobs of `lane` that are (or are not) `due` by (tag, user arrival), lazily; a user's k-th has tag + k."""
    heap = [
        (user.tag, user.arrival, (r for r in user.jobs if (r.not_before <= now) is due)) for user in lane.users.values()
    ]
    heapq.heapify(heap)
    while heap:
        tag, arrival, jobs = heap[0]
        request = next(jobs, None)
        if request is None:
            heapq.heappop(heap)
            continue
        heapq.heapreplace(heap, (tag + 1, arrival, jobs))
        yield request
