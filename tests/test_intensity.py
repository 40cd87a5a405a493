"""S2: set intensities follow their targets in 1 mA steps, up and DOWN, on the board and in a class.

A trainer who turns a client down must see the output go down at once (one
1 mA step per tick), and a trainer who turns a client up must see it rise one
1 mA step every 0.25 s, starting at once. These pin the numbers of
`IntensityBoard` and check them again through the real engine against what the
simulated suits apply.
"""

from __future__ import annotations

import numpy as np
import pytest
import trio
import trio.testing

from channels.limits import (
    DEVICE_MAX_MA,
    INTENSITY_RISE_STEP_S,
    INTENSITY_STEP_MAX_MA,
    LEVEL_STEP_MA,
)
from suit_controller.commands import SetIntensity
from suit_controller.intensity import IntensityBoard

from .simclass_helpers import QUADS, make_class


def board(targets: list[float], start: list[float] | None = None) -> IntensityBoard:
    """One client per value, one channel each; set intensities at `start` (default zero)."""
    b = IntensityBoard(np.array([targets]).T, np.full((len(targets), 1), 120.0))
    if start is not None:
        b.set_mA[:, 0] = start
    return b


def test_the_numbers_of_s2_are_the_standards() -> None:
    # DIN 33961-5: 1 mA steps; one step up every 0.25 s; the protocol's 0.5 mA resolution
    assert INTENSITY_STEP_MAX_MA == 1.0
    assert INTENSITY_RISE_STEP_S == 0.25
    assert LEVEL_STEP_MA == 0.5
    assert DEVICE_MAX_MA == 120.0


def test_a_target_is_reached_in_1_mA_steps_one_every_quarter_second() -> None:
    b = board([3.0])
    seen = []
    for k in range(10):  # ticks every 0.125 s, exact in binary
        b.step(k * 0.125)
        seen.append(float(b.set_mA[0, 0]))
    assert seen == [1.0, 1.0, 2.0, 2.0, 3.0, 3.0, 3.0, 3.0, 3.0, 3.0]


def test_the_first_step_up_is_immediate_and_the_next_exactly_one_rise_step_later() -> None:
    b = board([5.0])
    b.step(10.0)
    assert b.set_mA[0, 0] == 1.0
    b.step(10.0 + INTENSITY_RISE_STEP_S - 0.001)
    assert b.set_mA[0, 0] == 1.0
    b.step(10.25)  # exactly 0.25 s later: the next step
    assert b.set_mA[0, 0] == 2.0


def test_the_last_step_up_stops_at_a_fractional_target_and_never_passes_it() -> None:
    b = board([2.5])
    seen = []
    for k in range(12):
        b.step(k * 0.125)
        seen.append(float(b.set_mA[0, 0]))
    assert seen == [1.0, 1.0, 2.0, 2.0, 2.5, 2.5, 2.5, 2.5, 2.5, 2.5, 2.5, 2.5]


def test_the_first_step_never_waits_whatever_the_clocks_origin() -> None:
    # Trio's clocks may start anywhere; a board, a held or a restarted client rises at once
    b = board([5.0, 5.0])
    b.step(-100.0)
    assert b.set_mA[:, 0].tolist() == [1.0, 1.0]
    b.hold_at_zero(np.array([True, False]))
    b.step(-99.9)
    assert b.set_mA[:, 0].tolist() == [1.0, 1.0]
    b.restart_from_zero(1)
    b.step(-99.8)
    assert b.set_mA[:, 0].tolist() == [1.0, 1.0]


def test_lowering_a_target_steps_the_set_intensity_down_every_tick() -> None:
    b = board([20.0], start=[20.0])
    b.target_mA[0, 0] = 16.5
    seen = []
    for _ in range(6):  # the same instant: stepping down never waits for the rise clock
        b.step(3.0)
        seen.append(float(b.set_mA[0, 0]))
    assert seen == [19.0, 18.0, 17.0, 16.5, 16.5, 16.5]


def test_a_small_decrease_takes_one_step() -> None:
    b = board([10.0], start=[10.0])
    b.target_mA[0, 0] = 9.5
    b.step(0.0)
    assert b.set_mA[0, 0] == 9.5


def test_a_target_reached_does_not_delay_the_next_rise() -> None:
    b = board([2.0])
    t = 0.0
    while t < 3.0:  # reach 2 mA at 0.25 s and stay there
        b.step(t)
        t += 0.125
    assert b.set_mA[0, 0] == 2.0
    b.target_mA[0, 0] = 4.0  # the trainer turns up: the next tick answers
    b.step(3.0)
    assert b.set_mA[0, 0] == 3.0


def test_up_and_down_at_once_on_different_clients() -> None:
    b = board([5.0, 2.0, 7.0], start=[0.0, 6.0, 7.0])
    b.step(0.0)
    assert b.set_mA[:, 0].tolist() == [1.0, 5.0, 7.0]
    b.step(0.1)
    assert b.set_mA[:, 0].tolist() == [1.0, 4.0, 7.0]


def test_targets_above_the_cap_are_held_at_the_cap() -> None:
    b = IntensityBoard(np.array([[30.0, 90.0]]), np.array([[50.0, 50.0]]))
    assert b.target_mA.tolist() == [[30.0, 50.0]]
    assert b.max_target_mA.tolist() == [[50.0, 50.0]]
    assert b.set_mA.tolist() == [[0.0, 0.0]]


def test_hold_at_zero_zeroes_only_those_clients_and_they_rise_again_at_once() -> None:
    b = board([5.0, 5.0])
    b.step(0.0)
    b.step(0.25)
    assert b.set_mA[:, 0].tolist() == [2.0, 2.0]
    b.hold_at_zero(np.array([True, False]))
    assert b.set_mA[:, 0].tolist() == [0.0, 2.0]
    b.step(0.3)  # the held client starts again from zero without waiting
    assert b.set_mA[:, 0].tolist() == [1.0, 2.0]
    b.hold_at_zero(np.array([False, False]))
    assert b.set_mA[:, 0].tolist() == [1.0, 2.0]


def test_restart_from_zero_one_client_or_all() -> None:
    b = board([4.0, 4.0])
    for t in (0.0, 0.25, 0.5):
        b.step(t)
    assert b.set_mA[:, 0].tolist() == [3.0, 3.0]
    b.restart_from_zero(1)
    assert b.set_mA[:, 0].tolist() == [3.0, 0.0]
    b.step(0.6)  # client 2 rises at once; client 1 waits for its 0.75 s step
    assert b.set_mA[:, 0].tolist() == [3.0, 1.0]
    b.restart_from_zero()
    assert b.set_mA[:, 0].tolist() == [0.0, 0.0]
    b.step(0.61)
    assert b.set_mA[:, 0].tolist() == [1.0, 1.0]


# -- through the engine, against the simulated suits -------------------------------------


async def test_turning_a_client_down_lowers_their_output_at_once_in_1_mA_steps(
    autojump_clock: trio.testing.MockClock,
) -> None:
    sc, hist = make_class(2)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(sc.run)
        await trio.sleep(11.0)  # mid-contraction, both clients at 20 mA on the quads
        assert [s.firmware.applied_mA[QUADS] for s in sc.suits] == [20.0, 20.0]
        turned_at = trio.current_time()
        result = await sc.session.execute(SetIntensity(client=1, mA=12.0), source="test")
        assert result.ok, result.message
        await trio.sleep(1.0)
        assert sc.suits[0].firmware.applied_mA[QUADS] == 12.0
        assert sc.suits[1].firmware.applied_mA[QUADS] == 20.0  # the other client is untouched
        nursery.cancel_scope.cancel()
    after = [
        (t, float(out[QUADS]))
        for t, out, _ in hist.changes[sc.suits[0].address]
        if turned_at <= t < turned_at + 0.9
    ]
    levels = [v for _, v in after]
    assert levels[0] == 19.0 and levels[-1] == 12.0
    steps = np.diff([20.0, *levels])
    assert all(-1.0 <= s < 0 for s in steps), levels  # down, never by more than 1 mA
    assert after[-1][0] - turned_at <= 8 / 40 + 1e-9  # 8 steps, one per 40 Hz tick


async def test_turning_a_client_up_raises_their_output_one_mA_every_quarter_second(
    autojump_clock: trio.testing.MockClock,
) -> None:
    sc, hist = make_class(1)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(sc.run)
        await trio.sleep(10.6)  # the contraction has ramped up to 20 mA
        assert sc.suits[0].firmware.applied_mA[QUADS] == 20.0
        turned_at = trio.current_time()
        assert (await sc.session.execute(SetIntensity(client=1, delta_mA=3.0))).ok
        await trio.sleep(1.0)
        assert sc.suits[0].firmware.applied_mA[QUADS] == 23.0
        nursery.cancel_scope.cancel()
    rises = [
        (t - turned_at, float(out[QUADS]))
        for t, out, _ in hist.changes[sc.suits[0].address]
        if turned_at <= t < turned_at + 0.9
    ]
    assert [v for _, v in rises] == [21.0, 22.0, 23.0]
    gaps = np.diff([t for t, _ in rises])
    assert gaps == pytest.approx([INTENSITY_RISE_STEP_S] * 2, abs=1 / 40 + 1e-9)
    assert rises[0][0] <= 1 / 40 + 1e-9  # the first step at the next tick
