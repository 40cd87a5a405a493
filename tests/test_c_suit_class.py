"""A class over Bluetooth LE (bleak on bumble) whose simulated suits run the C core (firmware/)."""

from __future__ import annotations

import pytest
import trio
import trio.testing
import trio_asyncio

from sim.c_firmware import CSuitFirmware, unavailable_reason
from sim.faults import parse_faults
from sim.simclass import SimulatedClass
from suit_controller.protocol import SuitState

from .simclass_helpers import QUADS, short_plan

SHORTER = """\
name: Shorter
programs:
  s: {frequency_hz: 85, pulse_width_us: 350, impulse_s: 4, pause_s: 4, ramp_up_s: 0.5, ramp_down_s: 0.3}
phases:
  - {kind: warmup, duration: 5s}
  - kind: suit
    exercises:
      - {name: Squat, duration: 24s, program: s, channels: {quads: 1.0, glutes: 1.0}}
  - {kind: stretch, duration: 5s}
"""

_why = unavailable_reason()
pytestmark = pytest.mark.skipif(_why is not None, reason=f"C firmware unavailable: {_why}")


async def test_a_class_over_bumble_runs_on_the_c_core(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with trio_asyncio.open_loop():
        sc = SimulatedClass(
            short_plan(SHORTER),
            2,
            intensity_mA=20.0,
            body=False,
            link="ble",
            firmware="c",
            faults=parse_faults("drop:client=2,at=7s,for=2s"),
        )
        assert all(isinstance(s.firmware, CSuitFirmware) for s in sc.suits)
        assert await sc.run() == "finished"
    rec = sc.record()
    first, second = rec["clients"]
    assert first["channels"]["quads"]["contractions"] == 3
    assert first["channels"]["quads"]["max_mA"] == 20.0
    assert first["watchdog_trips"] == 0
    # the dropped suit's C watchdog zeroed it; it came back and ramped up again
    assert second["watchdog_trips"] == 1 and second["channels"]["quads"]["max_mA"] == 20.0
    for suit in sc.suits:
        fw = suit.firmware
        assert isinstance(fw, CSuitFirmware)
        assert fw.state is SuitState.STOPPED and not fw.applied_mA.any()
        assert fw.charge_clamps == 0 and fw.bad_frames == 0
        assert fw.program.pulse_width_us == 350  # the workout's program, confirmed
    assert sc.suits[0].firmware.totals(sc.ended_at)[QUADS].stim_s > 0


def test_the_soak_runs_on_the_c_core() -> None:
    from benchmarks.soak import soak

    tally = soak(runs=4, seed=3, firmware="c")
    assert tally.runs == 4 and sum(tally.faults.values()) > 0 and tally.checks > 1000
    assert tally.violations == []
