"""A gate for the fake engine's `before_step`: the running job waits, on the GPU thread, until the test opens it."""

from __future__ import annotations

import threading


class Gate:
    """`reached` is set once a job is running; `opened` lets every job go on (30 s at most, then the job fails)."""

    def __init__(self) -> None:
        self.opened = threading.Event()
        self.reached = threading.Event()

    def __call__(self, step: int) -> None:
        self.reached.set()
        if not self.opened.wait(30):
            raise TimeoutError("the test never opened the gate")
