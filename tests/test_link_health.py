"""A suit's link health: the pure arithmetic, and the figures a simulated class shows."""

from __future__ import annotations

import trio
import trio.testing

from suit_controller.cli.live import ClassView
from suit_controller.commands import EmergencyStop
from suit_controller.link_health import (
    GIVE_UP_S,
    SAMPLE_EVERY_S,
    WEAK_ROUND_TRIP_MS,
    LinkFigures,
    LinkHealth,
)
from suit_controller.snapshot import ClassSnapshot

from .simclass_helpers import make_class


class Radio:
    """Frames at some rate, and a face asking for the rate now and then, in step."""

    def __init__(self) -> None:
        self.h = LinkHealth()
        self.t = 0.0
        self.counter = 1
        self.next_frame = 0.0

    def run(self, until: float, hz: float, ask_every: float) -> float | None:
        """Frames at `hz` and asks every `ask_every` s until `until`; the rate then."""
        next_ask = self.t
        while self.t < until - 1e-9:
            nxt = min(next_ask, self.next_frame if hz else until, until)
            self.t = nxt
            if hz and abs(self.t - self.next_frame) < 1e-9:
                self.h.sent(self.counter, self.t)
                self.counter += 1
                self.next_frame = self.t + 1.0 / hz
            if abs(self.t - next_ask) < 1e-9:
                self.h.frames_per_s(self.t)
                next_ask = self.t + ask_every
        if not hz:
            self.next_frame = until
        return self.h.frames_per_s(until)


def test_frames_per_second_over_a_rolling_window() -> None:
    r = Radio()
    assert r.h.frames_per_s(0.0) is None  # one sample: no rate yet
    r.h.sent(1, 0.0)
    assert r.h.frames_per_s(0.1) is None  # closer than a sample apart: still unknown
    r.h.frames_per_s(0.3)
    assert r.h.frames_per_s(0.3) == round(1 / 0.3, 1)
    r = Radio()
    assert r.run(3.0, 40.0, 0.5) == 40.0
    # the link slows to 10 frames a second: after a window the rate is 10, not an average
    assert r.run(4.0, 10.0, 0.5) not in (10.0, 40.0)  # half-way: between the two
    assert r.run(6.0, 10.0, 0.5) == 10.0
    # nothing at all for a window: 0
    assert r.run(8.5, 0.0, 0.5) == 0.0
    assert r.run(11.0, 40.0, 0.5) == 40.0


def test_asks_in_quick_succession_keep_the_window_two_seconds_long() -> None:
    r = Radio()
    assert r.run(5.0, 40.0, 0.1) == 40.0  # a console asking 10 times a second
    assert len(r.h._samples) <= round(2.0 / SAMPLE_EVERY_S) + 2  # bounded by the window
    assert r.run(5.5, 20.0, 0.1) not in (20.0, 40.0)  # still partly the old rate
    assert r.run(8.0, 20.0, 0.1) == 20.0  # one window later: the new rate alone


def test_round_trip_from_the_frame_sent_to_the_status_echoing_its_counter() -> None:
    h = LinkHealth()
    h.sent(7, 10.0)  # the probe
    h.sent(8, 10.025)  # a probe is out: not restarted
    h.status(6, 10.1)  # an older counter does not acknowledge it
    assert h.last_round_trip_s is None and h.round_trips == 0
    h.status(8, 10.2)  # acknowledges 7 (and 8)
    assert h.round_trips == 1 and abs(h.last_round_trip_s - 0.2) < 1e-9  # type: ignore[operator]
    h.status(9, 10.3)  # no probe out: nothing measured
    assert h.round_trips == 1
    h.sent(9, 11.0)
    h.lost()  # the link went down: that probe is never answered
    h.status(9, 11.5)
    assert h.round_trips == 1
    h.sent(10, 12.0)
    h.sent(11, 12.0 + GIVE_UP_S + 0.1)  # unanswered too long: a new probe
    h.status(11, 12.0 + GIVE_UP_S + 0.15)
    assert h.round_trips == 2 and abs(h.last_round_trip_s - 0.05) < 1e-9  # type: ignore[operator]
    assert h.frames == 5


def _figures(h: LinkHealth, **kw: object) -> LinkFigures:
    args: dict[str, object] = {"connected": True, "rate_hz": 40.0, "rssi_dbm": None}
    args.update(kw)
    return h.figures(2.0, **args)  # type: ignore[arg-type]


def test_the_verdict_good_weak_lost() -> None:
    r = Radio()
    r.run(1.95, 40.0, 0.5)
    h = r.h
    h.status(r.counter - 1, 1.95)  # acknowledges the first probe, 1.95 s late
    assert _figures(h).verdict == "weak"
    r.run(2.0, 40.0, 0.5)  # a new probe: the frame sent at 1.95
    h.status(r.counter - 1, 2.0)
    good = _figures(h)
    assert good.verdict == "good" and good.frames_per_s == 40.0 and good.rssi_dbm is None
    assert good.round_trip_ms is not None and 0.0 < good.round_trip_ms <= 50.0
    assert good.short() == f"40/s {good.round_trip_ms:.0f}ms"
    assert _figures(h, rssi_dbm=-60).verdict == "good"
    assert _figures(h, rssi_dbm=-90).verdict == "weak"
    assert _figures(h, rssi_dbm=-90).short() == f"40/s {good.round_trip_ms:.0f}ms -90dBm"
    assert _figures(h, rate_hz=60.0).verdict == "weak"  # 40 frames a second of 60 expected
    assert _figures(h, connected=False).verdict == "lost"
    slow = LinkHealth()
    slow.sent(1, 0.0)
    slow.status(1, WEAK_ROUND_TRIP_MS / 1000.0)
    assert slow.figures(0.5, connected=True, rate_hz=40.0).verdict == "weak"
    # no frames expected (a stop holds the suit): the rate is not judged, the window restarts
    idle = LinkHealth()
    idle.frames_per_s(0.0)
    held = idle.figures(1.0, connected=True, rate_hz=None)
    assert held == LinkFigures("good", None, None, None)
    assert held.short() == "?/s ?ms" and not idle._samples


async def test_the_snapshot_and_the_live_view_show_each_suits_link(
    autojump_clock: trio.testing.MockClock,
) -> None:
    sc, _ = make_class(2)
    s = sc.session
    sc.suits[1].latency_s = 0.5  # Ben's suit answers late (but in time for its watchdog)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(sc.run)
        await trio.sleep(4.0)
        for _ in range(12):  # a face asking four times a second
            await trio.sleep(0.25)
            snap = ClassSnapshot.of(s)
        ana, ben = snap.clients
        assert ana.link_health.verdict == "good"
        assert ana.link_health.frames_per_s is not None
        assert 36.0 <= ana.link_health.frames_per_s <= 41.0  # one frame a tick at 40 Hz
        assert ana.link_health.round_trip_ms is not None
        assert 0.0 <= ana.link_health.round_trip_ms <= 250.0  # within a status period (200 ms)
        assert ana.link_health.rssi_dbm is None  # an in-process link knows no signal
        assert ben.link_health.verdict == "weak"
        assert ben.link_health.round_trip_ms is not None
        assert ben.link_health.round_trip_ms >= 500.0
        doc = s.snapshot()
        assert doc["clients"][0]["link_health"]["verdict"] == "good"
        assert doc["clients"][1]["link_health"] == ben.link_health.as_json()

        view = ClassView("simulated")
        view.snapshot = doc
        text = view.__rich__().plain  # type: ignore[union-attr]
        ana_line = next(line for line in text.splitlines() if line.startswith(ana.name))
        ben_line = next(line for line in text.splitlines() if line.startswith(ben.name))
        assert "good" in ana_line and "/s" in ana_line
        assert "weak" in ben_line and f"{ben.link_health.round_trip_ms:.0f}ms" in ben_line

        sc.suits[0].drop_link()
        await trio.sleep(0.5)
        assert ClassSnapshot.of(s).clients[0].link_health.verdict == "lost"
        sc.suits[0].restore_link()
        assert (await s.execute(EmergencyStop())).ok
        await trio.sleep(3.0)
        # held by the stop, no levels go out: the link is not called weak for it
        held = ClassSnapshot.of(s).clients[0].link_health
        assert held.verdict == "good" and held.frames_per_s is None
        nursery.cancel_scope.cancel()
