"""The engine's stop paths, pinned one by one (`make mutation` mutates them): how each ending
sets the state, the message and the return value; every suit stopped and every output recorded
at zero; the e-stop announced once; the links closed."""

from __future__ import annotations

import numpy as np
import trio
import trio.testing

from sim.faults import parse_faults
from suit_controller.cli.simclass import SimulatedClass
from suit_controller.commands import EmergencyStop, Reset, Stop
from suit_controller.driver import LinkState
from suit_controller.protocol import SuitState
from suit_controller.session import ClassState

from .simclass_helpers import SHORT, short_plan

LONG = SHORT.replace("duration: 40s", "duration: 5m")


def ended(sc: SimulatedClass) -> list[str]:
    return [e.message for e in sc.session.events.events if e.kind == "ended"]


def every_suit_stopped(sc: SimulatedClass) -> bool:
    return all(
        s.firmware.state is SuitState.STOPPED and not s.firmware.applied_mA.any() for s in sc.suits
    )


async def test_a_class_that_runs_to_its_end_is_finished(
    autojump_clock: trio.testing.MockClock,
) -> None:
    sc = SimulatedClass(short_plan(), 2, intensity_mA=20.0, body=False)
    assert await sc.run() == "finished"
    s = sc.session
    assert s.ending == "finished" and s.state is ClassState.FINISHED
    assert ended(sc) == ["class finished"]
    assert every_suit_stopped(sc) and not s.output_mA.any()
    assert all(d.state is LinkState.CLOSED for d in s.drivers)


async def test_a_stopped_class_and_an_estopped_one_end_stopped(
    autojump_clock: trio.testing.MockClock,
) -> None:
    for estop_first, ending in ((False, "stopped"), (True, "estopped")):
        sc = SimulatedClass(short_plan(LONG), 2, intensity_mA=20.0, body=False)
        returned: list[str] = []

        async def run_session(
            task_status: trio.TaskStatus[object],
            sc: SimulatedClass = sc,
            returned: list[str] = returned,
        ) -> None:
            returned.append(await sc.session.run(task_status=task_status))

        async with trio.open_nursery() as nursery:
            for suit in sc.suits:
                await nursery.start(suit.run)
            session = await nursery.start(run_session)
            await trio.sleep(20.0)
            assert session.output_mA.any()  # stimulating
            if estop_first:
                await session.emergency_stop()
            assert (await session.execute(Stop(), "trainer")).ok
            await session.closed.wait()
            await trio.sleep(1.0)
            assert returned == [ending]  # what `run` returns
            assert session.ending == ending and session.state is ClassState.STOPPED
            assert ended(sc) == [f"class {ending}"]
            assert every_suit_stopped(sc) and not session.output_mA.any()
            nursery.cancel_scope.cancel()


async def test_an_interrupted_class_stops_every_suit_and_says_so(
    autojump_clock: trio.testing.MockClock,
) -> None:
    sc = SimulatedClass(short_plan(LONG), 2, intensity_mA=20.0, body=False)
    async with trio.open_nursery() as suits:
        for suit in sc.suits:
            await suits.start(suit.run)
        async with trio.open_nursery() as nursery:
            await nursery.start(sc.session.run)
            await trio.sleep(20.0)
            assert sc.session.output_mA.any()
            nursery.cancel_scope.cancel()  # Ctrl-C, a signal, a crash beside the class
        assert sc.session.ending == "interrupted" and sc.session.state is ClassState.STOPPED
        assert ended(sc) == ["class interrupted: every suit told to stop"]
        assert every_suit_stopped(sc) and not sc.session.output_mA.any()
        suits.cancel_scope.cancel()


async def test_an_estop_is_announced_once_and_zeroes_every_output_exactly(
    autojump_clock: trio.testing.MockClock,
) -> None:
    sc = SimulatedClass(short_plan(LONG), 2, intensity_mA=20.0, body=False)
    async with trio.open_nursery() as nursery:
        for suit in sc.suits:
            await nursery.start(suit.run)
        session = await nursery.start(sc.session.run)
        await trio.sleep(20.0)
        estops = lambda: [e for e in session.events.events if e.kind == "estop"]  # noqa: E731
        await session.emergency_stop()
        await session.emergency_stop()  # again, already latched: one announcement
        assert len(estops()) == 1 and session.state is ClassState.ESTOPPED
        assert np.array_equal(session.output_mA, np.zeros_like(session.output_mA))
        assert every_suit_stopped(sc)
        assert (await session.execute(Reset(), "trainer")).ok
        assert (await session.execute(EmergencyStop(), "trainer")).ok
        assert len(estops()) == 2
        nursery.cancel_scope.cancel()


async def test_a_lost_suit_is_recorded_at_zero_and_only_its_client(
    autojump_clock: trio.testing.MockClock,
) -> None:
    sc = SimulatedClass(
        short_plan(LONG),
        2,
        intensity_mA=20.0,
        body=False,
        faults=parse_faults("drop:client=2,at=20s,for=30s"),
    )
    async with trio.open_nursery() as nursery:
        nursery.start_soon(sc.run)
        await trio.sleep(21.0)
        others = []
        for _ in range(20):  # through a contraction of the others
            await trio.sleep(0.5)
            out = sc.session.output_mA
            assert np.array_equal(out[1], np.zeros_like(out[1]))  # exactly zero, not -1 or 1
            others.append(out[0].any())
        assert any(others)  # the other client goes on
        nursery.cancel_scope.cancel()


async def test_a_lost_link_records_that_client_at_zero_at_once_and_no_other(
    autojump_clock: trio.testing.MockClock,
) -> None:
    sc = SimulatedClass(short_plan(LONG), 2, intensity_mA=20.0, body=False)
    async with trio.open_nursery() as nursery:
        for suit in sc.suits:
            await nursery.start(suit.run)
        session = await nursery.start(sc.session.run)
        await trio.sleep(20.0)
        for _ in range(100):  # until both clients contract
            if session.output_mA.any(axis=1).all():
                break
            await trio.sleep(0.1)
        before = session.output_mA.copy()
        assert before[0].any() and before[1].any()
        session._lost_for(1)()  # what the driver calls when the link drops, between two ticks
        assert np.array_equal(session.output_mA[1], np.zeros_like(before[1]))
        assert np.array_equal(session.output_mA[0], before[0])  # the other client untouched
        nursery.cancel_scope.cancel()
