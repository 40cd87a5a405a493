"""The engine's stop paths, pinned one by one (`make mutation` mutates them): how each ending
sets the state, the message and the return value; every suit stopped and every output recorded
at zero; the e-stop announced once; the links closed."""

from __future__ import annotations

import numpy as np
import pytest
import trio
import trio.testing

from sim.faults import parse_faults
from suit_controller.cli.simclass import SimulatedClass
from suit_controller.commands import CommandRefused, EmergencyStop, Reset, Stop
from suit_controller.driver import LinkState
from suit_controller.protocol import StopAll, SuitState, decode_control
from suit_controller.session import ClassSession, ClassState

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


async def _between_two_ticks_while_stimulating(session: ClassSession, ticks: list[float]) -> float:
    """Move to the middle of two ticks while some output is on; return the last tick's time."""
    period = 1.0 / session.rate_hz
    for _ in range(400):
        await trio.sleep_until(ticks[-1] + period * 1.5)  # the next tick, then half a period
        if session.output_mA.any():
            break
    assert session.output_mA.any() and ticks[-1] < trio.current_time() < ticks[-1] + period
    return ticks[-1]


async def test_an_estop_between_two_ticks_records_the_outputs_up_to_that_moment(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """The delivery totals (the client's record of time and charge) are settled at the e-stop's
    own moment: the half tick the outputs were on before it counts, the time after it does not."""
    sc = SimulatedClass(short_plan(LONG), 2, intensity_mA=20.0, body=False)
    async with trio.open_nursery() as nursery:
        for suit in sc.suits:
            await nursery.start(suit.run)
        session = await nursery.start(sc.session.run)
        ticks: list[float] = []
        session.tick_observers.append(ticks.append)
        await trio.sleep(20.0)
        last_tick = await _between_two_ticks_while_stimulating(session, ticks)
        on = session.output_mA > 0
        stim_s, charge_uC = session.totals.stim_s.copy(), session.totals.charge_uC.copy()
        held_s = trio.current_time() - last_tick
        await session.emergency_stop()
        await trio.sleep(1.0)  # forty ticks at zero: they add nothing
        assert len(ticks) > 30
        np.testing.assert_allclose(session.totals.stim_s, stim_s + on * held_s, rtol=0, atol=1e-9)
        assert (session.totals.charge_uC[on] > charge_uC[on]).all()
        assert np.array_equal(session.totals.charge_uC[~on], charge_uC[~on])
        nursery.cancel_scope.cancel()


async def test_an_estop_whose_caller_is_cancelled_that_moment_still_stops_every_suit(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """The console connection that carried the e-stop closes as it is carried out (its task
    is cancelled): the STOP_ALL still goes to every suit, and the trainer still sees it."""
    sc = SimulatedClass(short_plan(LONG), 2, intensity_mA=20.0, body=False)
    async with trio.open_nursery() as nursery:
        for suit in sc.suits:
            await nursery.start(suit.run)
        session = await nursery.start(sc.session.run)
        await trio.sleep(20.0)
        assert session.output_mA.any()
        assert not any(s.firmware.state is SuitState.STOPPED for s in sc.suits)
        with trio.CancelScope() as caller:
            caller.cancel()  # cancelled exactly while stopping
            await session.emergency_stop()
        assert every_suit_stopped(sc)  # STOPPED, not merely sent zeros
        assert [e.kind for e in session.events.events].count("estop") == 1
        nursery.cancel_scope.cancel()


async def test_a_stop_that_fails_on_a_suit_still_ends_as_stopped_not_interrupted(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A bug raises while the trainer's Stop sends a suit its STOP_ALL: the other suit is
    stopped all the same, the class ends at once and says what the trainer did ("class
    stopped", once), and its closing stop reaches the suit that failed. (Before, `_end` left
    before it set `_finished`: the class ticked on at zero in state STOPPED, refused another
    Stop and never closed until something cancelled it.)"""
    sc = SimulatedClass(short_plan(LONG), 2, intensity_mA=20.0, body=False, faulty=True)
    async with trio.open_nursery() as suits:
        for suit in sc.suits:
            await suits.start(suit.run)
        with trio.fail_after(60):  # the class closes on its own: nobody cancels it
            async with trio.open_nursery() as nursery:
                session = await nursery.start(sc.session.run)
                await trio.sleep(20.0)
                assert session.output_mA.any()
                link = sc.faulty_links[1]
                pass_on = link.send

                async def send(frame: bytes) -> None:  # the STOP_ALL fails, the levels go on
                    if isinstance(decode_control(frame), StopAll) and not link.raised:
                        link.fail_next_send(RuntimeError("a bug in the adapter"))
                    await pass_on(frame)

                link.send = send  # type: ignore[method-assign]
                with pytest.raises(RuntimeError, match="a bug in the adapter") as raised:
                    await session.execute(Stop(), "trainer")
                assert type(raised.value) is RuntimeError  # one suit's error, not a group
                assert link.raised == 1
                assert session.ending == "stopped" and session.ended
                assert ended(sc) == ["class stopped"]
                first = sc.suits[0].firmware
                assert first.state is SuitState.STOPPED and not first.applied_mA.any()
        assert ended(sc) == ["class stopped"]  # once
        assert every_suit_stopped(sc) and not session.output_mA.any()
        assert session.closed.is_set()
        suits.cancel_scope.cancel()


async def test_the_desks_latch_itself_stops_every_in_process_suit_once(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """An e-stop taken by the desk (as MQTT, the console and the studio hand it over) has
    every in-process suit's firmware STOPPED at zero when `take` returns: no task, no
    scheduling round, no tick's spin between the latch and the suits. The desk's stopper
    then announces it without sending those suits a second STOP_ALL."""
    sc = SimulatedClass(short_plan(LONG), 3, intensity_mA=20.0, body=False)
    async with trio.open_nursery() as nursery:
        for suit in sc.suits:
            await nursery.start(suit.run)
        session = await nursery.start(sc.session.run)
        await trio.sleep(20.0)
        assert all(s.firmware.applied_mA.any() for s in sc.suits)
        before = [s.frames_received for s in sc.suits]
        request = session.desk.take(b'{"do": "estop"}', "tablet")
        assert every_suit_stopped(sc)  # before anything else ran
        assert [s.frames_received - b for s, b in zip(sc.suits, before, strict=True)] == [1] * 3
        assert "estop" not in [e.kind for e in session.events.events]  # stop first
        result = await request.wait()
        assert result.ok and session.state is ClassState.ESTOPPED
        await trio.sleep(1.0)  # held: nothing more goes out, not even a second STOP_ALL
        assert [s.frames_received - b for s, b in zip(sc.suits, before, strict=True)] == [1] * 3
        assert [e.kind for e in session.events.events].count("estop") == 1
        assert (await session.execute(Reset(), "trainer")).ok  # released: told again next time
        await session.emergency_stop()
        assert [s.frames_received - b for s, b in zip(sc.suits, before, strict=True)] == [2] * 3
        nursery.cancel_scope.cancel()


async def test_a_suit_whose_stop_fails_at_the_latch_does_not_keep_it_from_the_others(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A bug in one suit's link as the latch writes its STOP_ALL: the latch does not raise
    (it runs inside an interface's parser), every other suit is stopped right there, and
    the e-stop's own pass raises the failure once every suit has been told."""
    sc = SimulatedClass(short_plan(LONG), 3, intensity_mA=20.0, body=False)
    async with trio.open_nursery() as nursery:
        for suit in sc.suits:
            await nursery.start(suit.run)
        session = await nursery.start(sc.session.run)
        await trio.sleep(20.0)

        def broken(frame: bytes) -> None:
            raise RuntimeError("a bug in the link")

        works, session.drivers[1]._send_nowait = session.drivers[1]._send_nowait, broken
        session.latch_estop()  # does not raise
        firmwares = [s.firmware for s in sc.suits]
        assert [f.state is SuitState.STOPPED for f in firmwares] == [True, False, True]
        with pytest.raises(RuntimeError, match="a bug in the link"):
            await session.emergency_stop()
        assert session.drivers[1].held and session.state is ClassState.ESTOPPED
        session.drivers[1]._send_nowait = works  # (else the class's closing stop raises it too)
        nursery.cancel_scope.cancel()


def test_a_client_is_named_by_number_by_id_or_by_name_and_an_unknown_one_is_refused() -> None:
    """The studio and the MQTT bridge name clients by id (`client_refs`): a stop or a turn
    down for one client must reach that client, not another and not an error."""
    sc = SimulatedClass(short_plan(), 3, intensity_mA=20.0, body=False)
    s = sc.session
    s.client_refs.update({"c-7f3a": 2, "s-19b2": 2})
    assert s.client_index("c-7f3a") == 2 and s.client_index("s-19b2") == 2
    assert s.client_index(s.clients[1].name) == 1 and s.client_index(1) == 0
    with pytest.raises(CommandRefused, match="no client named 'c-0000'"):
        s.client_index("c-0000")


async def test_a_stop_goes_to_every_slow_suit_at_once_and_every_failure_is_raised(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Links that are not a function call (a radio) get their STOP_ALL concurrently, not one
    after the other; when several fail, each failure is raised (a group), none hidden."""
    sc = SimulatedClass(short_plan(LONG), 2, intensity_mA=20.0, body=False, faulty=True)
    async with trio.open_nursery() as suits:
        for suit in sc.suits:
            await suits.start(suit.run)
        async with trio.open_nursery() as nursery:
            session = await nursery.start(sc.session.run)
            await trio.sleep(20.0)
            assert not any(d.sends_at_once for d in session.drivers)
            failed: list[int] = []
            for i, link in enumerate(sc.faulty_links):

                async def send(frame: bytes, i: int = i, pass_on=link.send) -> None:  # type: ignore[no-untyped-def]
                    if isinstance(decode_control(frame), StopAll) and i not in failed:
                        failed.append(i)  # the first STOP_ALL: 100 ms, then the adapter fails
                        await trio.sleep(0.1)
                        raise RuntimeError(f"a bug in adapter {i}")
                    await pass_on(frame)

                link.send = send  # type: ignore[method-assign]
            started = trio.current_time()
            with pytest.raises(ExceptionGroup) as raised:
                await session.execute(Stop(), "trainer")
            assert trio.current_time() - started == pytest.approx(0.1)  # both at once
            assert sorted(str(e) for e in raised.value.exceptions) == [
                "a bug in adapter 0",
                "a bug in adapter 1",
            ]
            assert session.ending == "stopped" and ended(sc) == ["class stopped"]
        assert every_suit_stopped(sc)  # the closing stop reached both
        suits.cancel_scope.cancel()


async def test_a_stop_that_skips_the_suits_told_at_the_latch_still_tells_every_other(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """`_send_stops(skip=...)` leaves out only the suits already told (by the e-stop's
    latch) and goes on to every suit after them: skipping the first suit must not end the
    pass (a `break` for its `continue` would leave the others stimulating)."""
    sc = SimulatedClass(short_plan(LONG), 3, intensity_mA=20.0, body=False)
    async with trio.open_nursery() as nursery:
        for suit in sc.suits:
            await nursery.start(suit.run)
        session = await nursery.start(sc.session.run)
        await trio.sleep(20.0)
        assert all(s.firmware.applied_mA.any() for s in sc.suits)
        await session._send_stops(skip={session.drivers[0]})
        first, *others = sc.suits
        assert first.firmware.state is SuitState.ARMED  # skipped: not told by this pass
        assert all(s.firmware.state is SuitState.STOPPED for s in others)
        assert not any(s.firmware.applied_mA.any() for s in others)
        nursery.cancel_scope.cancel()
