"""`open_class`: every way out of a class stops every suit and leaves its record; rooms are apart.

Checked at the simulated firmware: what each suit applies, and its state.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing

from sim.faulty_link import FaultyLink, FaultyTickSource
from sim.suit import SimulatedSuit
from suit_controller.classroom import connect_class, open_class
from suit_controller.clients import ClientSpec
from suit_controller.commands import Start, Stop
from suit_controller.links import InProcessLink
from suit_controller.links.base import LinkLost
from suit_controller.protocol import SuitState
from suit_controller.session import ClassSession, ClassState

from .simclass_helpers import QUADS, contains, short_plan

#: Inside the first contraction of the Squat (the suit block starts at 10 s).
MID_CONTRACTION_S = 12.0


class Boom(Exception):
    pass


def room(n: int, prefix: str, *, faulty: bool = False) -> tuple[list[SimulatedSuit], list[Any]]:
    suits = [SimulatedSuit(f"{prefix}-{i + 1}", 12, seed=i) for i in range(n)]
    links: list[Any] = [InProcessLink(s) for s in suits]
    if faulty:
        links = [FaultyLink(link) for link in links]
    return suits, links


def clients(n: int) -> list[ClientSpec]:
    return [ClientSpec(f"client-{i + 1}", intensity_mA=20.0) for i in range(n)]


@asynccontextmanager
async def suits_running(suits: Sequence[SimulatedSuit]) -> AsyncIterator[None]:
    """The suits' own loops (watchdog, status), around the class that drives them."""
    async with trio.open_nursery() as nursery:
        for s in suits:
            await nursery.start(s.run)
        yield
        nursery.cancel_scope.cancel()


def outputs_on(suits: Sequence[SimulatedSuit]) -> bool:
    return all(s.firmware.applied_mA[QUADS] > 0 for s in suits)


def assert_stopped_at_zero(suits: Sequence[SimulatedSuit]) -> None:
    for s in suits:
        assert not s.firmware.applied_mA.any(), s.address
        assert s.firmware.state is SuitState.STOPPED, (s.address, s.firmware.state)


def read_record(folder: Path) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((folder / "session.json").read_text(encoding="utf-8"))
    return doc


async def test_a_class_run_to_its_end_stops_every_suit_and_writes_its_record(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    plan = short_plan()
    suits, links = room(3, "A")
    async with (
        suits_running(suits),
        open_class(plan, clients(3), links, record_to=tmp_path) as session,
    ):
        assert session.state is ClassState.RUNNING
        await trio.sleep(MID_CONTRACTION_S)
        assert outputs_on(suits)
        await session.wait_finished()
        assert session.ended
    assert session.ending == "finished"
    assert_stopped_at_zero(suits)
    rec = read_record(tmp_path)
    assert rec["ended"] == "finished" and rec["workout"] == plan.workout.name
    assert rec["plan_s"] == pytest.approx(plan.total_s, abs=1 / session.rate_hz)
    assert [c["suit"] for c in rec["clients"]] == ["A-1", "A-2", "A-3"]
    assert all(c["channels"]["quads"]["contractions"] > 0 for c in rec["clients"])
    assert rec["events"][-1]["kind"] == "ended"


async def test_leaving_the_block_stops_a_class_still_going_through_the_command_path(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    suits, links = room(2, "A")
    async with (
        suits_running(suits),
        open_class(short_plan(), clients(2), links, record_to=tmp_path) as session,
    ):
        await trio.sleep(MID_CONTRACTION_S)
        assert outputs_on(suits)
    assert session.ending == "stopped"
    assert_stopped_at_zero(suits)
    stops = [e for e in session.events.of_kind("command") if e.data["command"] == {"do": "stop"}]
    assert [e.data["source"] for e in stops] == ["program"]
    assert read_record(tmp_path)["ended"] == "stopped"


async def test_an_exception_in_the_block_comes_out_as_itself_after_every_suit_stopped(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    suits, links = room(2, "A")
    async with suits_running(suits):
        with pytest.raises(Boom):  # itself, not wrapped in the class's nursery's group
            async with open_class(short_plan(), clients(2), links, record_to=tmp_path) as session:
                await trio.sleep(MID_CONTRACTION_S)
                assert outputs_on(suits)
                raise Boom
        assert_stopped_at_zero(suits)  # before the suits stop running, too
    assert session.ending == "interrupted"
    assert_stopped_at_zero(suits)
    assert read_record(tmp_path)["ended"] == "interrupted"


async def test_cancelling_a_class_stops_every_suit_and_writes_its_record(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    suits, links = room(2, "A")
    with trio.move_on_after(MID_CONTRACTION_S) as scope:
        async with (
            suits_running(suits),
            open_class(short_plan(), clients(2), links, record_to=tmp_path) as session,
        ):
            await trio.sleep(MID_CONTRACTION_S - 0.5)
            assert outputs_on(suits)
            await trio.sleep_forever()
    assert scope.cancelled_caught
    assert session.ending == "interrupted"
    assert_stopped_at_zero(suits)
    rec = read_record(tmp_path)
    assert rec["ended"] == "interrupted" and rec["class_s"] == pytest.approx(MID_CONTRACTION_S)


@pytest.mark.parametrize("seam", ["tick", "faulty_link"])
async def test_an_engine_error_ends_the_class_with_every_suit_stopped(
    autojump_clock: trio.testing.MockClock, tmp_path: Path, seam: str
) -> None:
    suits, links = room(3, "A", faulty=True)
    with pytest.raises(BaseExceptionGroup) as info:
        async with (
            suits_running(suits),
            open_class(short_plan(), clients(3), links, record_to=tmp_path) as session,
        ):
            await trio.sleep(MID_CONTRACTION_S)
            assert outputs_on(suits)
            inject(session, links, seam)
            await trio.sleep_forever()
    assert contains(info.value, Boom)
    assert session.ending == "interrupted"
    assert_stopped_at_zero(suits)
    assert read_record(tmp_path)["ended"] == "interrupted"


def inject(session: ClassSession, links: Sequence[FaultyLink], seam: str) -> None:
    """An engine error through a public seam: the engine's tick source, or a suit's link.

    (A raising tick observer is not one: observers are isolated, the class goes on.)
    """
    if seam == "tick":
        ticks = FaultyTickSource()
        ticks.fail_next_tick(Boom("a bug in the tick"))
        session.tick_source = ticks
    else:
        links[1].fail_next_send(Boom("a bug in the sender"))


async def test_a_link_failure_injected_by_a_faulty_link_is_ridden_out(
    autojump_clock: trio.testing.MockClock,
) -> None:
    suits, links = room(2, "A", faulty=True)
    async with suits_running(suits), open_class(short_plan(), clients(2), links) as session:
        await trio.sleep(MID_CONTRACTION_S)
        links[0].fail_next_send(LinkLost("injected"))
        await session.wait_finished()
    assert links[0].raised == 1
    assert session.ending == "finished"  # S9: a lost link is that suit's business
    assert session.drivers[0].drops == 1 and session.drivers[0].reconnects == 1
    assert_stopped_at_zero(suits)


@pytest.mark.parametrize("how", ["stop", "cancel"])
async def test_the_nursery_form_runs_a_class_in_the_callers_nursery(
    autojump_clock: trio.testing.MockClock, tmp_path: Path, how: str
) -> None:
    suits, links = room(2, "A")
    woke: list[str | None] = []

    async def face(session: ClassSession) -> None:
        """A face outside the class's nursery learns that the class ended, however it ended."""
        with trio.fail_after(60.0):  # virtual time: a hang fails instead of hanging
            await session.wait_finished()
        woke.append(session.ending)

    async with (
        suits_running(suits),
        trio.open_nursery() as faces,
        trio.open_nursery() as nursery,
    ):
        session = await connect_class(nursery, short_plan(), clients(2), links, record_to=tmp_path)
        faces.start_soon(face, session)
        await trio.sleep(MID_CONTRACTION_S)
        assert outputs_on(suits)
        if how == "stop":
            assert (await session.execute(Stop(), source="test")).ok
        else:
            nursery.cancel_scope.cancel()
    assert session.ending == ("stopped" if how == "stop" else "interrupted")
    assert woke == [session.ending]
    assert_stopped_at_zero(suits)
    assert read_record(tmp_path)["ended"] == session.ending


async def test_a_class_opened_without_autostart_waits_for_start(
    autojump_clock: trio.testing.MockClock,
) -> None:
    suits, links = room(2, "A")
    async with (
        suits_running(suits),
        open_class(short_plan(), clients(2), links, autostart=False) as session,
    ):
        await trio.sleep(MID_CONTRACTION_S)
        assert session.state is ClassState.READY and session.clock.plan_time() == 0.0
        assert not any(s.firmware.applied_mA.any() for s in suits)
        assert (await session.execute(Start(), source="test")).ok
        session.clock.seek(MID_CONTRACTION_S - 1.0)
        await trio.sleep(1.0)
        assert outputs_on(suits)
    assert session.ending == "stopped"
    assert [e.data["plan_t"] for e in session.events.of_kind("seek")] == [MID_CONTRACTION_S - 1.0]
    assert_stopped_at_zero(suits)


async def test_the_class_clock_refuses_to_seek_outside_the_plan_or_after_the_end(
    autojump_clock: trio.testing.MockClock,
) -> None:
    suits, links = room(1, "A")
    plan = short_plan()
    async with suits_running(suits), open_class(plan, clients(1), links) as session:
        with pytest.raises(ValueError, match="outside the plan"):
            session.clock.seek(plan.total_s)
        with pytest.raises(ValueError, match="outside the plan"):
            session.clock.seek(-1.0)
    with pytest.raises(ValueError, match="ended"):
        session.clock.seek(1.0)


@pytest.mark.parametrize("seam", ["tick", "faulty_link"])
async def test_an_engine_error_in_one_room_never_touches_another(
    autojump_clock: trio.testing.MockClock, seam: str
) -> None:
    """Two classes in one Trio program, each in its own task: one fails, the other goes on."""
    plan = short_plan()
    a_suits, a_links = room(2, "A", faulty=True)
    b_suits, b_links = room(2, "B", faulty=True)
    outcome: dict[str, str] = {}
    failed_at: list[float] = []
    b_after_failure: list[tuple[int, float]] = []  # (frames received, peak mA) per B suit

    def watch_b(suit: SimulatedSuit) -> None:
        if failed_at:
            i = b_suits.index(suit)
            frames, peak = b_after_failure[i]
            b_after_failure[i] = (frames + 1, max(peak, float(suit.firmware.applied_mA.max())))

    async def one_room(
        name: str, suits: list[SimulatedSuit], links: list[FaultyLink], fail: bool
    ) -> None:
        try:
            async with suits_running(suits), open_class(plan, clients(2), links) as session:
                if fail:
                    await trio.sleep(MID_CONTRACTION_S)
                    assert outputs_on(suits)
                    inject(session, links, seam)
                await session.wait_finished()
                outcome[name] = session.ending or "?"
        except* Boom:
            outcome[name] = "failed"
            failed_at.append(trio.current_time())

    b_after_failure.extend((0, 0.0) for _ in b_suits)
    for s in b_suits:
        s.on_change = watch_b
    async with trio.open_nursery() as studio:
        studio.start_soon(one_room, "A", a_suits, a_links, True)
        studio.start_soon(one_room, "B", b_suits, b_links, False)
    assert outcome == {"A": "failed", "B": "finished"}
    assert_stopped_at_zero(a_suits)
    assert_stopped_at_zero(b_suits)
    remaining_s = plan.total_s - MID_CONTRACTION_S
    for frames, peak in b_after_failure:
        # B's suits went on receiving a frame every tick and stimulating at the set level
        assert frames >= 0.9 * remaining_s * 40.0
        assert peak == 20.0


async def test_a_class_needs_one_link_per_client(autojump_clock: trio.testing.MockClock) -> None:
    _, links = room(1, "A")
    with pytest.raises(ValueError, match="one suit link per client"):
        async with open_class(short_plan(), clients(2), links):
            pass  # pragma: no cover
