"""How the driver writes frames: a write that never returns (SEND_TIMEOUT_S), a write that fails
at once over the in-process link (sent from the tick), and the stop path's one pass."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import trio
import trio.testing

from sim.simclass import SimulatedClass
from suit_controller.commands import EmergencyStop
from suit_controller.driver import SEND_TIMEOUT_S, LinkState
from suit_controller.protocol import SuitState

from .simclass_helpers import SHORT, short_plan

LONG = SHORT.replace("duration: 40s", "duration: 5m")


async def until(check: Callable[[], object], within: float = 30.0, step: float = 0.05) -> None:
    """Poll (in virtual time) every `step` s until `check()` holds; TooSlowError after `within`."""
    with trio.fail_after(within):
        while not check():  # noqa: ASYNC110 - polls the engine's and the suits' state
            await trio.sleep(step)


async def both_contract(sc: SimulatedClass) -> None:
    """Wait until both clients are stimulated."""
    await until(lambda: sc.session.output_mA.any(axis=1).all())


def lost_messages(sc: SimulatedClass) -> list[str]:
    return [e.message for e in sc.session.events.events if e.kind == "link_lost"]


async def test_a_write_that_never_returns_is_given_up_after_the_send_timeout(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A link whose send blocks: after SEND_TIMEOUT_S (not before) the driver takes the link
    as lost; that client is held at zero, its suit stops by its watchdog, the other goes on,
    and the link comes back once writes complete again."""
    sc = SimulatedClass(short_plan(LONG), 2, intensity_mA=20.0, body=False, faulty=True)
    stuck, driver = sc.faulty_links[1], sc.session.drivers[1]
    async with trio.open_nursery() as nursery:
        nursery.start_soon(sc.run)
        await trio.sleep(15.0)
        await both_contract(sc)
        assert not driver.sends_at_once  # the FaultyLink goes through the sender task
        stuck.hang_sends()
        await until(lambda: driver.state is not LinkState.CONNECTED, within=5, step=0.01)
        assert stuck.hung_since is not None
        given_up_after = trio.current_time() - stuck.hung_since
        assert SEND_TIMEOUT_S <= given_up_after < SEND_TIMEOUT_S + 0.02
        assert driver.drops == 1
        assert any(
            f"a write took longer than {SEND_TIMEOUT_S} s" in m and "SIM-02" in m
            for m in lost_messages(sc)
        )
        assert not sc.session.output_mA[1].any()  # the engine holds that client at zero
        assert not sc.session.board.set_mA[1].any()  # and ramps it up from zero later
        await trio.sleep(0.3)  # nothing reached the suit: its own watchdog stopped it (S4)
        assert sc.suits[1].firmware.state is SuitState.WATCHDOG
        assert not sc.suits[1].firmware.applied_mA.any()
        others = []
        for _ in range(40):  # the other client goes on (S9)
            await trio.sleep(0.25)
            others.append(sc.session.output_mA[0].any())
        assert any(others)
        assert sc.session.drivers[0].drops == 0
        stuck.release_sends()
        await until(lambda: driver.reconnects and sc.session.output_mA[1].any())
        nursery.cancel_scope.cancel()


async def test_a_write_that_fails_from_the_tick_loses_only_that_link(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Over the in-process link frames go out from the tick itself; a write that fails there
    is reported by the driver's task as a lost link, and only that client stops."""
    sc = SimulatedClass(short_plan(LONG), 2, intensity_mA=20.0, body=False)
    driver = sc.session.drivers[1]
    assert driver.sends_at_once
    async with trio.open_nursery() as nursery:
        nursery.start_soon(sc.run)
        await trio.sleep(15.0)
        await both_contract(sc)
        sc.suits[1].reachable = False  # the next write raises ConnectionError at the suit
        await until(lambda: driver.state is not LinkState.CONNECTED, within=1, step=0.01)
        assert driver.drops == 1
        assert any("SIM-02" in m for m in lost_messages(sc)), lost_messages(sc)
        assert not sc.session.output_mA[1].any()
        await trio.sleep(2.0)
        assert sc.session.drivers[0].state is LinkState.CONNECTED
        assert sc.session.output_mA[0].any() or sc.session.board.set_mA[0].any()
        sc.suits[1].reachable = True
        await until(lambda: driver.reconnects and sc.session.output_mA[1].any())
        nursery.cancel_scope.cancel()


async def test_an_estop_zeroes_every_in_process_suit_before_it_yields(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """The stop path writes STOP_ALL to every suit whose link writes at once, in one pass:
    once `emergency_stop` returns, every suit has stopped and nothing ran in between."""
    sc = SimulatedClass(short_plan(LONG), 4, intensity_mA=20.0, body=False)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(sc.run)
        await trio.sleep(15.0)
        await until(lambda: all(s.firmware.applied_mA.any() for s in sc.suits))
        ticks = sc.session.ticks
        sends_before = [s.frames_received for s in sc.suits]
        await sc.session.execute(EmergencyStop(), source="test")
        assert sc.session.ticks == ticks  # no tick (no other task) ran before every suit stopped
        assert [s.frames_received for s in sc.suits] == [n + 1 for n in sends_before]
        assert all(s.firmware.state is SuitState.STOPPED for s in sc.suits)
        assert not any(s.firmware.applied_mA.any() for s in sc.suits)
        assert np.array_equal(sc.session.output_mA, np.zeros_like(sc.session.output_mA))
        nursery.cancel_scope.cancel()
