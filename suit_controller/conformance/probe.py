"""The conformance kit's side of the link: frames out, status reports in, a transcript.

A `Probe` numbers the control frames it sends (from the suit's reported
counter + 1, only growing, like the controller), reads every status
notification, joins the frames of one report (a report's frames carry the
same counter, clock, state and program, channels running on from 0), and
keeps a transcript of every byte sent and seen, which a failed check shows.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import trio

from suit_controller.conformance.target import SuitUnderTest
from suit_controller.links.base import LinkError
from suit_controller.protocol import (
    STATUS_HEADER_LEN,
    Arm,
    Faults,
    Heartbeat,
    PulseProgram,
    RemoteProtocolError,
    SetLevels,
    SetProgram,
    StatusReport,
    StopAll,
    SuitState,
    UnsupportedVersion,
    crc16,
    decode_control,
    decode_status,
    encode,
    encode_levels,
)
from suit_controller.protocol.enrollment import SuitKey

#: How soon "at once" is, s of host time (a BLE connection event or two, and the suit's loop).
AT_ONCE_S = 0.15
#: How long a status may take when the suit sends one at least every 200 ms.
NEXT_STATUS_S = 0.5


class CheckFailed(Exception):
    """A check found the suit breaking its rule; the message says what was seen."""


class CheckSkipped(Exception):
    """A check cannot run on this target (the message says why)."""


@dataclass(frozen=True)
class Line:
    """One transcript line: host time, direction ('→' sent, '←' seen, '·' event), bytes, note."""

    at: float
    direction: str
    data: bytes
    note: str

    def render(self, since: float = 0.0) -> str:
        hexed = f" {self.data.hex()}" if self.data else ""
        return f"{(self.at - since) * 1000:9.1f} ms {self.direction}{hexed}  {self.note}"


@dataclass(frozen=True)
class Report:
    """One whole status report, joined from its notifications."""

    at: float  # host time its last frame arrived (not when the kit knew it was the last)
    frames: tuple[bytes, ...]
    parts: tuple[StatusReport, ...]

    @property
    def head(self) -> StatusReport:
        return self.parts[0]

    @property
    def counter(self) -> int:
        return self.head.counter

    @property
    def clock_ms(self) -> int:
        return self.head.clock_ms

    @property
    def state(self) -> SuitState:
        return self.head.state

    @property
    def faults(self) -> Faults:
        return self.head.faults

    @property
    def program(self) -> PulseProgram:
        return self.head.program

    @property
    def codes(self) -> tuple[int, ...]:
        """Applied level per channel, in 0.5 mA codes."""
        return tuple(round(mA * 2) for p in self.parts for mA in p.levels_mA)

    @property
    def contact(self) -> tuple[bool, ...]:
        return tuple(imp is not None for p in self.parts for imp in p.impedance_ohm)

    def describe(self) -> str:
        return (
            f"{self.state.name} counter {self.counter} clock {self.clock_ms} ms "
            f"faults {self.faults!s} program {_program(self.program)} "
            f"levels {list(self.codes)}"
        )


def describe_control(data: bytes) -> str:
    """A control frame in words, for the transcript (what the suit should make of it)."""
    try:
        frame = decode_control(data)
    except RemoteProtocolError as e:
        return f"corrupt on purpose: {e}"
    return repr(frame)


def corrupt_crc(frame: bytes) -> bytes:
    """The frame with its CRC's low bit flipped."""
    return frame[:-2] + bytes([frame[-2] ^ 0x01, frame[-1]])


def reseal(body: bytes) -> bytes:
    """Bytes (without CRC) with a correct CRC appended."""
    return body + struct.pack("<H", crc16(body))


class Probe:
    """Drives one suit under test: connection, counters, reports, transcript."""

    def __init__(self, target: SuitUnderTest, key: SuitKey | None = None) -> None:
        self.target = target
        #: The suit's enrolled key: every valid frame the kit sends is signed with it.
        self.key = key
        self.transcript: list[Line] = []
        self.reports: list[Report] = []
        self.bad_status: list[tuple[float, bytes, str]] = []
        self.n_channels: int | None = None
        self.connected_at = 0.0
        self.first_report_index = 0
        self._next_counter = 1
        self._last_sent = 0
        self._pending: list[tuple[bytes, StatusReport]] = []
        self._pending_at = 0.0  # when the pending report's last frame arrived
        self._changed = trio.Event()
        self._reader: trio.CancelScope | None = None
        self._alive = False

    # -- the connection ----------------------------------------------------------------
    @property
    def alive(self) -> bool:
        """True while connected and reading status."""
        return self._alive

    def note(self, text: str) -> None:
        self.transcript.append(Line(trio.current_time(), "·", b"", text))

    async def connect(
        self, nursery: trio.Nursery, att_payload: int | None = None, *, authenticate: bool = True
    ) -> Report:
        """(Re)connect, start reading, and wait for the status the suit sends at once.

        With a key and `authenticate`, a signed HEARTBEAT follows at once (an enrolled
        suit drops a connection that has not authenticated within 2 s).
        """
        await self.disconnect()
        self.note(f"connect (ATT payload {att_payload or 'as negotiated'})")
        await self.target.connect(att_payload)
        self.connected_at = trio.current_time()
        self.note(f"connected, ATT payload {self.target.att_payload}")
        self.first_report_index = len(self.reports)
        self._alive = True
        self._reader = await nursery.start(self._read)
        first = await self.wait_report(
            lambda r: True,
            after=self.first_report_index,
            within=NEXT_STATUS_S,
            what="after notifications were enabled",
        )
        self._next_counter = max(self._next_counter, first.counter + 1)
        if self.key is not None and authenticate:
            # an enrolled suit drops a connection that has not authenticated within 2 s:
            # a signed, fresh HEARTBEAT (it changes nothing in any state) authenticates it
            await self.heartbeat()
        return first

    async def disconnect(self) -> None:
        self._alive = False
        if self._reader is not None:
            self._reader.cancel()
            self._reader = None
            self._flush()
            self.note("disconnect")
        with trio.CancelScope(shield=True):
            await self.target.disconnect()

    async def _read(self, *, task_status: trio.TaskStatus[trio.CancelScope]) -> None:
        with trio.CancelScope() as scope:
            task_status.started(scope)
            try:
                while True:
                    data = await self.target.notification()
                    self._on_notification(data)
            except LinkError as e:
                self._alive = False
                self._flush()
                self.note(f"link lost: {e}")
                self._changed.set()
                self._changed = trio.Event()

    def _on_notification(self, data: bytes) -> None:
        now = trio.current_time()
        try:
            part = decode_status(data)
        except UnsupportedVersion as e:
            self._bad(now, data, f"protocol version {e.version}, not 2")
            return
        except RemoteProtocolError as e:
            self._bad(now, data, str(e))
            return
        self.transcript.append(Line(now, "←", data, _describe_part(part)))
        if self._pending and not self._continues(part):
            self._flush()
        if not self._pending and part.first_channel != 0:
            self._bad(now, data, f"a report's first frame starts at channel {part.first_channel}")
            return
        self._pending.append((data, part))
        self._pending_at = now
        per_frame = (self.target.att_payload - STATUS_HEADER_LEN) // 2
        end = part.first_channel + len(part.levels_mA)
        if len(part.levels_mA) != per_frame or end == self.n_channels:
            self._flush()

    def _continues(self, part: StatusReport) -> bool:
        last = self._pending[-1][1]
        return part.first_channel == last.first_channel + len(last.levels_mA) and (
            part.counter,
            part.clock_ms,
            part.state,
            part.program,
        ) == (last.counter, last.clock_ms, last.state, last.program)

    def _flush(self) -> None:
        if not self._pending:
            return
        frames = tuple(d for d, _ in self._pending)
        parts = tuple(p for _, p in self._pending)
        self._pending = []
        report = Report(self._pending_at, frames, parts)
        if self.n_channels is None:
            self.n_channels = len(report.codes)
        self.reports.append(report)
        self._changed.set()
        self._changed = trio.Event()

    def _bad(self, now: float, data: bytes, why: str) -> None:
        self.bad_status.append((now, data, why))
        self.transcript.append(Line(now, "←", data, f"UNREADABLE STATUS: {why}"))

    # -- frames out ----------------------------------------------------------------------
    def counter(self) -> int:
        """A fresh counter for the next frame (only grows)."""
        c = self._next_counter
        self._next_counter += 1
        return c

    def resync(self) -> None:
        """Number on from the suit's reported counter if it is ahead of the kit's (after a
        check made a broken suit accept a frame far ahead, the next checks still run)."""
        if self.reports:
            self._next_counter = max(self._next_counter, self.reports[-1].counter + 1)

    @property
    def last_sent(self) -> int:
        """The counter of the last valid frame sent."""
        return self._last_sent

    async def send_raw(self, data: bytes, note: str | None = None) -> None:
        self.transcript.append(Line(trio.current_time(), "→", data, note or describe_control(data)))
        await self.target.write(data)

    def encode(self, frame: SetLevels | SetProgram | StopAll | Heartbeat | Arm) -> bytes:
        """The frame's bytes, signed with the suit's key if the kit has one."""
        if self.key is None:
            return encode(frame)
        return encode(frame, self.key.key, self.key.key_id)

    def encode_levels(self, counter: int, program_id: int, codes: bytes) -> bytes:
        """A SET_LEVELS frame, signed with the suit's key if the kit has one."""
        if self.key is None:
            return encode_levels(counter, program_id, codes)
        return encode_levels(counter, program_id, codes, self.key.key, self.key.key_id)

    async def send(self, frame: SetLevels | SetProgram | StopAll | Heartbeat | Arm) -> int:
        await self.send_raw(self.encode(frame))
        self._last_sent = max(self._last_sent, frame.counter)
        return frame.counter

    async def levels(self, codes: Sequence[int], program_id: int | None = None) -> int:
        c = self.counter()
        pid = self.program.program_id if program_id is None else program_id
        await self.send_raw(self.encode_levels(c, pid, bytes(codes)))
        self._last_sent = max(self._last_sent, c)
        return c

    async def arm(self) -> int:
        return await self.send(Arm(self.counter()))

    async def heartbeat(self) -> int:
        return await self.send(Heartbeat(self.counter()))

    async def stop_all(self, counter: int | None = None) -> int:
        return await self.send(StopAll(self.counter() if counter is None else counter))

    async def set_program(self, program_id: int, frequency_hz: int, pulse_width_us: int) -> int:
        return await self.send(SetProgram(self.counter(), program_id, frequency_hz, pulse_width_us))

    # -- reports in ----------------------------------------------------------------------
    @property
    def latest(self) -> Report:
        if not self.reports:
            raise CheckFailed("the suit has sent no status report")
        return self.reports[-1]

    @property
    def program(self) -> PulseProgram:
        return self.latest.program

    def index(self, report: Report) -> int:
        """Where `report` is among the reports."""
        return next(i for i in range(len(self.reports) - 1, -1, -1) if self.reports[i] is report)

    def mark(self) -> int:
        """A place in the reports: `wait_report(after=mark)` looks only at later ones."""
        return len(self.reports)

    async def wait_report(
        self,
        where: Callable[[Report], bool],
        *,
        after: int,
        within: float,
        what: str,
    ) -> Report:
        """The first report from `after` on for which `where` holds, or CheckFailed."""
        deadline = trio.current_time() + within
        seen = after
        while True:
            for r in self.reports[seen:]:
                if where(r):
                    return r
            seen = max(seen, len(self.reports))
            if not self._alive:
                raise CheckFailed(f"no status {what}: the link is down")
            changed = self._changed
            with trio.move_on_at(deadline):
                await changed.wait()
                continue
            last = self.reports[-1].describe() if len(self.reports) > after else "none"
            raise CheckFailed(f"no status {what} within {within * 1000:.0f} ms (last: {last})")

    async def fence(self) -> Report:
        """Send a HEARTBEAT and wait for a report that counts it: every frame before is handled.

        HEARTBEAT changes nothing in any state (in ARMED it feeds the watchdog).
        """
        m = self.mark()
        c = await self.heartbeat()
        return await self.wait_report(
            lambda r: r.counter >= c,
            after=m,
            within=NEXT_STATUS_S,
            what=f"counting the HEARTBEAT {c}",
        )

    def since(self, mark: int) -> list[Report]:
        return self.reports[mark:]

    # -- common steps ----------------------------------------------------------------------
    async def reset(self) -> Report:
        """STOP_ALL, then wait for a report showing STOPPED: a known, safe start."""
        m = self.mark()
        await self.stop_all()
        report = await self.wait_report(
            lambda r: r.state is SuitState.STOPPED,
            after=m,
            within=NEXT_STATUS_S,
            what="showing STOPPED after STOP_ALL",
        )
        return await self.fence() if report.counter < self.last_sent else report

    def expected(self, codes: Sequence[int], report: Report) -> tuple[int, ...]:
        """What the suit should apply for `codes`: zero on a channel without contact."""
        n = len(report.codes)
        padded = [*codes[:n], *[0] * max(0, n - len(codes))]
        return tuple(c if ok else 0 for c, ok in zip(padded, report.contact, strict=True))

    def need_contact(self, report: Report) -> None:
        if not any(report.contact):
            raise CheckFailed(
                "no channel has contact, so no level can be seen: connect a test load "
                "(a 500 Ω resistor per channel) to the suit's outputs"
            )

    async def armed_with(self, codes: Sequence[int]) -> Report:
        """From any state: STOP_ALL, ARM, levels; the report that shows them applied."""
        await self.reset()
        m = self.mark()
        await self.arm()
        await self.wait_report(
            lambda r: r.state is SuitState.ARMED,
            after=m,
            within=AT_ONCE_S,
            what="showing ARMED at once after ARM",
        )
        await self.levels(codes)
        report = await self.fence()
        self.need_contact(report)
        want = self.expected(codes, report)
        if report.state is not SuitState.ARMED or report.codes != want:
            raise CheckFailed(
                f"after ARM and SET_LEVELS {list(codes)} the suit reports "
                f"{report.describe()}, expected ARMED with levels {list(want)}"
            )
        return report


def _program(p: PulseProgram) -> str:
    return f"({p.program_id}, {p.frequency_hz} Hz, {p.pulse_width_us} µs)"


def _describe_part(p: StatusReport) -> str:
    codes = [round(mA * 2) for mA in p.levels_mA]
    return (
        f"STATUS {p.state.name} counter {p.counter} clock {p.clock_ms} faults {p.faults!s} "
        f"program {_program(p.program)} channels {p.first_channel}+{len(codes)} {codes}"
    )
