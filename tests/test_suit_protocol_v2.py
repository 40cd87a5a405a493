"""Protocol version 2 through the real engine with simulated suits, in virtual time.

A version 1 suit and a link too small for version 2 are refused with a clear
message and sent nothing; a watchdog trip makes the client ramp up from zero
again; every exercise's program reaches the suit and is applied there.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import numpy as np
import trio
import trio.testing

from sim.suit import SimulatedSuit
from suit_controller.clients import ClientSpec
from suit_controller.links import InProcessLink
from suit_controller.protocol import PulseProgram
from suit_controller.session import ClassSession

from .simclass_helpers import QUADS, make_class, short_plan

V1_STATUS = bytes.fromhex("18070001570000051428283200ff0b14f0fe56a3")

TWO_PROGRAMS = """\
name: Two programs
programs:
  wide: {frequency_hz: 85, pulse_width_us: 450, impulse_s: 4, pause_s: 4}
  slow: {frequency_hz: 7, pulse_width_us: 300, continuous: true, ramp_up_s: 1}
phases:
  - {kind: warmup, duration: 10s}
  - kind: suit
    exercises:
      - {name: Squat, duration: 20s, program: wide, channels: {quads: 1.0}}
      - {name: Cardio, duration: 20s, program: slow, channels: {quads: 0.5}}
  - {kind: stretch, duration: 10s}
"""


class VersionOneSuit:
    """A suit with old firmware: it notifies a version 1 status and records what it gets."""

    address = "OLD-01"

    def __init__(self) -> None:
        self.received: list[bytes] = []

    def attach(self, on_notify: Callable[[bytes], None], on_lost: Callable[[], None]) -> None:
        on_notify(V1_STATUS)

    def deliver(self, data: bytes) -> None:
        self.received.append(data)

    def detach(self) -> None:
        pass


async def run_with(links: list[Any], suits: list[SimulatedSuit]) -> ClassSession:
    session = ClassSession(
        short_plan(), [ClientSpec(f"c{i}", intensity_mA=20.0) for i in range(len(links))], links
    )
    async with trio.open_nursery() as nursery:
        for s in suits:
            await nursery.start(s.run)
        assert await session.run() == "finished"
        nursery.cancel_scope.cancel()
    return session


async def test_a_version_1_suit_is_refused_with_the_message_and_sent_nothing(
    autojump_clock: trio.testing.MockClock,
) -> None:
    good, old = SimulatedSuit("SIM-01"), VersionOneSuit()
    session = await run_with([InProcessLink(good), InProcessLink(old)], [good])
    assert old.received == []  # not an ARM, not a level, not even the final STOP_ALL
    [refused] = session.events.of_kind("suit_refused")
    assert refused.client == "c1"
    assert "this suit speaks suit protocol version 1; update its firmware to version 2" in (
        refused.message
    )
    assert good.firmware.max_seen_mA[QUADS] == 20.0  # the other client's class went on


async def test_a_link_too_small_for_version_2_is_refused(
    autojump_clock: trio.testing.MockClock,
) -> None:
    good, small = SimulatedSuit("SIM-01"), SimulatedSuit("SIM-02", att_payload=20)
    session = await run_with(
        [InProcessLink(good), InProcessLink(small, att_payload=20)], [good, small]
    )
    assert small.frames_received == 0
    [refused] = session.events.of_kind("suit_refused")
    assert refused.client == "c1" and "ATT MTU of at least 67" in refused.message
    assert good.firmware.max_seen_mA[QUADS] == 20.0


async def test_after_a_watchdog_trip_the_client_ramps_up_from_zero_again(
    autojump_clock: trio.testing.MockClock,
) -> None:
    sc, _ = make_class(2, body=False)
    set_mA: list[tuple[float, float]] = []
    sc.session.tick_observers.append(
        lambda now: set_mA.append((now, float(sc.session.board.set_mA[0, QUADS])))
    )
    applied: list[tuple[float, float]] = []
    sc.suits[0].on_change = lambda s: applied.append(
        (trio.current_time(), float(s.firmware.applied_mA[QUADS]))
    )
    async with trio.open_nursery() as nursery:
        nursery.start_soon(sc.run)
        await trio.sleep(12.0)  # mid-contraction at 20 mA
        assert sc.suits[0].firmware.applied_mA[QUADS] == 20.0
        sc.suits[0].loss = 1.0  # the radio swallows every frame: the suit's watchdog trips
        await trio.sleep(0.3)
        sc.suits[0].loss = 0.0
        await trio.sleep(20.0)
        nursery.cancel_scope.cancel()
    assert sc.suits[0].firmware.watchdog_trips == 1
    # (reported again if the radio also swallowed the first ARM)
    reports = sc.session.events.of_kind("suit_safe_state")
    assert reports and "WATCHDOG" in reports[0].message
    tripped = reports[0].t
    after = [v for t, v in set_mA if t > tripped + 1e-9]  # ticks after the report
    assert after[0] <= 1.0  # restarted from zero (one step up at most), not at 20 mA
    assert all(0.0 <= b - a <= 1.0 + 1e-9 for a, b in itertools.pairwise(after))
    assert max(after) == 20.0  # and ramped back up
    rearmed = [v for t, v in applied if t > tripped and v > 0]
    assert rearmed and rearmed[0] <= 1.0  # the suit saw the ramp, not a jump
    assert sc.suits[1].firmware.watchdog_trips == 0


async def test_every_exercises_program_is_applied_at_the_suit(
    autojump_clock: trio.testing.MockClock,
) -> None:
    sc, _ = make_class(2, TWO_PROGRAMS, body=False)
    seen: dict[str, set[tuple[int, int]]] = {}
    async with trio.open_nursery() as nursery:
        nursery.start_soon(sc.run)
        for t, name in ((10.3, "Squat"), (30.3, "Cardio")):
            await trio.sleep_until(t)
            seen[name] = {s.firmware.program.pulses for s in sc.suits}
        nursery.cancel_scope.cancel()
    assert seen == {"Squat": {(85, 450)}, "Cardio": {(7, 300)}}
    for s, d in zip(sc.suits, sc.session.drivers, strict=True):
        assert d.connection.confirmed == s.firmware.program != PulseProgram(0, 85, 350)
        assert s.firmware.charge_clamps == 0 and s.firmware.mismatched_frames <= 2
    assert np.all(sc.session.caps[:, QUADS] > 0)


async def test_a_suit_whose_own_charge_limit_acts_says_so_to_the_trainer(
    autojump_clock: trio.testing.MockClock,
) -> None:
    sc, _ = make_class(2, body=False)
    sc.suits[0].firmware.charge_limit_uC = 5.0  # stricter than the controller's 45 µC
    assert await sc.run() == "finished"
    limit = 5.0 * 1000 / 350
    assert 0 < sc.suits[0].firmware.max_seen_mA[QUADS] <= limit  # 14 mA, not the 20 asked
    assert sc.suits[1].firmware.max_seen_mA[QUADS] == 20.0
    [told] = sc.session.events.of_kind("suit_clamped")
    assert told.client == "client-1" and "CHARGE_CLAMPED" in told.message
