"""The engine in a thread of its own (suit_controller/engine_thread.py), tested across the boundary.

Real time, real threads, simulated suits in the engine's thread; no timed
assertion: waits poll the published snapshot, each bounded only against a hang.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from pathlib import Path
from typing import cast

import pytest
import trio
from trio_websocket import open_websocket_url

from channels import DEFAULT_LAYOUT
from sim.firmware import SuitState
from sim.simclass import SimulatedClass
from suit_controller.engine_thread import (
    ENGINE_GONE,
    SWITCH_INTERVAL_S,
    EngineFailed,
    EnginePort,
    FacesSession,
    open_engine_thread,
)
from suit_controller.records import SessionEvent
from suit_controller.session import ClassSession
from suit_controller.studio.checkin import CheckIn, check_in
from suit_controller.studio.recorder import SessionRecorder
from suit_controller.studio.screening import CONTRAINDICATIONS
from suit_controller.studio.store import Store
from suit_controller.web.app import serve_console
from tests.simclass_helpers import contains, short_plan

#: A class that stimulates from its first second (no warm-up), long enough never to end alone.
SUIT_FIRST = """\
name: Suit first
programs:
  s: {frequency_hz: 85, pulse_width_us: 350, impulse_s: 4, pause_s: 0, continuous: true, ramp_up_s: 0, ramp_down_s: 0}
phases:
  - kind: suit
    exercises:
      - {name: Squat, duration: 10m, program: s, channels: {quads: 1.0, glutes: 1.0}}
  - {kind: stretch, duration: 1m}
"""

HANG_S = 60.0  # only against a hang: nothing here is a timing assertion


def make(n: int = 3, **kw: object) -> SimulatedClass:
    return SimulatedClass(short_plan(SUIT_FIRST), n, intensity_mA=10.0, body=False, **kw)  # type: ignore[arg-type]


def stopped(sc: SimulatedClass) -> bool:
    return all(
        s.firmware.state is SuitState.STOPPED and not s.firmware.applied_mA.any() for s in sc.suits
    )


async def stimulating(port: EnginePort) -> None:
    """Until the published snapshot shows every client receiving current."""
    with trio.fail_after(HANG_S):
        while True:
            p = port.published
            if p is not None and all(any(c.levels_mA) for c in p.snapshot.clients):
                return
            await trio.sleep(0.02)


async def test_an_estop_from_the_faces_thread_reaches_every_suit() -> None:
    sc = make()
    async with open_engine_thread(sc.session, sc.run) as port:
        await stimulating(port)
        assert any(s.firmware.applied_mA.any() for s in sc.suits)
        result = await port.submit('{"do": "estop", "id": "e1"}', "web:1")
        assert result.ok and result.command == "estop" and result.request_id == "e1"
        # answered once STOP_ALL has gone to every suit: every firmware has it
        assert stopped(sc)
        assert port.published is not None
        refused = await port.submit('{"do": "resume"}', "web:1")
        assert not refused.ok and "reset" in refused.message
        assert (await port.submit('{"do": "stop"}', "web:1")).ok
        assert await port.wait_finished() == "estopped"
    assert not port.thread_alive
    assert port.published is not None and port.published.snapshot.state.value == "stopped"


async def test_events_reach_the_faces_in_order_in_the_faces_thread() -> None:
    sc = make(2)
    faces = threading.get_ident()
    seen: list[tuple[SessionEvent, int]] = []
    async with open_engine_thread(sc.session, sc.run) as port:
        port.events.subscribe(lambda e: seen.append((e, threading.get_ident())))
        await stimulating(port)
        for mA in (5, 6, 7):
            assert (await port.submit({"do": "set_intensity", "mA": mA}, "tablet")).ok
        assert (await port.submit({"do": "stop"}, "tablet")).ok
        await port.wait_finished()
    engine_log = sc.session.events.events
    assert port.events.events == engine_log  # every event, in the engine's order
    assert {ident for _, ident in seen} == {faces}
    later = [e for e, _ in seen]
    assert later == engine_log[len(engine_log) - len(later) :]
    commands = [e.message for e in later if e.kind == "command" and e.data["source"] == "tablet"]
    assert [m.split(": target ")[-1] for m in commands[:3]] == [
        "5 mA (moves in 1 mA steps)",
        "6 mA (moves in 1 mA steps)",
        "7 mA (moves in 1 mA steps)",
    ]
    assert [e.kind for e in later].count("ended") == 1


async def test_a_face_that_raises_never_ends_the_class() -> None:
    sc = make(2)
    calls: list[str] = []

    def broken(event: SessionEvent) -> None:
        calls.append(event.kind)
        raise RuntimeError("a face's bug")

    async with open_engine_thread(sc.session, sc.run) as port:
        port.events.subscribe(broken)
        await stimulating(port)
        assert (await port.submit({"do": "set_intensity", "mA": 5}, "tablet")).ok
        assert (await port.submit({"do": "pause"}, "tablet")).ok
        assert calls and port.events.subscriber_errors == {"broken": len(calls)}
        assert not port.ended and sc.session.ending is None
        assert (await port.submit({"do": "resume"}, "tablet")).ok
        assert (await port.submit({"do": "stop"}, "tablet")).ok
        assert await port.wait_finished() == "stopped"
    assert stopped(sc)
    # reported once, in the engine's log (the class's record), and mirrored back in order
    [report] = [e for e in sc.session.events.events if e.kind == "subscriber_error"]
    assert report.message.startswith("broken failed on a ") and "a face's bug" in report.message
    assert report.data == {"subscriber": "broken"}
    assert port.events.events == sc.session.events.events


async def test_an_error_in_the_faces_block_interrupts_the_class_and_stops_every_suit() -> None:
    sc = make()
    with pytest.raises(ValueError, match="the faces' program failed"):
        async with open_engine_thread(sc.session, sc.run) as port:
            await stimulating(port)
            raise ValueError("the faces' program failed")
    assert sc.session.ending == "interrupted" and stopped(sc)
    assert not port.thread_alive


def test_cancelling_the_faces_loop_stops_every_suit() -> None:
    sc = make()

    async def faces() -> None:
        with trio.CancelScope() as scope:
            async with open_engine_thread(sc.session, sc.run) as port:
                await stimulating(port)
                scope.cancel()
                await trio.sleep_forever()
        assert port.ended and not port.thread_alive

    trio.run(faces)
    assert sc.session.ending == "interrupted" and stopped(sc)


def test_a_faces_loop_that_vanishes_without_a_word_still_stops_every_suit() -> None:
    """The faces' Trio run ends without leaving the port (as if its thread died): the engine
    notices the faces are gone, interrupts the class and stops every suit."""
    sc = make()
    ports: list[EnginePort] = []

    async def faces() -> None:
        port = EnginePort(sc.session, sc.run)
        port._faces_token = trio.lowlevel.current_trio_token()
        thread = port._thread = threading.Thread(target=port._thread_main)
        thread.start()
        ports.append(port)
        await stimulating(port)

    trio.run(faces)
    assert ports[0]._thread is not None
    ports[0]._thread.join(HANG_S)
    assert not ports[0].thread_alive
    assert sc.session.ending == "interrupted" and stopped(sc)


class Boom(Exception):
    pass


async def test_an_engine_that_dies_tells_the_faces_and_leaves_nothing_energised() -> None:
    sc = make(faulty=True)
    answers = []
    with pytest.raises(BaseException) as caught:  # EngineFailed, maybe grouped
        async with open_engine_thread(sc.session, sc.run) as port:
            await stimulating(port)
            sc.faulty_ticks.fail_next_tick(Boom("the engine's bug"))
            await trio.sleep_forever()  # the faces are cancelled by the engine's failure
    assert contains(caught.value, EngineFailed)
    assert isinstance(port.error, BaseException) and contains(port.error, Boom)
    assert sc.session.ending == "interrupted" and stopped(sc)
    # a face still holding the port is answered, not left waiting
    answers.append(await port.submit({"do": "estop"}, "web:1"))
    assert not answers[0].ok and answers[0].message == ENGINE_GONE


async def test_the_engine_threads_cpu_time_and_switch_interval() -> None:
    before = sys.getswitchinterval()
    sc = make(2)
    async with open_engine_thread(sc.session, sc.run) as port:
        assert sys.getswitchinterval() == min(before, SWITCH_INTERVAL_S)
        assert port.native_id is not None and port.native_id != threading.get_native_id()
        await stimulating(port)
        cpu_mid = port.engine_cpu_s
        faces_cpu0 = time.thread_time()
        assert (await port.submit({"do": "stop"}, "tablet")).ok
        await port.wait_finished()
    assert sys.getswitchinterval() == before
    assert port.published is not None and port.published.ticks > 0
    # the engine's own thread time: positive, growing, and not the faces' thread's nor more
    # than the whole process used
    assert 0.0 < cpu_mid <= port.engine_cpu_s <= time.process_time()
    assert port.engine_cpu_s != pytest.approx(faces_cpu0, abs=0.0)


# -- the existing faces, in the faces' thread, served from the port ---------------------------
async def test_the_recorder_in_the_faces_thread_keeps_the_engines_totals_and_events(
    tmp_path: Path,
) -> None:
    db = str(tmp_path / "studio.db")
    store = Store(db)
    names = ["Ana", "Ben"]
    for n in names:
        store.add_client(n)
        store.add_screening(n, "Tom", set(), set(), [c.key for c in CONTRAINDICATIONS])
    specs, roster, _ = check_in(
        store,
        [CheckIn(n, f"SIM-0{i + 1}") for i, n in enumerate(names)],
        ["Tom"],
        DEFAULT_LAYOUT,
        default_intensity_mA=10,
    )
    opened = store.open_class("Suit first", roster, simulated=True)
    sc = SimulatedClass(short_plan(SUIT_FIRST), 2, clients=specs, body=False)
    async with open_engine_thread(sc.session, sc.run) as port:
        faces = cast(ClassSession, FacesSession(port, sc.session))
        recorder = SessionRecorder(db, faces, opened)
        await port.start_companion(recorder.run)
        await stimulating(port)
        assert (await port.submit({"do": "stop"}, "tablet")).ok
        assert await port.wait_finished() == "stopped"
    assert store.class_record(opened.id)["status"] == "stopped"
    totals = sc.session.totals
    for i, name in enumerate(names):
        [row] = store.sessions_of(name)
        for j, ch in enumerate(DEFAULT_LAYOUT.names):
            assert row["channels"][ch]["charge_uC"] == pytest.approx(totals.charge_uC[i, j])
            assert row["channels"][ch]["stim_s"] == pytest.approx(totals.stim_s[i, j])
    assert totals.charge_uC.sum() > 0
    stored = [(e["kind"], e["message"]) for e in store.class_events(opened.id)]
    assert stored == [(e.kind, e.message) for e in sc.session.events.events]
    store.close()


async def test_an_estop_from_a_console_page_in_the_faces_thread_stops_every_suit() -> None:
    sc = make()
    async with open_engine_thread(sc.session, sc.run) as port:
        faces = cast(ClassSession, FacesSession(port, sc.session))

        async def web(*, task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED) -> None:
            await serve_console(faces, "127.0.0.1", 0, None, task_status=task_status)

        url = await port.start_companion(web)
        await stimulating(port)
        ws_url = url.replace("http://", "ws://").rstrip("/") + "/ws"
        async with open_websocket_url(ws_url) as ws:
            facts = json.loads(await ws.get_message())
            assert facts["type"] == "class" and facts["workout"] == "Suit first"
            state = json.loads(await ws.get_message())
            assert state["type"] == "state" and state["state"] == "running"
            assert any(state["clients"][0]["levels_mA"])  # the engine's publication
            await ws.send_message(json.dumps({"do": "estop", "id": "page-1"}))
            while True:
                reply = json.loads(await ws.get_message())
                if reply["type"] == "result":
                    break
            assert reply["ok"] and reply["id"] == "page-1" and reply["command"] == "estop"
            assert stopped(sc)
            while True:  # the page sees it on the next push from a later publication
                state = json.loads(await ws.get_message())
                if state["type"] == "state" and state["state"] == "estopped":
                    break
    assert sc.session.ending == "interrupted" and stopped(sc)


async def test_a_face_companion_that_fails_is_reported_and_the_class_goes_on() -> None:
    sc = make(2)

    async def broken_face(*, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        raise RuntimeError("the console's bug")

    reported = trio.Event()
    async with open_engine_thread(sc.session, sc.run) as port:
        port.events.subscribe(lambda e: reported.set() if e.kind == "interface_error" else None)
        await port.start_companion(broken_face)
        with trio.fail_after(HANG_S):
            await reported.wait()
        [report] = port.events.of_kind("interface_error")
        assert "broken_face stopped working (RuntimeError: the console's bug)" in report.message
        assert not port.ended
        assert (await port.submit({"do": "stop"}, "tablet")).ok
        assert await port.wait_finished() == "stopped"
    assert report in sc.session.events.events and stopped(sc)


async def test_a_callback_that_fails_in_the_engine_fails_it_the_ordinary_way() -> None:
    """Trio would crash the engine's run on an error in a handed-over callback; the port
    turns it into an engine failure: every suit stopped first, the faces told."""
    sc = make()

    def bad_seek() -> None:
        sc.session.clock.seek(1e9)  # outside the plan: ValueError

    with pytest.raises(BaseException) as caught:  # EngineFailed, maybe grouped
        async with open_engine_thread(sc.session, sc.run) as port:
            await stimulating(port)
            assert port.in_engine(bad_seek)
            await trio.sleep_forever()
    assert contains(caught.value, EngineFailed)
    assert port.error is not None and contains(port.error, ValueError)
    assert sc.session.ending == "interrupted" and stopped(sc)
    assert not port.in_engine(bad_seek)  # the engine is gone: nothing runs


async def test_a_consoles_shared_ceiling_and_forgetting_reach_the_engines_desk() -> None:
    """The console's `take(..., ceiling=)`, `rested` and `forget` work through the port too
    (a console behind the port once closed its connection on the ceiling keyword)."""
    sc = make()
    async with open_engine_thread(sc.session, sc.run) as port:
        await stimulating(port)
        engine_desk = sc.session.desk
        ceiling = engine_desk.ceiling_limit.burst
        results = []
        # from fresh sources: only the shared ceiling can refuse, and a source within its fair
        # share only once the ceiling's debt (one burst more) is spent too
        for i in range(2 * ceiling + 5):
            request = port.desk.take('{"do": "pause"}', f"web:{i}", ceiling="web:(all)")
            results.append(await request.wait())
        refused = [r for r in results if not r.ok and "together" in r.message]
        assert refused and len(refused) <= 5, [r.message for r in results]
        assert port.desk.rested("web:0")
        port.desk.forget("web:0")  # handed to the engine, which forgets it once rested
        with trio.fail_after(HANG_S):
            while True:
                if "web:0" not in engine_desk._buckets:
                    break
                await trio.sleep(0.05)


async def test_a_held_class_waits_for_its_faces_who_then_see_every_event() -> None:
    """`hold=True`: the class does not start until `go()`, so a face subscribed in between
    (the CLI's terminal lines, the recorder) gets its first event too, not only the later
    ones (`sim run --speed 400` once lost its first "cannot keep up" line this way)."""
    sc = make()
    async with open_engine_thread(sc.session, sc.run, hold=True) as port:
        await trio.sleep(0.3)  # a held class does nothing, however long the faces take
        assert port.published is not None and not port.published.started
        assert sc.session.ticks == 0 and port.events.events == []
        seen: list[str] = []
        port.events.subscribe(lambda e: seen.append(e.kind))
        port.go()
        await stimulating(port)
        assert seen and seen[0] == sc.session.events.events[0].kind
        assert seen == [e.kind for e in port.events.events]
