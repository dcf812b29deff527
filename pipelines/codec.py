"""JSON-safe encoding of requests, results and events (for the jobs table and remote queues)."""

from __future__ import annotations

import base64
import dataclasses
import enum
import json
import types
import typing
from typing import Any, TypeVar

from pipelines import types as t

T = TypeVar("T")

_EVENTS: dict[str, type] = {
    cls.__name__: cls for cls in (t.Queued, t.Started, t.Progressed, t.Finished, t.Failed, t.Cancelled)
}


def _encode(value: Any) -> Any:
    if isinstance(value, bytes):
        return {"$b64": base64.b64encode(value).decode("ascii")}
    if isinstance(value, enum.Enum):
        return value.value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _encode(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, (tuple, list)):
        return [_encode(v) for v in value]
    return value


def _decode(tp: Any, value: Any) -> Any:
    if value is None:
        return None
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        options = [a for a in typing.get_args(tp) if a is not type(None)]
        return _decode(options[0], value)
    if origin is tuple:
        (item, *_rest) = typing.get_args(tp)
        return tuple(_decode(item, v) for v in value)
    if tp is bytes:
        return base64.b64decode(value["$b64"])
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return tp(value)
    if dataclasses.is_dataclass(tp):
        hints = typing.get_type_hints(tp, vars(t))
        return tp(**{k: _decode(hints[k], v) for k, v in value.items() if k in hints})
    return value


def to_dict(value: Any) -> dict[str, Any]:
    """A dataclass as a JSON-safe dict (bytes as base64, enums as their values)."""
    encoded = _encode(value)
    assert isinstance(encoded, dict)
    return encoded


def from_dict(cls: type[T], data: dict[str, Any]) -> T:
    """The inverse of `to_dict`."""
    return typing.cast(T, _decode(cls, data))


def dumps_request(request: t.GenerationRequest) -> str:
    return json.dumps(to_dict(request), separators=(",", ":"))


def loads_request(text: str) -> t.GenerationRequest:
    return from_dict(t.GenerationRequest, json.loads(text))


def dumps_event(event: t.JobEvent) -> bytes:
    return json.dumps({"type": type(event).__name__, "data": to_dict(event)}, separators=(",", ":")).encode()


def loads_event(raw: bytes) -> t.JobEvent:
    doc = json.loads(raw)
    return typing.cast(t.JobEvent, from_dict(_EVENTS[doc["type"]], doc["data"]))
