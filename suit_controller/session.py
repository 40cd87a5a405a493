"""The class engine: one Trio nursery per class, one tick task, one task per suit.

Theory of operation
-------------------
Every tick (default 40 Hz) the engine samples the plan once for all
channels, multiplies by every client's set intensity (which moves in steps of
at most 1 mA, S2), applies the S1 caps, zeroes the clients whose suit is not
connected (S9), quantises to the protocol's 0.5 mA steps by rounding *down*,
and hands each suit driver the newest frame. The caps of each client are
computed from the program that client's suit has *confirmed* in its status
(the lower of the old and the new program's caps while a change is pending;
zero if the suit does not confirm it in time), when that state changes, not
per tick. Warm-up and stretching have no program: their caps are zero (S8).

Every command from every interface enters at `commands.submit` (the
session's `desk`) and is carried out by `execute`. An emergency stop is
latched the moment its bytes are read, zeroes every output, sends STOP_ALL
to every suit at once (not at the next tick, not behind queued commands)
and latches until `Reset` (S3).

Stop first, always: whatever ends `run` — the class finishing, a stop, an
exception in any task, cancellation, Ctrl-C — STOP_ALL goes to every suit,
in a shielded cancel scope, before the "ended" event, any log line, record
write or screen update. Event subscribers and tick observers cannot raise
into the engine (`EventLog` and `_observe` count and report their errors
once), and companions (console, MQTT bridge, recorder) run through
`companion`, which reports their failure once and lets the class go on.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Collection, Sequence
from enum import StrEnum
from typing import TYPE_CHECKING, Any

import numpy as np
import trio

from channels.limits import LEVEL_STEP_MA, level_codes, program_caps_mA
from channels.muscles import LocationError, parse_channel_key
from channels.program import Program
from suit_controller.clients import ClientSpec
from suit_controller.commands import (
    Command,
    CommandDesk,
    CommandRefused,
    CommandResult,
    EmergencyStop,
    Pause,
    Reset,
    Resume,
    SetIntensity,
    Skip,
    Start,
    Stop,
    printable,
)
from suit_controller.delivery import DeliveryTotals
from suit_controller.driver import LinkState, SuitDriver
from suit_controller.intensity import IntensityBoard
from suit_controller.links.base import SuitLink
from suit_controller.records import EventLog, SessionEvent, callable_name
from suit_controller.ticks import TickSource
from workouts.plan import Plan

if TYPE_CHECKING:
    from suit_controller.snapshot import ClassSnapshot

DEFAULT_RATE_HZ = 40.0
CLOSE_TIMEOUT_S = 1.0


class ClassState(StrEnum):
    """Where the class is."""

    READY = "ready"
    RUNNING = "running"
    PAUSED = "paused"
    ESTOPPED = "estopped"
    FINISHED = "finished"
    STOPPED = "stopped"


class ClassSession:
    """A class: a plan, clients each with a suit link, and the trainer's commands."""

    def __init__(
        self,
        plan: Plan,
        clients: Sequence[ClientSpec],
        links: Sequence[SuitLink],
        *,
        rate_hz: float = DEFAULT_RATE_HZ,
        tick_source: TickSource | None = None,
    ) -> None:
        if len(clients) != len(links):
            raise ValueError("one suit link per client")
        if len({c.name for c in clients}) != len(clients):
            raise ValueError("client names must be unique")
        self.plan = plan
        self.layout = plan.layout
        self.clients = list(clients)
        self.rate_hz = rate_hz
        self.tick_source = tick_source or TickSource()
        #: Names this class in every state and event it publishes (MQTT, records).
        self.session_id = uuid.uuid4().hex
        #: Ids a command may name a client by (client and session ids), to its index.
        self.client_refs: dict[str, int] = {}
        self.events = EventLog()
        n = len(self.layout)
        self.client_caps = (
            np.stack([c.caps(self.layout) for c in clients]) if clients else np.zeros((0, n))
        )
        targets = (
            np.stack([c.targets(self.layout) for c in clients]) if clients else np.zeros((0, n))
        )
        self.board = IntensityBoard(targets, self.client_caps)
        self.caps = np.zeros_like(self.client_caps)
        self.output_mA = np.zeros_like(self.client_caps)
        self.relative = np.zeros(n)
        self.totals = DeliveryTotals(len(self.clients), n)
        self._pulse = (0.0, 0.0)  # (pulse width µs, frequency Hz) of the current program
        self._program: Program | None = None  # the current segment's program (None: no output)
        self._channel_max = np.array([ch.max_mA for ch in self.layout.channels])
        self._area = np.array([ch.area_cm2 for ch in self.layout.channels])
        self._last_tick_at: float | None = None
        self.drivers = [
            SuitDriver(
                link,
                n,
                on_event=self._event_for(i),
                on_connected=self._connected_for(i),
                on_lost=self._lost_for(i),
                on_program=self._program_for(i),
            )
            for i, link in enumerate(links)
        ]
        self.state = ClassState.READY
        self.ending: str | None = None
        self.ticks = 0
        self.lateness_s: list[float] = []
        self._t0: float | None = None
        self._plan_base = 0.0
        self._running_since: float | None = None
        self._segment: int | None = None
        self._limit_hits: set[tuple[int, int, int | None]] = set()
        #: Called after every tick with its time (simulators sample the suits here).
        self.tick_observers: list[Callable[[float], None]] = []
        #: Errors of tick observers, by observer; each reported once as an event.
        self.observer_errors: dict[str, int] = {}
        self._finished = trio.Event()
        self.clock = ClassClock(self)
        #: Set once `run` has stopped every suit, announced the end and closed the links.
        self.closed = trio.Event()
        self._ended_announced = False
        self._estop_to_announce = False
        #: Suits told STOP_ALL by the latch itself (`latch_estop`), whose e-stop's own pass
        #: (`emergency_stop`) skips them; failures of those writes, raised by that pass.
        self._stopped_at_latch: set[SuitDriver] = set()
        self._latch_failures: list[Exception] = []
        #: Where every interface's commands arrive (see `commands.submit`).
        self.desk = CommandDesk(self)

    # -- clocks -----------------------------------------------------------------------
    def class_time(self, now: float | None = None) -> float:
        """Seconds since the class session started (wall, including pauses)."""
        if self._t0 is None:
            return 0.0
        return (trio.current_time() if now is None else now) - self._t0

    def plan_time(self, now: float | None = None) -> float:
        """Position in the workout, s: advances only while running."""
        if self._running_since is None:
            return self._plan_base
        return self._plan_base + (trio.current_time() if now is None else now) - self._running_since

    def _freeze(self, now: float) -> None:
        self._plan_base = self.plan_time(now)
        self._running_since = None

    async def wait_finished(self) -> None:
        """Wait until the class has ended, however it ended (see `ending`)."""
        await self._finished.wait()

    @property
    def ended(self) -> bool:
        """True once the class has ended: finished, stopped, e-stopped and stopped, interrupted."""
        return self._finished.is_set()

    # -- events -----------------------------------------------------------------------
    def emit(self, kind: str, message: str, client: int | None = None, **data: Any) -> None:
        name = self.clients[client].name if client is not None else None
        self.events.add(SessionEvent(self.class_time(), kind, message, name, data))

    def _event_for(self, i: int) -> Any:
        return lambda kind, message: self.emit(kind, message, i)

    def _connected_for(self, i: int) -> Any:
        def connected() -> None:
            self.board.restart_from_zero(i)
            if self._program is not None:
                self.drivers[i].set_program(
                    self._program.frequency_hz, self._program.pulse_width_us
                )
            self.emit(
                "link_up",
                f"suit {self.drivers[i].link.address} connected; intensity ramps up from zero",
                i,
            )

        return connected

    def _program_for(self, i: int) -> Any:
        return lambda: self._update_caps(i)

    def _update_caps(self, i: int) -> None:
        """S1 caps of client i from the program its suit has CONFIRMED (and the pending one).

        Called when the segment or the suit's program state changes, never per tick.
        While a program change is pending the lower of the two programs' caps holds;
        a program unconfirmed for too long holds the client at zero.
        """
        conn = self.drivers[i].connection
        if self._program is None or conn.program_overdue:
            self.caps[i] = 0.0
            if conn.program_overdue:
                self.board.restart_from_zero(i)
            return
        self.caps[i] = program_caps_mA(
            channel_max_mA=self._channel_max,
            area_cm2=self._area,
            client_cap_mA=self.client_caps[i],
            programs=[p.pulses for p in conn.cap_programs()],
        )

    def _lost_for(self, i: int) -> Any:
        def lost() -> None:
            self.board.restart_from_zero(i)
            self._zero_outputs(i)

        return lost

    # -- the one command path ---------------------------------------------------------
    async def execute(self, cmd: Command, source: str = "cli") -> CommandResult:
        """Carry out a parsed trainer command, applying every rule.

        Interfaces do not call this: they hand raw input to `commands.submit`.
        """
        name = cmd.do
        try:
            message = await self._dispatch(cmd)
        except CommandRefused as e:
            reason = printable(str(e))
            self.emit("command_refused", f"{name} from {source} refused: {reason}", source=source)
            return CommandResult(False, name, reason)
        return self.record_command(cmd, source, message)

    def record_command(
        self,
        cmd: Command,
        source: str,
        message: str = "every output is zero; latched until reset",
    ) -> CommandResult:
        """The event and result of a command carried out (the desk's e-stops come here too)."""
        self.emit(
            "command",
            f"{cmd.do} from {source}: {message}",
            source=source,
            command=cmd.model_dump(exclude_none=True),
        )
        return CommandResult(True, cmd.do, message)

    async def _dispatch(self, cmd: Command) -> str:
        now = trio.current_time()
        if isinstance(cmd, EmergencyStop):
            await self.emergency_stop()
            return "every output is zero; latched until reset"
        if self.state in (ClassState.FINISHED, ClassState.STOPPED):
            raise CommandRefused("the class has ended")
        if isinstance(cmd, SetIntensity):
            return self._set_intensity(cmd)
        if isinstance(cmd, Stop):
            await self._end("estopped" if self.state is ClassState.ESTOPPED else "stopped")
            return "class stopped"
        if isinstance(cmd, Reset):
            if self.state is not ClassState.ESTOPPED:
                raise CommandRefused("there is no emergency stop to reset")
            self.state = ClassState.PAUSED
            self._stopped_at_latch.clear()  # released: a later e-stop tells each suit again
            for d in self.drivers:
                d.release()
            return "emergency stop cleared; the class is paused — resume to continue"
        if self.state is ClassState.ESTOPPED:
            raise CommandRefused("the emergency stop is latched: reset it first")
        if isinstance(cmd, Start):
            if self.state is not ClassState.READY:
                raise CommandRefused(f"the class is already {self.state.value}")
            self.state = ClassState.RUNNING
            self._running_since = now
            self.emit("started", f"class started: {self.plan.workout.name}")
            self._tick(now)
            return "class started"
        if isinstance(cmd, Pause):
            if self.state is not ClassState.RUNNING:
                raise CommandRefused(f"the class is {self.state.value}, not running")
            self.state = ClassState.PAUSED
            self._freeze(now)
            self._tick(now)
            await self._push_now()
            return "paused; every output is zero"
        if isinstance(cmd, Resume):
            if self.state is not ClassState.PAUSED:
                raise CommandRefused(f"the class is {self.state.value}, not paused")
            self.board.restart_from_zero()
            self.state = ClassState.RUNNING
            self._running_since = now
            self._tick(now)
            return "resumed; intensities ramp up from zero"
        if isinstance(cmd, Skip):
            if self.state not in (ClassState.RUNNING, ClassState.PAUSED):
                raise CommandRefused(f"the class is {self.state.value}")
            t = self.plan_time(now)
            nxt = self.plan.next_segment_start(t)
            self._plan_base = nxt
            if self._running_since is not None:
                self._running_since = now
            self._tick(now)
            await self._push_now()
            return f"skipped to {nxt:.0f} s"
        raise CommandRefused(f"unknown command {cmd!r}")  # pragma: no cover

    def client_index(self, ref: int | str) -> int:
        """A client by 1-based number, by id (`client_refs`) or by name. Raises CommandRefused."""
        if isinstance(ref, int) and not isinstance(ref, bool):
            if 1 <= ref <= len(self.clients):
                return ref - 1
            raise CommandRefused(f"there is no client {ref} (clients are 1..{len(self.clients)})")
        if ref in self.client_refs:
            return self.client_refs[ref]
        for i, c in enumerate(self.clients):
            if c.name == ref:
                return i
        raise CommandRefused(f"there is no client named '{printable(str(ref), 40)}'")

    def _channels(self, name: str) -> list[int]:
        if name in self.layout.names:
            return [self.layout.index(name)]
        try:
            found = self.layout.select(parse_channel_key(name))
        except LocationError as e:
            raise CommandRefused(printable(str(e))) from None
        if not found:
            raise CommandRefused(
                f"suit layout {self.layout.name} has no channel for {printable(name, 40)}"
            )
        return found

    def _set_intensity(self, cmd: SetIntensity) -> str:
        if (cmd.mA is None) == (cmd.delta_mA is None):
            raise CommandRefused("give either mA (a target) or delta_mA (a nudge)")
        rows = range(len(self.clients)) if cmd.client is None else [self.client_index(cmd.client)]
        cols = list(range(len(self.layout))) if cmd.channel is None else self._channels(cmd.channel)
        new = self.board.target_mA.copy()
        for r in rows:
            for c in cols:
                value = cmd.mA if cmd.mA is not None else new[r, c] + (cmd.delta_mA or 0.0)
                cap = self.board.max_target_mA[r, c]
                if value < 0:
                    value = 0.0
                if value > cap + 1e-9:
                    who = self.clients[r].name
                    raise CommandRefused(
                        f"{value:g} mA is above {who}'s cap of {cap:g} mA on {self.layout.names[c]}"
                    )
                new[r, c] = value
        self.board.target_mA[:] = new
        who = "every client" if cmd.client is None else self.clients[rows[0]].name
        what = "every channel" if cmd.channel is None else cmd.channel
        how = f"{cmd.mA:g} mA" if cmd.mA is not None else f"{cmd.delta_mA:+g} mA"
        return f"{who}, {what}: target {how} (moves in 1 mA steps)"

    def latch_estop(self) -> None:
        """The e-stop's first half, synchronous: latch, zero every output and stop every suit
        whose link writes at once, now.

        Called the moment an e-stop's bytes are parsed; from here on no tick
        offers anything but zero. Every suit whose link writes at once
        (in-process; `SuitDriver.sends_at_once`) is held and sent STOP_ALL
        right here, a function call each: no task, no scheduling round, no
        tick's spin between the latch and its firmware at zero. The other suits
        get theirs from `emergency_stop` (the desk's stopper), which also
        raises any failure of the writes made here.
        """
        if self.state in (ClassState.RUNNING, ClassState.PAUSED, ClassState.READY):
            self._freeze(trio.current_time())
            self.state = ClassState.ESTOPPED
            self._estop_to_announce = True
        self.board.restart_from_zero()
        for d in self.drivers:
            if d.sends_at_once and d not in self._stopped_at_latch:
                self._stopped_at_latch.add(d)  # held now: nothing but STOP_ALL until reset
                try:
                    d.stop_at_once()
                except Exception as e:  # a bug in this suit's link: raised by emergency_stop
                    self._latch_failures.append(e)
        self._zero_outputs()

    async def emergency_stop(self) -> None:
        """S3: zero every output and send STOP_ALL to every suit now; latch until reset."""
        self.latch_estop()
        told, self._stopped_at_latch = self._stopped_at_latch, set()
        failures, self._latch_failures = self._latch_failures, []
        await self._stop_all(skip=told, failures=failures)
        if self._estop_to_announce:
            self._estop_to_announce = False
            self.emit("estop", "EMERGENCY STOP: every output is zero")

    async def _stop_all(
        self, skip: Collection[SuitDriver] = (), failures: list[Exception] | None = None
    ) -> None:
        """STOP_ALL to every suit at once, shielded, each bounded by the driver's stop timeout.

        `skip`: suits told already (by the latch); `failures`: earlier ones to raise too.
        """
        with trio.CancelScope(shield=True):
            await self._send_stops(skip, failures)

    async def _send_stops(
        self, skip: Collection[SuitDriver] = (), failures: list[Exception] | None = None
    ) -> None:
        """STOP_ALL to every suit (but those in `skip`): first, in one pass, every suit whose
        link writes at once (a function call each, no task, no scheduling round), then the
        others concurrently.

        One suit's failure (a bug in its link raising something other than a lost link)
        never keeps STOP_ALL from another: every suit is tried, then the failure is raised
        (with `failures`, those of earlier writes of this stop).
        """
        failures = list(failures or ())

        async def stop(d: SuitDriver) -> None:
            try:
                await d.send_stop_now()
            except Exception as e:  # re-raised below, once every suit has been told
                failures.append(e)

        later = []
        for d in self.drivers:
            if d in skip:
                continue
            if d.sends_at_once:
                await stop(d)  # returns without yielding: nothing waits behind it
            else:
                later.append(d)
        if later:
            async with trio.open_nursery() as nursery:
                for d in later:
                    nursery.start_soon(stop, d)
        if len(failures) == 1:
            raise failures[0]
        if failures:
            raise ExceptionGroup("STOP_ALL failed on several suits", failures)

    async def _push_now(self) -> None:
        """Send this tick's levels to every suit now instead of at the drivers' next turn."""
        with trio.CancelScope(shield=True):
            async with trio.open_nursery() as nursery:
                for d in self.drivers:
                    nursery.start_soon(d.flush)

    async def _end(self, ending: str) -> None:
        now = trio.current_time()
        self._freeze(now)
        self.state = ClassState.STOPPED if ending != "finished" else ClassState.FINISHED
        self.ending = ending
        self._zero_outputs()
        try:
            await self._stop_all()
        finally:  # even if a suit's STOP_ALL failed: the class has ended, and says so once
            self._finished.set()
            self._announce_end(f"class {ending}")

    def _announce_end(self, message: str) -> None:
        """The "ended" event, once, and only after STOP_ALL went to every suit."""
        if not self._ended_announced:
            self._ended_announced = True
            self.emit("ended", message, ending=self.ending)

    # -- the tick ---------------------------------------------------------------------
    def _enter_segment(self, index: int | None) -> None:
        self._segment = index
        if index is None:
            self._program = None
            self.caps[:] = 0.0
            return
        seg = self.plan.segments[index]
        p = self._program = seg.program
        if p is None:
            self.caps[:] = 0.0  # S8: warm-up and stretching never stimulate
        else:
            self._pulse = (float(p.pulse_width_us), float(p.frequency_hz))
            for d in self.drivers:
                d.set_program(p.frequency_hz, p.pulse_width_us)  # and recomputes its caps
        cues = f" — {', '.join(seg.cues)}" if seg.cues else ""
        label = seg.name if seg.exercise_index is not None else seg.kind.value
        self.emit(
            "segment",
            f"{seg.kind.value}: {label}{cues}",
            segment=index,
            phase=seg.kind.value,
            name=seg.name,
            plan_t=round(seg.start_s, 3),
        )

    def _settle(self, now: float) -> None:
        """Account the outputs held since the last tick (before they change)."""
        if self._last_tick_at is not None:
            self.totals.hold(self.output_mA, now - self._last_tick_at, *self._pulse)
        self._last_tick_at = now

    def _zero_outputs(self, rows: int | None = None) -> None:
        """Record that outputs are zero now (one client or all), outside a tick."""
        if self._t0 is not None:
            self._settle(trio.current_time())
        if rows is None:
            self.output_mA[:] = 0.0
        else:
            self.output_mA[rows] = 0.0

    @property
    def pulse(self) -> tuple[float, float]:
        """(pulse width µs, frequency Hz) of the program now running (0, 0 before any)."""
        return self._pulse

    def _tick(self, now: float) -> None:
        self.ticks += 1
        self._settle(now)
        plan_t = self.plan_time(now)
        running = self.state is ClassState.RUNNING
        if running and plan_t >= self.plan.total_s:
            # "ended" is announced by `_close`, after STOP_ALL (stop first, always)
            self.state = ClassState.FINISHED
            self.ending = "finished"
            self._freeze(now)
            self._finished.set()
            running = False
        if self.state in (ClassState.RUNNING, ClassState.PAUSED, ClassState.ESTOPPED):
            seg = self.plan.segment_index(plan_t)
            if seg != self._segment:
                self._enter_segment(seg)
        self.relative = self.plan.levels(plan_t) if running else np.zeros(len(self.layout))
        ready = [d.ready for d in self.drivers]  # levels go out (zeros included)
        overdue = [d.connection.program_overdue for d in self.drivers]
        connected = np.array(ready, dtype=bool) & ~np.array(overdue, dtype=bool)  # may stimulate
        self.board.step(now)
        self.board.hold_at_zero(~connected)  # a lost suit's client ramps up from zero later
        requested = self.relative[None, :] * self.board.set_mA
        codes = level_codes(requested, self.caps)
        if running:
            self._note_limit_hits(requested)
        codes[~connected] = 0
        before = self.output_mA
        self.output_mA = codes.astype(np.float64) * LEVEL_STEP_MA
        self.totals.change(before, self.output_mA)
        for i, d in enumerate(self.drivers):
            if ready[i]:
                d.offer_levels(codes[i].tobytes(), now)
        for observer in self.tick_observers:
            self._observe(observer, now)

    def _observe(self, observer: Callable[[float], None], now: float) -> None:
        """Run one tick observer; its error is counted, reported once, and the class goes on."""
        try:
            observer(now)
        except Exception as e:  # an observer's bug is not the engine's: isolate it
            name = callable_name(observer)
            n = self.observer_errors[name] = self.observer_errors.get(name, 0) + 1
            if n == 1:
                self.emit(
                    "observer_error",
                    f"tick observer {name} failed ({type(e).__name__}: {printable(str(e))}); "
                    "the class goes on, later failures are only counted",
                    observer=name,
                )

    def _note_limit_hits(self, requested: np.ndarray) -> None:
        over = requested > self.caps + 1e-9
        if not over.any():
            return
        for i, j in zip(*np.nonzero(over), strict=True):
            key = (int(i), int(j), self._segment)
            if key not in self._limit_hits:
                self._limit_hits.add(key)
                self.emit(
                    "limit",
                    f"{self.layout.names[j]} held at its cap of "
                    f"{self.caps[i, j]:.1f} mA (asked {requested[i, j]:.1f} mA)",
                    int(i),
                    channel=self.layout.names[j],
                    cap_mA=round(float(self.caps[i, j]), 2),
                )

    async def _tick_loop(self) -> None:
        period = 1.0 / self.rate_hz
        start = trio.current_time()
        k = 0
        while not self._finished.is_set():
            deadline = start + k * period  # on a fixed grid: no drift over a class
            await self.tick_source.sleep_until(deadline)
            now = trio.current_time()
            self.lateness_s.append(now - deadline)
            self._tick(now)
            k += 1
            if start + k * period <= now:  # fell behind: skip the missed ticks, keep the grid
                k = int((now - start) / period) + 1

    # -- running a class ----------------------------------------------------------------
    async def run(
        self,
        *,
        autostart: bool = True,
        task_status: trio.TaskStatus[ClassSession] = trio.TASK_STATUS_IGNORED,
    ) -> str:
        """Run the class until it ends; returns how it ended. Every exit stops every suit."""
        self._t0 = trio.current_time()
        try:
            async with trio.open_nursery() as nursery:
                for d in self.drivers:
                    await nursery.start(d.run)
                await nursery.start(self.desk.run)
                if autostart:
                    await self.execute(Start(), source="engine")
                nursery.start_soon(self._tick_loop)
                task_status.started(self)
                await self._finished.wait()
                nursery.cancel_scope.cancel()
        finally:
            with trio.CancelScope(shield=True):
                await self._close()
        return self.ending or "interrupted"

    async def _close(self) -> None:
        """Stop first: STOP_ALL to every suit, then the desk, the "ended" event, the links.

        A suit whose STOP_ALL fails (a bug in its link) does not keep the class from
        closing: the others were told, the end is announced, the links are closed, and
        then the failure is raised.
        """
        self._zero_outputs()
        interrupted = self.ending is None
        if interrupted:
            self.ending = "interrupted"
            self.state = ClassState.STOPPED
        try:
            with trio.move_on_after(CLOSE_TIMEOUT_S):
                await self._send_stops()
        finally:
            self._finished.set()
            self.desk.close()
            self._announce_end(
                "class interrupted: every suit told to stop"
                if interrupted
                else f"class {self.ending}"
            )
            for d in self.drivers:
                d.state = LinkState.CLOSED
                with trio.move_on_after(CLOSE_TIMEOUT_S):
                    await d.link.aclose()
            self.closed.set()

    async def companion(
        self,
        name: str,
        task: Callable[..., Awaitable[Any]],
        *,
        task_status: trio.TaskStatus[Any] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Run an interface beside the class (console, MQTT bridge, recorder) as a `nursery.start`
        target. An interface's failure never ends a class: it is reported once, the class goes on.
        """
        started = False

        async def run(*, task_status: trio.TaskStatus[Any] = trio.TASK_STATUS_IGNORED) -> None:
            await task(task_status=task_status)

        try:
            async with trio.open_nursery() as nursery:
                value = await nursery.start(run)
                started = True
                task_status.started(value)
        except Exception as group:  # an interface's failure, isolated: the class goes on
            e: BaseException = group
            while isinstance(e, BaseExceptionGroup) and e.exceptions:
                e = e.exceptions[0]
            self.emit(
                "interface_error",
                f"{name} stopped working ({type(e).__name__}: {printable(str(e))}); "
                "the class goes on without it",
                interface=name,
            )
        if not started:
            task_status.started(None)

    # -- what a screen shows ----------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        """The class as a screen or a broker shows it (plain JSON-able data)."""
        return self.class_snapshot().as_json()

    def class_snapshot(self) -> ClassSnapshot:
        """The class now, as typed values (what a face reads; an engine thread's port too)."""
        from suit_controller.snapshot import ClassSnapshot  # it reads this module's names

        return ClassSnapshot.of(self)


class ClassClock:
    """A class's two clocks: class time (since the session started) and plan time.

    Plan time is the position in the workout; it advances only while the class
    runs. Faces read it; `seek` is the seam for simulators, tests and
    benchmarks that start a class somewhere inside its plan. (A trainer moves
    through the plan with `Skip`, through the command path.)
    """

    def __init__(self, session: ClassSession) -> None:
        self._session = session

    @property
    def started_at(self) -> float | None:
        """Trio time the session started running, or None before."""
        return self._session._t0

    def class_time(self, now: float | None = None) -> float:
        """Seconds since the session started (including pauses)."""
        return self._session.class_time(now)

    def plan_time(self, now: float | None = None) -> float:
        """Position in the workout, s."""
        return self._session.plan_time(now)

    def seek(self, plan_t: float) -> None:
        """Move the class to `plan_t` seconds into its plan; the next tick plays from there.

        Recorded as a `seek` event. Raises ValueError outside the plan or once
        the class has ended.
        """
        s = self._session
        if s.ended:
            raise ValueError("the class has ended")
        if not 0.0 <= plan_t < s.plan.total_s:
            raise ValueError(f"plan time {plan_t:g} s is outside the plan (0..{s.plan.total_s:g})")
        s._plan_base = plan_t
        if s._running_since is not None:
            s._running_since = trio.current_time()
        s.emit("seek", f"plan moved to {plan_t:.1f} s", plan_t=round(plan_t, 3))
