"""The engine in a thread of its own: a class keeps time whatever its faces are doing.

A class's engine (the `ClassSession`, its suit drivers and links, and for a
simulated class the simulated suits) runs in a dedicated thread with its own
`trio.run`. The faces (web console, studio API, MQTT bridge, recorder,
terminal view) stay in the program's Trio loop and reach the engine only
through an `EnginePort`::

    async with open_engine_thread(session, sc.run) as port:
        result = await port.submit('{"do": "estop"}', "web:1")
        port.snapshot()          # the latest published view of the class
        port.events.subscribe(on_event)   # called in the faces' thread, in order
        ending = await port.wait_finished()
        port.engine_cpu_s        # the engine thread's own time.thread_time()

Theory of operation
-------------------
Nothing crosses the boundary but callbacks handed to the other loop's
`TrioToken.run_sync_soon` (Trio runs them in the order they were handed
over) and one reference swapped whole:

- A command: `submit` (or `desk.take`) hands `CommandDesk.take` to the
  engine's loop at once: an e-stop is latched by that callback (outputs zero,
  state ESTOPPED) and its STOP_ALL sent by the desk's own task, never behind
  a queued command or a face. The result comes back the same way.
- Events: the engine's `EventLog` has one subscriber, which hands every event
  to the faces' loop; there `port.events`, a mirror `EventLog`, gives it to
  the faces' subscribers, so a face's callback runs in the faces' thread and
  its failure is counted there, never in the engine.
- Snapshots: the engine thread publishes a `Published` (an immutable
  `ClassSnapshot`, copies of the totals, its own CPU time) every
  1/`publish_hz` s and as soon as an event says something changed (at most
  every `MIN_PUBLISH_GAP_S`); a face reads the newest by one attribute read.

Stop first holds across the boundary. Leaving `open_engine_thread`, however
(its block done, an exception, the faces' loop cancelled), cancels the
engine's class: the session's shielded close sends STOP_ALL to every suit,
and the faces wait (shielded) for the engine thread to end. If the faces'
loop is gone without a word, the engine notices within `FACES_CHECK_S` and
does the same. If the engine thread dies of an error, its session has
stopped every suit on the way out; the faces are told (`EngineFailed` out of
`open_engine_thread`, commands answered as refused).

While an engine thread runs, `sys.setswitchinterval` is `SWITCH_INTERVAL_S`
(1 ms instead of CPython's 5 ms): a thread that wakes up (the engine at its
tick) while another holds the GIL waits for the holder to be asked to drop
it, which CPython does every switch interval; the faces' Python code would
otherwise hold a waking tick for up to 5 ms per hand-off.
"""

from __future__ import annotations

import contextlib
import math
import sys
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np
import trio

from suit_controller.commands import CommandResult, Request, printable
from suit_controller.records import EventLog, SessionEvent, callable_name
from suit_controller.session import ClassSession, ClassState
from suit_controller.snapshot import ClassSnapshot

#: The snapshot's rate when nothing changes, Hz.
PUBLISH_HZ = 10.0
#: Shortest time between two snapshots published because something changed.
MIN_PUBLISH_GAP_S = 0.02
#: How often the engine checks that the faces' loop is still there.
FACES_CHECK_S = 0.1
#: The interpreter's thread switch interval while an engine thread runs (see the module doc).
SWITCH_INTERVAL_S = 0.001
#: A command's answer when the engine is no longer there to carry it out.
ENGINE_GONE = "the class engine has stopped; every suit was told to stop"


class EngineFailed(Exception):
    """The engine thread ended with an error (every suit had been told to stop)."""


@dataclass(frozen=True)
class Published:
    """What the engine thread last published: never changed once published."""

    snapshot: ClassSnapshot
    #: The class's engine-clock time at publishing, and `time.monotonic()` then.
    class_s: float
    at_monotonic: float
    #: How fast the engine's clock runs against the wall clock (`sim run --speed`), then.
    clock_rate: float
    started: bool
    ended: bool
    ending: str | None
    ticks: int
    #: Copies of the engine's per-client, per-channel totals and targets (see `DeliveryTotals`).
    charge_uC: np.ndarray
    stim_s: np.ndarray
    max_mA: np.ndarray
    contractions: np.ndarray
    target_mA: np.ndarray
    #: The engine thread's CPU time so far, s (`time.thread_time()` read in that thread).
    engine_cpu_s: float


_switch_lock = threading.Lock()
_switch_users = 0
_switch_before = 0.005


def _hold_switch_interval() -> None:
    global _switch_users, _switch_before
    with _switch_lock:
        if _switch_users == 0:
            _switch_before = sys.getswitchinterval()
            sys.setswitchinterval(min(_switch_before, SWITCH_INTERVAL_S))
        _switch_users += 1


def _release_switch_interval() -> None:
    global _switch_users
    with _switch_lock:
        _switch_users -= 1
        if _switch_users == 0:
            sys.setswitchinterval(_switch_before)


class EnginePort:
    """The faces' side of an engine thread: commands in, snapshots and events out.

    Made by `open_engine_thread`; every method is called from the faces' Trio
    loop (the one that opened it) unless it says otherwise.
    """

    def __init__(
        self,
        session: ClassSession,
        engine: Callable[[], Awaitable[Any]],
        *,
        publish_hz: float = PUBLISH_HZ,
        name: str = "class engine",
        thread_setup: Callable[[], None] | None = None,
        clock: trio.abc.Clock | None = None,
        hold: bool = False,
    ) -> None:
        self._session = session
        self._thread_setup = thread_setup
        self._clock = clock
        #: `hold`: the class waits for `go()` (its faces subscribed first: no event missed)
        self._held: trio.Event | None = None
        self._hold = hold
        self._engine = engine
        self._period = 1.0 / publish_hz
        self.name = name
        #: The engine's events, in order, for the faces: subscribers run in the faces' thread;
        #: a subscriber's failure is reported in the engine's log (and comes back here).
        self.events = EventLog(report=self._report_subscriber_error)
        #: The command desk as a face sees it (`take`, `refuse`): see `PortDesk`.
        self.desk = PortDesk(self)
        #: The engine thread's native id (for `os.sched_setscheduler`), once it runs.
        self.native_id: int | None = None
        #: How the engine thread ended: None while it runs or if it ended cleanly.
        self.error: BaseException | None = None
        #: What the class returned (e.g. its ending), once the engine thread has ended.
        self.outcome: Any = None
        #: Errors of callbacks handed to the engine after its class had ended (kept, not lost).
        self.late_errors: list[Exception] = []
        self._published: Published | None = None
        self._pending: set[Request] = set()
        self._thread: threading.Thread | None = None
        self._engine_token: trio.lowlevel.TrioToken | None = None
        self._engine_nursery: trio.Nursery | None = None
        self._faces_token: trio.lowlevel.TrioToken | None = None
        self._faces_nursery: trio.Nursery | None = None
        self._stop_requested = False
        self._wake: trio.Event | None = None  # the publisher's, in the engine loop
        self._started = trio.Event()  # faces' loop: the engine loop runs
        self._finished = trio.Event()  # faces' loop: the class has ended
        self._done = trio.Event()  # faces' loop: the engine thread has ended

    def go(self) -> None:
        """Start a class opened with `hold=True`: its faces are ready (subscribed, serving)."""
        self._to_engine(self._go)

    def _go(self) -> None:
        self._hold = False
        if self._held is not None:
            self._held.set()

    # -- what a face reads ----------------------------------------------------------------
    @property
    def published(self) -> Published | None:
        """The engine's latest publication (None before the first one)."""
        return self._published

    def class_snapshot(self) -> ClassSnapshot:
        """The class as last published (at most 1/`publish_hz` s old)."""
        p = self._published
        if p is None:
            raise RuntimeError("the engine has not published a snapshot yet")
        return p.snapshot

    def snapshot(self) -> dict[str, Any]:
        """`ClassSession.snapshot()`'s JSON form, of the latest publication."""
        return self.class_snapshot().as_json()

    @property
    def engine_cpu_s(self) -> float:
        """CPU time the engine thread has used, s, by its own `time.thread_time()`."""
        p = self._published
        return p.engine_cpu_s if p is not None else 0.0

    @property
    def thread_alive(self) -> bool:
        """Whether the engine thread is still running (any thread may ask)."""
        return self._thread is not None and self._thread.is_alive()

    @property
    def ended(self) -> bool:
        """True once the class has ended (as the faces have been told)."""
        return self._finished.is_set()

    async def wait_finished(self) -> Any:
        """Wait until the class has ended; its ending (e.g. "stopped"). Raises EngineFailed."""
        await self._finished.wait()
        if self.error is not None:
            raise EngineFailed(f"the class engine failed: {self.error!r}") from self.error
        p = self._published
        return p.ending if p is not None else None

    async def wait_closed(self) -> None:
        """Wait until the engine thread has ended (every suit stopped, links closed)."""
        await self._done.wait()

    def _report_subscriber_error(self, event: SessionEvent) -> None:
        self.emit(event.kind, event.message, **event.data)

    # -- faces beside the class ------------------------------------------------------------
    async def start_companion(self, task: Callable[..., Awaitable[Any]], name: str = "") -> Any:
        """Start a face (`nursery.start` target) in the faces' loop, beside the class.

        Like `ClassSession.companion`: its failure is reported once as an
        `interface_error` event and never ends the class. It is cancelled
        once the class has ended and every suit has been stopped.
        """
        assert self._faces_nursery is not None, "only inside open_engine_thread"
        return await self._faces_nursery.start(self._companion, name or callable_name(task), task)

    async def _companion(
        self,
        name: str,
        task: Callable[..., Awaitable[Any]],
        *,
        task_status: trio.TaskStatus[Any] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        started = False
        try:
            async with trio.open_nursery() as nursery:
                value = await nursery.start(partial(task))
                started = True
                task_status.started(value)
        except Exception as group:  # a face's failure, isolated: the class goes on
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

    # -- commands -------------------------------------------------------------------------
    async def submit(self, raw: bytes | str | Mapping[str, Any], source: str) -> CommandResult:
        """`commands.submit` across the boundary: take `raw` now, wait for its result."""
        return await self.desk.take(raw, source).wait()

    def emit(self, kind: str, message: str, client: int | None = None, **data: Any) -> None:
        """Add an event to the class's log (a face reporting its own trouble), in the engine."""
        self._to_engine(lambda: self._session.emit(kind, message, client, **data))

    def in_engine(self, fn: Callable[[], None]) -> bool:
        """Run `fn()` soon in the engine's loop (a seam for simulators, tests, benchmarks:
        e.g. `session.clock.seek`); False if the engine is gone. Its error fails the engine."""
        return self._to_engine(fn)

    def _to_engine(self, fn: Callable[[], None]) -> bool:
        token = self._engine_token
        if token is None:
            return False
        try:
            token.run_sync_soon(self._in_engine_loop, fn)
        except trio.RunFinishedError:
            return False
        return True

    def _in_engine_loop(self, fn: Callable[[], None]) -> None:
        """Run a callback handed over by the faces. Trio would crash the whole run on its
        error; instead the error fails the engine through its nursery, so the class ends
        the ordinary way (STOP_ALL to every suit first) and the faces get `EngineFailed`."""
        try:
            fn()
        except Exception as e:  # not swallowed: re-raised in the engine's nursery
            nursery = self._engine_nursery
            try:
                if nursery is None:
                    raise RuntimeError("no engine nursery yet")
                nursery.start_soon(_reraise, e)
            except RuntimeError:  # the engine's nursery is closed: the class is over
                self.late_errors.append(e)

    def _take(
        self,
        request: Request,
        raw: bytes | str | Mapping[str, Any],
        refuse: str | None,
        limited: bool = False,
        ceiling: str | None = None,
    ) -> None:
        """Hand one command to the engine's desk now; its answer comes back to `request`."""
        self._pending.add(request)
        source = request.source

        def take() -> None:  # in the engine loop, at once: an e-stop is latched right here
            if refuse is None:
                done = self._session.desk.take(raw, source, ceiling=ceiling)
            else:
                assert not isinstance(raw, Mapping)
                done = self._session.desk.refuse(raw, source, refuse, limited=limited)
            if done.result is not None:
                self._to_faces(self._answer, request, done)
            else:
                assert self._engine_nursery is not None
                self._engine_nursery.start_soon(self._await_answer, request, done)

        if not self._to_engine(take):
            self._answer(request, None)

    def _forget(self, source: str) -> None:
        """In the engine loop: forget `source`'s rate limit once it has rested."""

        async def when_rested() -> None:
            desk = self._session.desk
            limit = desk.limit_of(source)
            if not desk.rested(source):  # a closed connection spends no more: full by then
                await trio.sleep(limit.burst / limit.per_s)
            if desk.rested(source):
                desk.forget(source)

        def start() -> None:
            assert self._engine_nursery is not None
            self._engine_nursery.start_soon(when_rested)

        self._to_engine(start)

    async def _await_answer(self, request: Request, done: Request) -> None:
        await done.wait()
        self._to_faces(self._answer, request, done)

    def _answer(self, request: Request, done: Request | None) -> None:
        """In the faces' loop: the engine's answer to `request` (None: there is no engine)."""
        self._pending.discard(request)
        if done is None or done.result is None:
            request.finish(CommandResult(False, "", ENGINE_GONE))
            return
        request.request_id = done.request_id
        request.command = done.command
        request.over_limit = done.over_limit
        request.finish(done.result)

    # -- the engine thread ----------------------------------------------------------------
    def _to_faces(self, fn: Callable[..., None], *args: Any) -> None:
        """Run `fn(*args)` in the faces' loop, after everything handed over before it."""
        assert self._faces_token is not None
        with contextlib.suppress(trio.RunFinishedError):  # the faces are gone: see `_watch_faces`
            self._faces_token.run_sync_soon(fn, *args)

    def _thread_main(self) -> None:
        self.native_id = threading.get_native_id()
        try:
            if self._thread_setup is not None:
                self._thread_setup()
            self.outcome = trio.run(self._engine_root, clock=self._clock)
        except BaseException as e:  # told to the faces, who raise it there
            self.error = e
        finally:
            self._to_faces(self._thread_ended)

    async def _engine_root(self) -> Any:
        self._engine_token = trio.lowlevel.current_trio_token()
        session = self._session
        session.events.subscribe(self._forward)
        self._wake = trio.Event()
        self._publish()
        async with trio.open_nursery() as nursery:
            self._engine_nursery = nursery
            if self._stop_requested:  # the faces left before this loop had a token
                nursery.cancel_scope.cancel()
            nursery.start_soon(self._publisher)
            nursery.start_soon(self._watch_faces)
            nursery.start_soon(self._watch_end)
            self._to_faces(self._started.set)
            try:
                if self._hold:  # until the faces are ready (`go`): they see every event
                    self._held = trio.Event()
                    await self._held.wait()
                return await self._engine()
            finally:
                self._publish()
                nursery.cancel_scope.cancel()

    def _forward(self, event: SessionEvent) -> None:
        """The engine's one event subscriber: hand the event to the faces, mark a change."""
        self._to_faces(self.events.add, event)
        if self._wake is not None:
            self._wake.set()

    def _publish(self) -> None:
        s = self._session
        started = s.clock.started_at is not None
        t = s.totals
        self._published = Published(
            snapshot=s.class_snapshot(),
            class_s=s.class_time() if started else 0.0,
            at_monotonic=time.monotonic(),
            clock_rate=float(getattr(trio.lowlevel.current_clock(), "rate", 1.0)),
            started=started,
            ended=s.ended,
            ending=s.ending,
            ticks=s.ticks,
            charge_uC=t.charge_uC.copy(),
            stim_s=t.stim_s.copy(),
            max_mA=t.max_mA.copy(),
            contractions=t.contractions.copy(),
            target_mA=s.board.target_mA.copy(),
            engine_cpu_s=time.thread_time(),
        )

    async def _publisher(self) -> None:
        while True:
            with trio.move_on_after(self._period):
                assert self._wake is not None
                await self._wake.wait()
            self._wake = trio.Event()
            self._publish()
            await trio.sleep(MIN_PUBLISH_GAP_S)

    async def _watch_end(self) -> None:
        await self._session.wait_finished()
        with trio.move_on_after(5.0):
            await self._session.closed.wait()  # STOP_ALL sent, "ended" announced
        self._publish()
        self._to_faces(self._finished.set)

    async def _watch_faces(self) -> None:
        """End the class if the faces' loop is gone (it cannot say so any more)."""
        assert self._faces_token is not None
        while True:
            await trio.sleep(FACES_CHECK_S)
            try:
                self._faces_token.run_sync_soon(_nothing)
            except trio.RunFinishedError:
                assert self._engine_nursery is not None
                self._engine_nursery.cancel_scope.cancel()
                return

    def _thread_ended(self) -> None:
        """In the faces' loop: the engine thread has ended; answer whatever still waits."""
        for request in list(self._pending):
            self._answer(request, None)
        self._finished.set()
        self._done.set()

    def _request_stop(self) -> None:
        """From the faces' loop: end the class (interrupted) unless it has ended already."""
        self._stop_requested = True  # seen by the engine loop if it has no token yet
        self._to_engine(self._stop)

    def _stop(self) -> None:
        """In the engine loop: end the class now (its shielded close stops every suit)."""
        self._stop_requested = True
        if self._engine_nursery is not None:
            self._engine_nursery.cancel_scope.cancel()


def _nothing() -> None:
    pass


async def _reraise(error: Exception) -> None:
    raise error


@dataclass(frozen=True)
class _Board:
    target_mA: np.ndarray


@dataclass(frozen=True)
class _Totals:
    charge_uC: np.ndarray
    stim_s: np.ndarray
    max_mA: np.ndarray
    contractions: np.ndarray


class _Clock:
    def __init__(self, port: EnginePort) -> None:
        self._port = port

    @property
    def started_at(self) -> float | None:
        """Not None once the class has started (the engine's clock is not the faces')."""
        p = self._port.published
        return p.at_monotonic - p.class_s if p is not None and p.started else None


class FacesSession:
    """What the faces read and call of a `ClassSession`, served from an `EnginePort`.

    The existing faces (web console, MQTT bridge, session recorder, live view)
    take a session; hand them this one and they run in the faces' thread
    against the engine's publications: `events` is the port's mirror log,
    `desk` the port's desk (`commands.submit` works as before), `snapshot()`,
    `totals`, `board.target_mA`, `ending` and `state` are the latest
    publication's, `closed` is set once the engine has stopped every suit
    (or its thread has ended), `emit` adds an event in the engine. Static
    facts (plan, layout, clients, ids, rate) are the session's own.
    `client_refs` is the engine's dict itself: fill it before the class starts.
    """

    def __init__(self, port: EnginePort, session: ClassSession) -> None:
        self.port = port
        self.plan = session.plan
        self.layout = session.layout
        self.clients = list(session.clients)
        self.session_id = session.session_id
        self.rate_hz = session.rate_hz
        self.client_refs = session.client_refs
        self.events = port.events
        self.desk = port.desk
        self.clock = _Clock(port)
        self.closed = port._finished

    def _latest(self) -> Published:
        p = self.port.published
        if p is None:
            raise RuntimeError("the engine has not published anything yet")
        return p

    def class_snapshot(self) -> ClassSnapshot:
        return self.port.class_snapshot()

    def snapshot(self) -> dict[str, Any]:
        return self.port.snapshot()

    def class_time(self) -> float:
        """The class's time now: the last publication's, moved on by the wall clock since
        (at the engine clock's rate: `sim run --speed 3` moves it 3 s a second)."""
        p = self._latest()
        if not p.started:
            return 0.0
        if p.ended:
            return p.class_s
        return p.class_s + (time.monotonic() - p.at_monotonic) * p.clock_rate

    @property
    def totals(self) -> _Totals:
        p = self._latest()
        return _Totals(p.charge_uC, p.stim_s, p.max_mA, p.contractions)

    @property
    def board(self) -> _Board:
        return _Board(self._latest().target_mA)

    @property
    def ending(self) -> str | None:
        return self._latest().ending

    @property
    def state(self) -> ClassState:
        return self._latest().snapshot.state

    @property
    def ended(self) -> bool:
        return self.port.ended

    async def wait_finished(self) -> None:
        await self.port.wait_finished()

    def emit(self, kind: str, message: str, client: int | None = None, **data: Any) -> None:
        self.port.emit(kind, message, client, **data)


class PortDesk:
    """`CommandDesk`'s two synchronous entries, as a face holding a port calls them.

    `take` returns a `Request` of the faces' loop at once; the command itself
    is taken by the engine's desk in the engine's loop the moment it gets
    there (an e-stop latched right then), and the result comes back.
    """

    def __init__(self, port: EnginePort) -> None:
        self._port = port

    def take(
        self, raw: bytes | str | Mapping[str, Any], source: str, *, ceiling: str | None = None
    ) -> Request:
        """Hand one command from `source` (and its shared `ceiling`) to the engine now.
        Never raises."""
        request = Request(source, None, None)
        # a mapping is read in the engine's thread later: hand it a copy the face cannot change
        raw = dict(raw) if isinstance(raw, Mapping) else raw
        self._port._take(request, raw, None, ceiling=ceiling)
        return request

    def rested(self, source: str) -> bool:
        """Always True here: `forget` hands the forgetting to the engine, which waits there
        until `source` has rested (the face need not keep it)."""
        return True

    def forget(self, source: str) -> None:
        """Drop `source`'s rate limit in the engine's desk once it has rested."""
        self._port._forget(source)

    def refuse(
        self, raw: bytes | str, source: str, reason: str, *, limited: bool = False
    ) -> Request:
        """Answer input a face will not carry out, in the engine's log like every refusal.

        `limited`: as `CommandDesk.refuse` (the refusal spends from the source's limit).
        """
        request = Request(source, None, None)
        self._port._take(request, raw, reason, limited)
        return request


@asynccontextmanager
async def open_engine_thread(
    session: ClassSession,
    engine: Callable[[], Awaitable[Any]],
    *,
    publish_hz: float = PUBLISH_HZ,
    name: str = "class engine",
    thread_setup: Callable[[], None] | None = None,
    clock: trio.abc.Clock | None = None,
    hold: bool = False,
) -> AsyncIterator[EnginePort]:
    """Run `engine()` (which runs `session`'s class) in a thread of its own; yield its port.

    `engine` is an async function called with no arguments in the new
    thread's Trio loop (e.g. `SimulatedClass.run`, or a function around
    `open_class_session`); `session` must not be touched by the caller from
    here on except through the port. The block ends when the caller leaves it:
    the class, if still going, is interrupted (every suit stopped) and the
    engine thread waited for. If the engine thread fails, the block is
    cancelled and `EngineFailed` raised. `thread_setup` runs first in the
    new thread, before its Trio loop (e.g. to raise its scheduling priority:
    `os.sched_setscheduler(0, …)` there applies to that thread alone).
    `clock` is the engine loop's clock (e.g. `MockClock(rate=3)` for `sim run
    --speed 3`); the faces keep the real one. With `hold` the class waits for
    `port.go()`, so faces started first (subscribers, recorder, console) miss
    none of its events.
    """
    if not math.isfinite(publish_hz) or publish_hz <= 0:
        raise ValueError("publish_hz must be a positive number")
    port = EnginePort(
        session,
        engine,
        publish_hz=publish_hz,
        name=name,
        thread_setup=thread_setup,
        clock=clock,
        hold=hold,
    )
    port._faces_token = trio.lowlevel.current_trio_token()
    thread = port._thread = threading.Thread(target=port._thread_main, name=name, daemon=False)
    _hold_switch_interval()
    try:
        thread.start()
        body_error: BaseException | None = None
        try:
            async with trio.open_nursery() as nursery:
                port._faces_nursery = nursery
                nursery.start_soon(_raise_if_failed, port)
                with trio.CancelScope(shield=True):
                    await _first_of(port._started, port._done)
                if port._done.is_set() and port.error is not None:
                    raise EngineFailed(f"the class engine failed: {port.error!r}") from port.error
                try:
                    yield port
                except BaseException as e:
                    body_error = e
                    port._request_stop()  # stop first: before the faces are cancelled
                    raise
                # leaving: the class ends first (every suit stopped), then its faces
                port._request_stop()
                with trio.CancelScope(shield=True):
                    await port._finished.wait()
                nursery.cancel_scope.cancel()
        except BaseExceptionGroup as group:
            # the block's own exception comes out as itself, not wrapped by our nursery
            if body_error is not None and group.exceptions == (body_error,):
                raise body_error from None
            raise
        finally:
            with trio.CancelScope(shield=True):
                port._request_stop()
                await port._done.wait()
                thread.join()  # it has handed over its last callback: a moment at most
    finally:
        _release_switch_interval()


async def _first_of(a: trio.Event, b: trio.Event) -> None:
    async with trio.open_nursery() as nursery:
        for ev in (a, b):
            nursery.start_soon(_wait_then_cancel, ev, nursery.cancel_scope)


async def _wait_then_cancel(ev: trio.Event, scope: trio.CancelScope) -> None:
    await ev.wait()
    scope.cancel()


async def _raise_if_failed(port: EnginePort) -> None:
    await port.wait_closed()
    if port.error is not None:
        raise EngineFailed(f"the class engine failed: {port.error!r}") from port.error


__all__ = [
    "ENGINE_GONE",
    "EngineFailed",
    "EnginePort",
    "FacesSession",
    "PortDesk",
    "Published",
    "open_engine_thread",
]
