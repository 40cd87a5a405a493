"""What happened in a class, in order: the session's events."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class SessionEvent:
    """One thing that happened. `t` is seconds since the class started (engine clock)."""

    t: float
    kind: str
    message: str
    client: str | None = None
    data: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"t": round(self.t, 4), "kind": self.kind, "message": self.message}
        if self.client is not None:
            out["client"] = self.client
        if self.data:
            out["data"] = self.data
        return out


class EventLog:
    """Every event of a class, with subscribers (screens, brokers, records)."""

    def __init__(self) -> None:
        self.events: list[SessionEvent] = []
        self._subscribers: list[Callable[[SessionEvent], None]] = []

    def subscribe(self, callback: Callable[[SessionEvent], None]) -> None:
        self._subscribers.append(callback)

    def add(self, event: SessionEvent) -> None:
        self.events.append(event)
        for cb in self._subscribers:
            cb(event)

    def of_kind(self, kind: str) -> list[SessionEvent]:
        return [e for e in self.events if e.kind == kind]
