"""The typed snapshot: the same JSON as `ClassSession.snapshot()` in every state of a class."""

from __future__ import annotations

import json

import trio
import trio.testing

from suit_controller.commands import EmergencyStop, Pause, Reset, Resume, SetIntensity
from suit_controller.driver import LinkState
from suit_controller.session import ClassState
from suit_controller.snapshot import ClassSnapshot

from .simclass_helpers import QUADS, make_class


async def test_the_typed_snapshot_has_the_json_form_of_the_session_snapshot(
    autojump_clock: trio.testing.MockClock,
) -> None:
    sc, _ = make_class(2)
    s = sc.session
    seen: list[ClassState] = []

    def same() -> ClassSnapshot:
        snap = ClassSnapshot.of(s)
        assert snap.as_json() == s.snapshot()
        assert json.dumps(snap.as_json()) == json.dumps(s.snapshot())
        seen.append(snap.state)
        return snap

    assert same().state is ClassState.READY  # before the class runs
    async with trio.open_nursery() as nursery:
        nursery.start_soon(sc.run)
        await trio.sleep(12.0)  # mid-contraction in the Squat
        snap = same()
        assert snap.exercise == "Squat" and snap.next == "Crunch" and snap.contracting
        assert all(c.link is LinkState.CONNECTED for c in snap.clients)
        assert snap.clients[0].levels_mA[QUADS] == 20.0
        assert snap.clients[0].suit_levels_mA[QUADS] == sc.suits[0].firmware.applied_mA[QUADS]
        assert (await s.execute(SetIntensity(client=1, channel="quads", mA=25.0))).ok
        assert same().clients[0].target_mA[QUADS] == 25.0
        assert (await s.execute(Pause())).ok
        assert same().state is ClassState.PAUSED
        assert (await s.execute(EmergencyStop())).ok
        assert same().state is ClassState.ESTOPPED
        assert (await s.execute(Reset())).ok
        assert (await s.execute(Resume())).ok
        await trio.sleep(80.0)  # into the stretch
        assert same().next is None
        await s.wait_finished()
        nursery.cancel_scope.cancel()
    snap = same()
    assert snap.state is ClassState.FINISHED and snap.remaining_s == 0.0
    assert seen == [
        ClassState.READY,
        ClassState.RUNNING,
        ClassState.RUNNING,
        ClassState.PAUSED,
        ClassState.ESTOPPED,
        ClassState.RUNNING,
        ClassState.FINISHED,
    ]
