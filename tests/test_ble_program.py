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
import pytest
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
#: Plan times the wide exercise starts and the narrow one ends at, s.
WIDE_STARTS_S, NARROW_ENDS_S = 31.0, 35.0


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


def test_a_loss_takes_what_its_window_and_match_say() -> None:
    """The radio model's loss rule alone (no bumble): window, match, blackout, suit."""

    def is_x(value: bytes) -> bool:
        return value.startswith(b"x")

    one = Loss(matches=is_x)
    assert not one.takes("AA", b"y", 1.0) and one.opened_at is None
    assert one.takes("AA", b"x1", 2.0) and one.opened_at == 2.0
    assert not one.takes("AA", b"x2", 2.001)  # for_s=0: the one packet that opened it
    burst = Loss(matches=is_x, for_s=0.04, blackout=True)
    assert not burst.takes("AA", b"y", 1.0)  # nothing lost before the match opens it
    assert burst.takes("AA", b"x", 5.0) and burst.takes("AA", b"y", 5.039)
    assert burst.takes("BB", None, 5.02)  # every connection, both directions, any packet
    assert not burst.takes("AA", b"x", 5.04) and burst.lost == 3
    timed = Loss(at_s=10.0, for_s=0.5, blackout=True, suit="aa")
    assert not timed.takes("AA", b"y", 9.99) and not timed.takes("BB", b"y", 10.1)
    assert timed.takes("AA", b"y", 10.2) and timed.opened_at == 10.0
    assert not timed.takes("AA", b"y", 10.5)
    forever = Loss(matches=is_x, for_s=math.inf, suit="AA")
    assert forever.takes("AA", b"x", 1.0) and forever.takes("AA", b"x", 1e6)
    assert not forever.takes("AA", b"y", 2.0) and not forever.takes("BB", b"x", 2.0)
    assert forever.lost_values == [b"x", b"x"]
    with pytest.raises(ValueError, match="opens at a time"):
        Loss(for_s=1.0)
    with pytest.raises(ValueError, match="0 s or more"):
        Loss(at_s=1.0, for_s=math.nan)


@pytest.mark.parametrize("blackout", [True, False], ids=["40ms-blackout", "the-set-program-only"])
async def test_a_set_program_lost_on_the_air_keeps_each_phase_at_the_suit_under_45_uC(
    autojump_clock: trio.testing.MockClock, blackout: bool
) -> None:
    """450 → 100 µs at 120 mA: a 40 ms loss of everything that begins with the SET_PROGRAM,
    or that SET_PROGRAM alone (the levels around it arrive)."""
    loss = Loss(matches=set_program(100), for_s=0.04 if blackout else 0.0, blackout=blackout)
    async with trio_asyncio.open_loop():
        sc, watch, ticks = ble_class(1, [loss])
        assert await sc.run() == "finished"
    fw = sc.suits[0].firmware
    # the loss happened as planned: it began with the SET_PROGRAM to 100 µs
    assert loss.opened_at is not None and set_program(100)(loss.lost_values[0] or b"")
    if loss.blackout:  # and took everything for 40 ms: levels too (SET_LEVELS is type 1)
        assert loss.lost >= 3 and any(v is not None and v[0] == 0x21 for v in loss.lost_values)
    else:
        assert loss.lost == 1
    # S1 at the suit, at its own active pulse width, at every change of its outputs
    assert watch.worst_uC <= CHARGE_PER_PHASE_MAX_UC + 1e-9, watch.where
    assert float(np.max(fw.max_uC_per_phase)) <= CHARGE_PER_PHASE_MAX_UC + 1e-9
    # until the suit confirmed 100 µs: the lower cap, and never more at the suit
    held, confirmed_at = held_then_confirmed(ticks[0], loss.opened_at + loss.for_s)
    assert held and all(x.cap_mA == CAP_WIDE_MA for x in held)
    assert all(x.applied_mA <= CAP_WIDE_MA for x in held)
    assert held[0].applied_mA == CAP_WIDE_MA and held[0].suit_us == 450  # 45 µC, not 54
    # the program confirmed afterwards: the narrow exercise runs at 120 mA, 100 µs
    after = [x for x in ticks[0] if x.t >= confirmed_at and x.plan_t < NARROW_ENDS_S]
    assert after and all(x.cap_mA == CAP_NARROW_MA for x in after)
    assert max(x.applied_mA for x in after) == 120.0
    assert (fw.frequency_hz, fw.pulse_width_us) == (85, 100)
    assert not sc.session.events.of_kind("program_unconfirmed")
    assert not sc.session.events.of_kind("suit_clamped")


async def test_a_program_the_air_never_delivers_holds_the_lower_cap_then_zero_and_says_why(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Every SET_PROGRAM to the first suit is lost: it keeps its power-on 85 Hz, 350 µs."""
    async with trio_asyncio.open_loop():
        sc, watch, ticks = ble_class(2, [])
        assert sc.room is not None
        loss = Loss(matches=set_program(), for_s=math.inf, suit=sc.room.addresses[0])
        sc.room.losses.append(loss)
        assert await sc.run() == "finished"
    lost, fine = sc.suits
    assert loss.lost >= 10 and (lost.firmware.frequency_hz, lost.firmware.pulse_width_us) == (
        85,
        350,
    )
    assert watch.worst_uC <= CHARGE_PER_PHASE_MAX_UC + 1e-9, watch.where
    wide = [x for x in ticks[0] if WIDE_STARTS_S <= x.plan_t < WIDE_STARTS_S + 2.0]
    first_second = [x for x in wide if x.plan_t < WIDE_STARTS_S + 0.95]
    # the lower cap: 100 mA (45 µC at 450 µs) rather than 120 mA (the 350 µs cap)
    assert first_second and {x.cap_mA for x in first_second} == {CAP_WIDE_MA}
    assert max(x.applied_mA for x in first_second) == CAP_WIDE_MA
    # after a second unconfirmed: held at zero; the other client goes on
    later = [x for x in wide if x.plan_t >= WIDE_STARTS_S + 1.05]
    assert later and all(x.cap_mA == 0.0 and x.applied_mA == 0.0 for x in later)
    other = [x for x in ticks[1] if WIDE_STARTS_S + 1.05 <= x.plan_t < WIDE_STARTS_S + 2.0]
    assert all(x.applied_mA == CAP_WIDE_MA and x.suit_us == 450 for x in other)
    # the trainer is told why, once per program, about that client only
    told = sc.session.events.of_kind("program_unconfirmed")
    assert [e.client for e in told] == ["client-1", "client-1"]
    assert "has not confirmed its program (85 Hz, 450 µs)" in told[0].message
    assert "(85 Hz, 100 µs)" in told[1].message
    assert all("held at zero" in e.message for e in told)
    plan_of = [e.t for e in sc.session.events.of_kind("segment") if "Wide" in e.message]
    assert len(plan_of) == 1 and 0.99 <= told[0].t - plan_of[0] <= 1.1
    assert (fine.firmware.frequency_hz, fine.firmware.pulse_width_us) == (85, 100)
