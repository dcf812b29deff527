"""Exceptions of the `pipelines` package.

PipelineError
 ├── ModelLoadError        SONGE_MODEL is missing, not a diffusers pipeline, or failed to load
 ├── GenerationError       a request this engine cannot serve (carries a FailureKind)
 ├── Interrupted           raised from a step callback to stop a batch (cancel, shutdown)
 └── QueueUnavailable      the NATS server of a remote queue cannot be reached right now
"""

from __future__ import annotations

from pipelines.types import FailureKind


class PipelineError(Exception):
    """Base class of the package's errors."""


class ModelLoadError(PipelineError):
    """The configured model could not be loaded; the message says why and what to do."""


class GenerationError(PipelineError):
    """A request failed for a reason the user should hear about."""

    def __init__(self, message: str, kind: FailureKind = FailureKind.BAD_INPUT) -> None:
        super().__init__(message)
        self.kind = kind


class Interrupted(PipelineError):
    """A running batch was asked to stop."""


class QueueUnavailable(PipelineError):
    """The remote queue's broker cannot be reached; the job was not queued (refund it) or not cancelled."""
