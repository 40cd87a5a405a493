"""Failure class 2 of issue 12: a lost SET_PROGRAM must never put too much charge through a client.

Charge per phase is checked AT THE SUIT, from what the simulated firmware
applies and its own active pulse width, at every change of its outputs.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import trio
import trio.testing

from channels.limits import CHARGE_PER_PHASE_MAX_UC
from sim.faults import parse_faults
from sim.suit import SimulatedSuit

from .simclass_helpers import QUADS, make_class

TWO_PROGRAMS = """\
name: Program change
programs:
  wide: {{frequency_hz: 85, pulse_width_us: {first}, continuous: true, ramp_up_s: 0.5}}
  narrow: {{frequency_hz: 85, pulse_width_us: {second}, continuous: true, ramp_up_s: 0.5}}
phases:
  - {{kind: warmup, duration: 10s}}
  - kind: suit
    exercises:
      - {{name: First, duration: 40s, program: wide, channels: {{quads: 1.0}}}}
      - {{name: Second, duration: 40s, program: narrow, channels: {{quads: 1.0}}}}
  - {{kind: stretch, duration: 10s}}
"""


def many_changes(n: int) -> str:
    ex = "\n".join(
        f"      - {{name: E{i}, duration: 4s, program: {'wide' if i % 2 else 'narrow'}, "
        "channels: {quads: 1.0, glutes: 1.0}}"
        for i in range(n)
    )
    return (
        "name: Many changes\n"
        "programs:\n"
        "  wide: {frequency_hz: 85, pulse_width_us: 450, continuous: true, ramp_up_s: 0.2}\n"
        "  narrow: {frequency_hz: 60, pulse_width_us: 100, continuous: true, ramp_up_s: 0.2}\n"
        "phases:\n"
        "  - {kind: warmup, duration: 30s}\n"
        "  - kind: suit\n"
        "    exercises:\n" + ex + "\n"
        "  - {kind: stretch, duration: 5s}\n"
    )


class ChargeAtTheSuit:
    """Watches every suit's firmware: the highest charge per phase it ever applied, µC."""

    def __init__(self, suits: list[SimulatedSuit]) -> None:
        self.worst_uC = 0.0
        self.where: Any = None
        for s in suits:
            before = s.on_change

            def check(suit: SimulatedSuit, before: Any = before) -> None:
                self.sample(suit)
                if before is not None:
                    before(suit)

            s.on_change = check
        self.suits = suits

    def sample(self, suit: SimulatedSuit) -> None:
        fw = suit.firmware
        q = float(np.max(fw.applied_mA * np.asarray(fw.pulse_width_us, dtype=float))) / 1000.0
        if q > self.worst_uC:
            self.worst_uC = q
            self.where = (trio.current_time(), suit.address, fw.applied_mA.max(), fw.pulse_width_us)

    def tick(self, now: float) -> None:
        for s in self.suits:
            self.sample(s)


@pytest.mark.parametrize(("first", "second"), [(450, 100), (100, 450)])
async def test_a_40ms_radio_loss_at_a_program_change_keeps_charge_at_the_suit_under_the_cap(
    autojump_clock: trio.testing.MockClock, first: int, second: int
) -> None:
    faults = parse_faults("loss:client=all,at=49.99s,for=0.04s,pct=100")
    sc, _ = make_class(
        2,
        TWO_PROGRAMS.format(first=first, second=second),
        intensity_mA=120.0,
        faults=faults,
        body=False,
    )
    watch = ChargeAtTheSuit(sc.suits)
    sc.session.tick_observers.append(watch.tick)
    assert await sc.run() == "finished"
    assert watch.worst_uC <= CHARGE_PER_PHASE_MAX_UC + 1e-9, watch.where
    # the controller itself never asked for too much: the firmware's clamp never acted
    assert all(s.firmware.charge_clamps == 0 for s in sc.suits)
    # the class went on: SET_PROGRAM was sent again until the suits applied the second program
    assert all(s.firmware.program.pulse_width_us == second for s in sc.suits)
    assert not sc.session.events.of_kind("program_unconfirmed")
    hi = 45_000 / max(first, second)
    assert all(s.firmware.max_seen_mA[QUADS] >= min(hi, 100.0) for s in sc.suits)


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_random_loss_over_many_program_changes_keeps_charge_under_the_cap(
    autojump_clock: trio.testing.MockClock, seed: int
) -> None:
    sc, _ = make_class(
        3,
        many_changes(40),
        intensity_mA=120.0,
        seed=seed,
        body=False,
        faults=parse_faults("loss:client=all,pct=5"),
    )
    watch = ChargeAtTheSuit(sc.suits)
    sc.session.tick_observers.append(watch.tick)
    assert await sc.run() == "finished"
    assert watch.worst_uC <= CHARGE_PER_PHASE_MAX_UC + 1e-9, watch.where
    assert all(s.firmware.charge_clamps == 0 for s in sc.suits)
    assert not sc.session.events.of_kind("program_unconfirmed")
    assert all(s.firmware.program.pulses == (85, 450) for s in sc.suits)  # the last exercise


NEVER_CONFIRMED = """\
name: Wide pulses
programs:
  wide: {frequency_hz: 85, pulse_width_us: 450, continuous: true, ramp_up_s: 0.5}
phases:
  - {kind: warmup, duration: 40s}
  - kind: suit
    exercises:
      - {name: Squat, duration: 20s, program: wide, channels: {quads: 1.0}}
  - {kind: stretch, duration: 10s}
"""


async def test_a_program_never_confirmed_holds_the_lower_cap_then_zero_and_tells_the_trainer(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Class 2, (d): a suit firmware that ignores SET_PROGRAM keeps its power-on 350 µs."""
    sc, _ = make_class(2, NEVER_CONFIRMED, intensity_mA=120.0, body=False)
    broken, fine = sc.suits
    broken.firmware.ignores_programs = True
    watch = ChargeAtTheSuit(sc.suits)
    seen: dict[float, tuple[float, float, float]] = {}

    def sample(now: float) -> None:
        seen[round(now, 3)] = (
            float(sc.session.caps[0, QUADS]),
            float(broken.firmware.applied_mA[QUADS]),
            float(fine.firmware.applied_mA[QUADS]),
        )

    sc.session.tick_observers.append(sample)
    assert await sc.run() == "finished"
    assert watch.worst_uC <= CHARGE_PER_PHASE_MAX_UC + 1e-9
    # the lower cap: 100 mA (45 µC at 450 µs) rather than 120 mA (the 350 µs cap)
    first_second = [v for t, v in seen.items() if 40.05 <= t < 40.95]
    assert {cap for cap, _, _ in first_second} == {100.0}
    assert max(applied for _, applied, _ in first_second) == 100.0
    assert broken.firmware.program.pulses == (85, 350)
    # after a second: held at zero for the rest of the exercise; the other client goes on
    later = [v for t, v in seen.items() if 41.05 <= t < 60.0]
    assert all(cap == 0.0 and applied == 0.0 for cap, applied, _ in later)
    assert all(other == 100.0 for _, _, other in later[40:])
    [told] = sc.session.events.of_kind("program_unconfirmed")
    assert told.client == "client-1" and 40.99 <= told.t <= 41.1
    assert "has not confirmed its program (85 Hz, 450 µs)" in told.message
    assert "held at zero" in told.message
    assert fine.firmware.program.pulses == (85, 450)
