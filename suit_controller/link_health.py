"""A suit's link health: frames delivered per second, status round trip, signal; good, weak or lost.

Theory of operation
-------------------
One `LinkHealth` per suit, owned by its driver. The tick path stays cheap:

* per frame sent the driver adds one to `frames` and calls `sent`, which does
  nothing unless no round-trip probe is out (then it notes the frame's
  counter and the time it went);
* per status received the driver calls `status` with the counter it echoes:
  one comparison, and the round trip when it acknowledges the probe.

Everything else is computed when a face asks (`figures(now, ...)`, at
snapshot time): frames delivered per second over a rolling window of the
samples taken at those asks, the last round trip, the RSSI when the link
knows it (bleak gives it at scan; None otherwise) and the verdict a trainer
reads. The studio's `/metrics`, the snapshot, the live view and the console
all read these same figures.

The window: each ask adds a sample (time, frames) at most every
`SAMPLE_EVERY_S`; samples older than needed to span `WINDOW_S` are dropped,
so the rate covers the last 2–2.25 s whatever the faces' rhythms. Before
two samples `SAMPLE_EVERY_S` apart exist, the rate is unknown (None).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any, Literal

#: The rolling window frames per second are counted over, s.
WINDOW_S = 2.0
#: Samples closer together than this are not kept (a busy console asks 10 times a second).
SAMPLE_EVERY_S = 0.25
#: A probe no status acknowledges within this long is given up (a new one starts).
GIVE_UP_S = 5.0
#: Weak below this share of the engine's tick rate (frames that did not get through).
WEAK_RATE_SHARE = 0.75
#: Weak at or above this status round trip, ms. A suit sends its status every 200 ms, so a
#: round trip of up to 200 ms plus the link's own delay is normal; frames must reach the suit
#: within its 250 ms watchdog, so twice that is a link in trouble.
WEAK_ROUND_TRIP_MS = 400.0
#: Weak at or below this signal, dBm (BLE links become unreliable around −85 to −90 dBm).
WEAK_RSSI_DBM = -85

Verdict = Literal["good", "weak", "lost"]


@dataclass(frozen=True)
class LinkFigures:
    """A suit's link at one moment, as every face shows it."""

    #: "good", "weak" or "lost" (the link is not up).
    verdict: Verdict
    #: Frames delivered per second over the last ~2 s; None until measured.
    frames_per_s: float | None
    #: The last status round trip, ms (frame sent → status echoing its counter); None before one.
    round_trip_ms: float | None
    #: Signal strength, dBm, when the link knows it; else None.
    rssi_dbm: int | None

    def as_json(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict,
            "frames_per_s": self.frames_per_s,
            "round_trip_ms": self.round_trip_ms,
            "rssi_dbm": self.rssi_dbm,
        }

    def short(self) -> str:
        """The figures in a few characters (`40/s 31ms -62dBm`, `?` where unknown)."""
        fps = "?" if self.frames_per_s is None else f"{self.frames_per_s:.0f}"
        rtt = "?" if self.round_trip_ms is None else f"{self.round_trip_ms:.0f}"
        out = f"{fps}/s {rtt}ms"
        if self.rssi_dbm is not None:
            out += f" {self.rssi_dbm}dBm"
        return out


#: The figures of a link that is not up and never measured.
NOT_LINKED = LinkFigures("lost", None, None, None)


class LinkHealth:
    """One suit's link counters (fed by its driver) and the arithmetic that reads them."""

    def __init__(self) -> None:
        #: Frames delivered to the suit's link (the driver adds one per frame).
        self.frames = 0
        #: Round trips measured so far, and the last one, s.
        self.round_trips = 0
        self.last_round_trip_s: float | None = None
        self._probe: tuple[int, float] | None = None  # (frame counter, time it was sent)
        self._samples: deque[tuple[float, int]] = deque()

    # -- the driver's calls (cheap) -----------------------------------------------------
    def sent(self, counter: int, now: float) -> None:
        """A frame numbered `counter` went out at `now`: probe with it unless a probe is out."""
        self.frames += 1
        probe = self._probe
        if probe is None or now - probe[1] > GIVE_UP_S:
            self._probe = (counter, now)

    def status(self, counter: int, now: float) -> None:
        """The suit's status echoed `counter` at `now`: a round trip if it acknowledges it."""
        probe = self._probe
        if probe is not None and counter >= probe[0]:
            self.last_round_trip_s = now - probe[1]
            self.round_trips += 1
            self._probe = None

    def lost(self) -> None:
        """The link went down: the probe out will never be answered."""
        self._probe = None

    # -- a face's call (at snapshot time) -----------------------------------------------
    def frames_per_s(self, now: float) -> float | None:
        """Frames delivered per second over the rolling window, sampling now."""
        samples = self._samples
        if not samples or now - samples[-1][0] >= SAMPLE_EVERY_S:
            samples.append((now, self.frames))
        while len(samples) > 2 and samples[1][0] <= now - WINDOW_S:
            samples.popleft()
        t0, f0 = samples[0]
        span = now - t0
        if span < SAMPLE_EVERY_S:
            return None
        return round(max(0, self.frames - f0) / span, 1)

    def figures(
        self, now: float, *, connected: bool, rate_hz: float | None, rssi_dbm: int | None = None
    ) -> LinkFigures:
        """The link now.

        `rate_hz` is the frame rate expected now (the engine's tick rate while
        levels go out to the suit: one frame per tick), None while none are
        (a stop holds the suit, the class is over): the window starts afresh,
        so a rate is never judged on frames that were not meant to be sent.
        """
        if rate_hz is None or not connected:
            self._samples.clear()
            fps = None
        else:
            fps = self.frames_per_s(now)
        rtt = self.last_round_trip_s
        rtt_ms = None if rtt is None else round(rtt * 1000.0, 1)
        verdict: Verdict
        if not connected:
            verdict = "lost"
        elif (
            (fps is not None and rate_hz is not None and fps < WEAK_RATE_SHARE * rate_hz)
            or (rtt_ms is not None and rtt_ms >= WEAK_ROUND_TRIP_MS)
            or (rssi_dbm is not None and rssi_dbm <= WEAK_RSSI_DBM)
        ):
            verdict = "weak"
        else:
            verdict = "good"
        return LinkFigures(verdict, fps, rtt_ms, rssi_dbm)


__all__ = ["NOT_LINKED", "LinkFigures", "LinkHealth", "Verdict"]
