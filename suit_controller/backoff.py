"""Reconnect delays that grow: 0.25 s, 0.5 s, 1 s, 2 s, 4 s, then 5 s each time."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Backoff:
    """Exponential backoff; `reset` after a successful connection."""

    first_s: float = 0.25
    factor: float = 2.0
    max_s: float = 5.0
    attempts: int = 0

    def next(self) -> float:
        delay = min(self.max_s, self.first_s * self.factor**self.attempts)
        self.attempts += 1
        return delay

    def reset(self) -> None:
        self.attempts = 0
