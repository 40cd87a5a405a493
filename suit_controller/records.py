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


def callable_name(fn: object) -> str:
    """A short name for a callback: `printer`, `MqttBridge._on_event`."""
    name = getattr(fn, "__qualname__", None) or type(fn).__qualname__
    return str(name).rsplit("<locals>.", 1)[-1]


class EventLog:
    """Every event of a class, with subscribers (screens, brokers, records).

    A subscriber cannot raise into whoever added the event (the engine): its
    error is counted in `subscriber_errors` and reported once, as a
    `subscriber_error` event; the other subscribers still get every event.
    """

    def __init__(self, report: Callable[[SessionEvent], None] | None = None) -> None:
        """`report`: where a `subscriber_error` event goes (default: this log); a mirror of
        another thread's log sends it to the original, whence it comes back in order."""
        self.events: list[SessionEvent] = []
        self._subscribers: list[Callable[[SessionEvent], None]] = []
        self.subscriber_errors: dict[str, int] = {}
        self._report = report or self.add

    def subscribe(self, callback: Callable[[SessionEvent], None]) -> None:
        self._subscribers.append(callback)

    def add(self, event: SessionEvent) -> None:
        self.events.append(event)
        for cb in list(self._subscribers):
            try:
                cb(event)
            except Exception as e:  # a screen's or printer's bug must never reach the engine
                self._failed(cb, e, event)

    def _failed(self, cb: object, error: Exception, event: SessionEvent) -> None:
        from suit_controller.commands import printable

        name = callable_name(cb)
        n = self.subscriber_errors[name] = self.subscriber_errors.get(name, 0) + 1
        if n == 1:
            self._report(
                SessionEvent(
                    event.t,
                    "subscriber_error",
                    f"{name} failed on a {event.kind} event ({type(error).__name__}: "
                    f"{printable(str(error))}); the class goes on, later failures are only counted",
                    data={"subscriber": name},
                )
            )

    def of_kind(self, kind: str) -> list[SessionEvent]:
        return [e for e in self.events if e.kind == kind]
