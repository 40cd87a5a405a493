"""The engine alone: its CPU per suit per tick, and how many suits it keeps in time.

`scheduler` and the old `scale` ran the simulated suits (sim/suit.py and the
Python firmware) in the engine's own Trio thread, so their figures were the
engine's cost plus the suits'. Here every suit is a `SinkLink`: a link whose
`send` reads a frame's first five bytes (type and counter) and counts bytes,
and whose status notifications are frames encoded beforehand (re-encoded only
when ARM, STOP_ALL or SET_PROGRAM change what a suit would report). What the
engine thread then spends is the engine's: the tick, the drivers, the
protocol, the status decoding, Trio's scheduling.

The engine's CPU is the engine thread's own `time.thread_time()` over the
measured window (nothing else runs in that thread; no body model, no recorder).
"""

from __future__ import annotations

import math
import os
import struct
import time
from typing import Any

import trio
import trio.lowlevel

from benchmarks.common import percentiles_ms, plan35
from benchmarks.scheduler import PLAN_OFFSET_S, WARMUP_S
from suit_controller.classroom import open_class_session
from suit_controller.clients import ClientSpec
from suit_controller.links.base import LinkLost
from suit_controller.protocol import REQUIRED_ATT_PAYLOAD
from suit_controller.protocol.codec import decode_control, encode_status
from suit_controller.protocol.frames import (
    Faults,
    FrameType,
    PulseProgram,
    SetProgram,
    StatusReport,
    SuitState,
)
from suit_controller.session import ClassSession

_HEAD = struct.Struct("<BI")  # version|type, counter
#: A real suit notifies its status at least this often (sim/firmware.py: 200 ms).
STATUS_EVERY_S = 0.2
_DEFAULT_PROGRAM = PulseProgram(0, 85, 350)


class SinkLink:
    """A suit that costs (almost) nothing: counts bytes, answers with ready-made status.

    It keeps just what its status must say for the controller to stay linked
    and armed: the state (IDLE until ARM, STOPPED after STOP_ALL), the program
    last set, and the counter of the last ARM (so every status is "fresh").
    """

    def __init__(self, address: str, n_channels: int) -> None:
        self._address = address
        self._n = n_channels
        self.bytes_sent = 0
        self.frames_sent = 0
        self.statuses = 0
        #: SET_PROGRAM frames taken.
        self.programs_set = 0
        self._state = SuitState.IDLE
        self._program = _DEFAULT_PROGRAM
        self._counter = 0
        self._status = b""
        self._last_status = -math.inf
        self._send_ch: trio.MemorySendChannel[bytes] | None = None
        self._recv_ch: trio.MemoryReceiveChannel[bytes] | None = None
        self._encode()

    @property
    def address(self) -> str:
        return self._address

    @property
    def att_payload(self) -> int:
        return REQUIRED_ATT_PAYLOAD

    def _encode(self) -> None:
        self._status = encode_status(
            StatusReport(
                counter=self._counter,
                clock_ms=0,
                state=self._state,
                battery_pct=90,
                faults=Faults.NONE,
                program=self._program,
                first_channel=0,
                levels_mA=(0.0,) * self._n,
                impedance_ohm=(500.0,) * self._n,
            )
        )

    def _notify(self) -> None:
        if self._send_ch is not None:
            self._send_ch.send_nowait(self._status)
            self.statuses += 1

    async def connect(self) -> None:
        await trio.lowlevel.checkpoint()
        self._send_ch, self._recv_ch = trio.open_memory_channel[bytes](math.inf)
        self._state = SuitState.IDLE
        self._encode()
        self._notify()
        self._last_status = trio.current_time()

    async def send(self, frame: bytes) -> None:
        await trio.lowlevel.checkpoint_if_cancelled()
        if self._send_ch is None:
            raise LinkLost(f"{self._address}: link down")
        self.bytes_sent += len(frame)
        self.frames_sent += 1
        head, counter = _HEAD.unpack_from(frame)
        kind = head & 0x0F
        if kind != FrameType.SET_LEVELS and kind != FrameType.HEARTBEAT:
            if kind == FrameType.ARM:
                self._state, self._counter = SuitState.ARMED, counter
            elif kind == FrameType.STOP_ALL:
                self._state = SuitState.STOPPED
            elif kind == FrameType.SET_PROGRAM:
                p = decode_control(frame)
                assert isinstance(p, SetProgram)
                self.programs_set += 1
                self._program = PulseProgram(p.program_id, p.frequency_hz, p.pulse_width_us)
            self._encode()
            self._notify()
            self._last_status = trio.current_time()
            return
        now = trio.current_time()
        if now - self._last_status >= STATUS_EVERY_S:
            self._last_status = now
            self._notify()

    async def receive(self) -> bytes:
        if self._recv_ch is None:
            await trio.lowlevel.checkpoint()
            raise LinkLost(f"{self._address}: not connected")
        try:
            return await self._recv_ch.receive()
        except (trio.EndOfChannel, trio.ClosedResourceError):
            raise LinkLost(f"{self._address}: link dropped") from None

    async def aclose(self) -> None:
        await trio.lowlevel.checkpoint()
        if self._send_ch is not None:
            self._send_ch.close()
        self._send_ch = None


def run_engine_alone(
    n_suits: int,
    seconds: float,
    rate_hz: float = 40.0,
    *,
    profile: str | None = None,
    fifo: bool = False,
) -> dict[str, Any]:
    """The real engine against n sink suits for `seconds` of wall time (real clock).

    With `profile` a path: cProfile the measured window into it (pstats format).
    With `fifo`: run under SCHED_FIFO 10 where the system allows it (as `loaded` does).
    """
    sched = "SCHED_OTHER"
    if fifo:
        try:
            os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(10))
            sched = "SCHED_FIFO 10"
        except (AttributeError, PermissionError, OSError) as e:
            sched = f"SCHED_OTHER (SCHED_FIFO refused: {e})"
    try:
        return {**_run(n_suits, seconds, rate_hz, profile), "sched": sched}
    finally:
        if sched.startswith("SCHED_FIFO"):
            os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))


def _run(n_suits: int, seconds: float, rate_hz: float, profile: str | None) -> dict[str, Any]:
    plan = plan35()
    n_ch = len(plan.layout)
    links = [SinkLink(f"SINK-{i + 1:04d}", n_ch) for i in range(n_suits)]
    specs = [ClientSpec(f"client-{i + 1}", intensity_mA=60.0) for i in range(n_suits)]
    session = ClassSession(plan, specs, links, rate_hz=rate_hz)
    result: dict[str, Any] = {}

    async def main() -> None:
        with trio.CancelScope() as cancel:
            await _measure(cancel)

    async def _measure(cancel: trio.CancelScope) -> None:
        async with open_class_session(session) as s:
            await trio.lowlevel.checkpoint()
            s.clock.seek(PLAN_OFFSET_S)  # into the suit block: levels change every tick
            await trio.sleep(WARMUP_S + n_suits / 1000)  # every suit linked and armed
            armed = sum(d.ready for d in s.drivers)
            n0, t0 = len(s.lateness_s), s.ticks
            frames0 = sum(link.frames_sent for link in links)
            prof = None
            if profile is not None:
                import cProfile

                prof = cProfile.Profile()
                prof.enable()
            cpu0, wall0 = time.thread_time(), time.perf_counter()
            await trio.sleep(seconds)
            cpu1, wall1 = time.thread_time(), time.perf_counter()
            if prof is not None and profile is not None:
                prof.disable()
                prof.dump_stats(profile)
            result.update(
                lateness=s.lateness_s[n0:],
                ticks=s.ticks - t0,
                cpu_s=cpu1 - cpu0,
                wall_s=wall1 - wall0,
                armed=armed,
                frames=sum(link.frames_sent for link in links) - frames0,
            )
            cancel.cancel()

    trio.run(main)
    ticks = max(1, result["ticks"])
    return {
        "suits": n_suits,
        "channels": n_ch,
        "rate_hz": rate_hz,
        "armed": result["armed"],
        "ticks": result["ticks"],
        "frames_per_tick": round(result["frames"] / ticks, 1),
        "engine_cpu_us_per_suit_tick": round(1e6 * result["cpu_s"] / ticks / n_suits, 2),
        "engine_cpu_pct_one_core": round(100 * result["cpu_s"] / result["wall_s"], 1),
        **percentiles_ms(result["lateness"], "lateness_"),
    }


def default_seconds(seconds: float) -> float:
    """`ENGINE_COST_SECONDS` shortens (or lengthens) each run."""
    return float(os.environ.get("ENGINE_COST_SECONDS", seconds))
