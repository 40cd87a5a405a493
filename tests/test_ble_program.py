"""Failure class 2 of issue 12 over Bluetooth LE: a SET_PROGRAM lost on the air.

The same class as tests/test_program_safety.py, but the frames go through
bleak's client API on a bumble host stack and the radio model
(sim/radio.py), which loses them at the chosen moment: a 40 ms loss of
everything that begins with the SET_PROGRAM of the 450 → 100 µs change, the
one SET_PROGRAM only, and (third) every SET_PROGRAM to one suit. 120 mA is
asked throughout.

Charge per phase is read AT THE SUIT: what the simulated firmware applied,
times its own active pulse width, at every change of its outputs. The
suit's own charge limit is switched off here, so what it applies is exactly
what the controller's caps and the protocol let through (with it on, the
firmware would mask a controller that asked for 54 µC by clamping it).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import trio
import trio.testing
import trio_asyncio

from channels.limits import CHARGE_PER_PHASE_MAX_UC
from sim.firmware import SuitFirmware
from sim.radio import Loss
from sim.simclass import SimulatedClass
from suit_controller.protocol import RemoteProtocolError, SetProgram, decode_control

from .simclass_helpers import QUADS, make_class
from .test_program_safety import ChargeAtTheSuit

#: Thirty seconds of warm-up: the clients' set intensity climbs 1 mA every 0.25 s (S2) to
#: the 120 mA asked, so the narrow exercise asks for 120 mA from its first tick
#: (no ramp): 54 µC per phase if the suit still applied 450 µs.
WIDE_THEN_NARROW = """\
name: Program change over the air
programs:
  wide: {frequency_hz: 85, pulse_width_us: 450, continuous: true, ramp_up_s: 0.5}
  narrow: {frequency_hz: 85, pulse_width_us: 100, continuous: true, ramp_up_s: 0}
phases:
  - {kind: warmup, duration: 31s}
  - kind: suit
    exercises:
      - {name: Wide, duration: 2s, program: wide, channels: {quads: 1.0}}
      - {name: Narrow, duration: 2s, program: narrow, channels: {quads: 1.0}}
  - {kind: stretch, duration: 1s}
"""
#: The caps at the quads for 120 mA asked: 45 µC / 450 µs = 100 mA; at 100 µs, the device's 120.
CAP_WIDE_MA, CAP_NARROW_MA = 100.0, 120.0
#: Plan time the narrow exercise ends at, s.
NARROW_ENDS_S = 35.0


def set_program(pulse_width_us: int | None = None) -> Callable[[bytes], bool]:
    """A `Loss.matches` for SET_PROGRAM frames (to this pulse width, if given)."""

    def matches(value: bytes) -> bool:
        try:
            frame = decode_control(value)
        except RemoteProtocolError:
            return False  # a status notification, or anything else
        return isinstance(frame, SetProgram) and pulse_width_us in (None, frame.pulse_width_us)

    return matches


@dataclass(frozen=True)
class Tick:
    """One tick of one client, as the engine and the suit stood after it."""

    t: float
    plan_t: float
    cap_mA: float
    wanted: tuple[int, int] | None
    confirmed_us: int | None
    pending: bool
    applied_mA: float
    suit_us: int


def ble_class(
    n: int, losses: list[Loss]
) -> tuple[SimulatedClass, ChargeAtTheSuit, list[list[Tick]]]:
    sc, _ = make_class(n, WIDE_THEN_NARROW, intensity_mA=120.0, body=False, link="ble")
    assert sc.room is not None and sc.radio is not None  # bumble on the radio model
    sc.room.losses.extend(losses)
    for s in sc.suits:
        assert isinstance(s.firmware, SuitFirmware)
        s.firmware.charge_limit_uC = math.inf  # the suit's own clamp off: see the module doc
    watch = ChargeAtTheSuit(sc.suits)
    ticks: list[list[Tick]] = [[] for _ in range(n)]

    def sample(now: float) -> None:
        for i, (d, s) in enumerate(zip(sc.session.drivers, sc.suits, strict=True)):
            c = d.connection
            ticks[i].append(
                Tick(
                    now,
                    sc.session.clock.plan_time(now),
                    float(sc.session.caps[i, QUADS]),
                    c.wanted,
                    None if c.confirmed is None else c.confirmed.pulse_width_us,
                    c.pending is not None,
                    float(s.firmware.applied_mA[QUADS]),
                    int(s.firmware.pulse_width_us),
                )
            )

    sc.session.tick_observers.append(sample)
    sc.session.tick_observers.append(watch.tick)
    return sc, watch, ticks


def held_then_confirmed(ticks: list[Tick], not_before: float) -> tuple[list[Tick], float]:
    """The ticks from the change to 100 µs until the suit confirmed it, and when it did."""
    change = next(k for k, x in enumerate(ticks) if x.wanted == (85, 100))
    done = next((k for k, x in enumerate(ticks) if k > change and x.confirmed_us == 100), None)
    assert done is not None, "the suit never confirmed the 100 µs program"
    assert ticks[done].t > not_before  # confirmed only after the loss: SET_PROGRAM went again
    return ticks[change:done], ticks[done].t


async def test_a_40ms_loss_that_begins_with_the_set_program_keeps_each_phase_under_45_uC(
    autojump_clock: trio.testing.MockClock,
) -> None:
    loss = Loss(matches=set_program(100), for_s=0.04, blackout=True)
    async with trio_asyncio.open_loop():
        sc, watch, ticks = ble_class(1, [loss])
        assert await sc.run() == "finished"
    fw = sc.suits[0].firmware
    # the loss happened as planned: it began with the SET_PROGRAM and took everything for 40 ms
    assert loss.opened_at is not None and loss.lost >= 3
    assert set_program(100)(loss.lost_values[0] or b"")
    assert any(v is not None and v[0] == 0x21 for v in loss.lost_values)  # levels too
    # S1 at the suit, at its own active pulse width, at every change of its outputs
    assert watch.worst_uC <= CHARGE_PER_PHASE_MAX_UC + 1e-9, watch.where
    assert float(np.max(fw.max_uC_per_phase)) <= CHARGE_PER_PHASE_MAX_UC + 1e-9
    # until the suit confirmed 100 µs: the lower cap, and never more at the suit
    held, confirmed_at = held_then_confirmed(ticks[0], loss.opened_at + loss.for_s)
    assert held and all(x.cap_mA == CAP_WIDE_MA for x in held)
    assert all(x.applied_mA <= CAP_WIDE_MA for x in held)
    assert all(x.suit_us == 450 for x in held if x.t < loss.opened_at + loss.for_s)
    # the program confirmed afterwards: the narrow exercise runs at 120 mA, 100 µs
    after = [x for x in ticks[0] if x.t >= confirmed_at and x.plan_t < NARROW_ENDS_S]
    assert after and all(x.cap_mA == CAP_NARROW_MA for x in after)
    assert max(x.applied_mA for x in after) == 120.0 and (fw.frequency_hz, fw.pulse_width_us) == (85, 100)
    assert not sc.session.events.of_kind("program_unconfirmed")
    assert not sc.session.events.of_kind("suit_clamped")
