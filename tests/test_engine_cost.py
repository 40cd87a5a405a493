"""The `engine_cost` / `scale` benchmarks' sink suit is faithful enough to measure the engine.

The figures only mean something if the engine, against `SinkLink`s, does what it does
against real suits: links, arms every suit, sends a frame per suit per tick, sees its
program confirmed, and nothing is lost or refused. Virtual time (no timed assertion).
"""

from __future__ import annotations

import trio
import trio.testing

from benchmarks.common import plan35
from benchmarks.engine_cost import SinkLink
from suit_controller.classroom import open_class_session
from suit_controller.clients import ClientSpec
from suit_controller.protocol.codec import decode_status
from suit_controller.protocol.frames import SuitState
from suit_controller.session import ClassSession

BAD_KINDS = {
    "link_lost",
    "suit_safe_state",
    "suit_refused",
    "suit_key_mismatch",
    "program_unconfirmed",
    "bad_notification",
}


def test_engine_against_sink_suits_arms_every_suit_and_sends_every_tick() -> None:
    plan = plan35()
    n = 5
    links = [SinkLink(f"SINK-{i}", len(plan.layout)) for i in range(n)]
    specs = [ClientSpec(f"client-{i}", intensity_mA=60.0) for i in range(n)]
    session = ClassSession(plan, specs, links, rate_hz=40.0)
    seen: dict[str, object] = {}

    async def main() -> None:
        with trio.CancelScope() as cancel:
            async with open_class_session(session) as s:
                await trio.lowlevel.checkpoint()
                s.clock.seek(6 * 60.0)
                await trio.sleep(1.0)
                seen["ready"] = [d.ready for d in s.drivers]
                t0, f0 = s.ticks, [link.frames_sent for link in links]
                await trio.sleep(2.0)
                seen["ticks"] = s.ticks - t0
                seen["frames"] = [link.frames_sent - f for link, f in zip(links, f0, strict=True)]
                seen["confirmed"] = [d.connection.confirmed for d in s.drivers]
                seen["pending"] = [d.connection.pending for d in s.drivers]
                seen["output"] = float(s.output_mA.max())
                cancel.cancel()

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
    assert seen["ready"] == [True] * n
    ticks = seen["ticks"]
    assert isinstance(ticks, int) and ticks >= 79
    frames = seen["frames"]
    assert isinstance(frames, list) and all(f >= ticks - 1 for f in frames)  # a frame per tick
    # the program the engine asked for is the one the sink reports
    assert seen["pending"] == [None] * n and None not in seen["confirmed"]  # type: ignore[operator]
    assert isinstance(seen["output"], float) and seen["output"] > 0  # it stimulates
    assert all(link.statuses >= 10 for link in links)  # a status at least every 200 ms
    kinds = {e.kind for e in session.events.events}
    assert not kinds & BAD_KINDS, kinds


def test_sink_status_follows_arm_and_stop() -> None:
    """Its status says ARMED with the ARM's counter (fresh), the program set, then STOPPED."""
    link = SinkLink("SINK", 12)

    async def main() -> list[bytes]:
        from suit_controller.protocol import ControllerConnection

        conn = ControllerConnection(12)
        await link.connect()
        out = [await link.receive()]
        conn.connected(link.att_payload)
        conn.receive_data(out[0], trio.current_time())
        for frame in conn.frames_to_send(bytes(12), trio.current_time()):  # ARM goes first
            await link.send(frame)
        out.append(await link.receive())
        conn.set_program(50, 200, trio.current_time())
        for frame in conn.frames_to_send(bytes(12), trio.current_time()):
            await link.send(frame)
        out.append(await link.receive())
        stop = conn.stop_frame()
        assert stop is not None
        await link.send(stop)
        out.append(await link.receive())
        return out

    idle, armed, programmed, stopped = (decode_status(b) for b in trio.run(main))
    assert idle.state is SuitState.IDLE
    assert armed.state is SuitState.ARMED and armed.counter >= 1
    assert (programmed.program.frequency_hz, programmed.program.pulse_width_us) == (50, 200)
    assert link.programs_set == 1
    assert stopped.state is SuitState.STOPPED
