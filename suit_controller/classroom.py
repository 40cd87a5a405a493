"""Assemble, run and record a class: what every face starts (CLI, studio server, simulator).

`open_class` is to a class what trio-websocket's `open_websocket` is to a
connection::

    async with open_class(plan, clients, links, record_to=folder) as session:
        await session.execute(SetIntensity(client=1, delta_mA=1), source="tablet")
        await session.wait_finished()

and `connect_class(nursery, …)` is the form for a program that already owns a
nursery (a web server starting one class per room).

Theory of operation
-------------------
A class runs in a nursery of its own: the session (its tick task and one task
per suit) and its companions (a session recorder, the MQTT bridge, a console).
Leaving the `async with` block ends the class: if it is still going it is
stopped through the command path, as if the trainer pressed Stop (ending
"stopped", or "estopped" while an emergency stop is latched); an exception or
a cancellation in the block, or an error in any of the class's tasks, ends it
"interrupted". Whatever ends it, the session's shielded close has sent
STOP_ALL to every suit before `open_class` returns or raises, and the record
(`session.json`) is written after that, in a worker thread so that other
classes of the same program keep their ticks.

A failure inside a class comes out of that class's `open_class` (or out of
the nursery given to `connect_class`) and nowhere else: a program running
several rooms runs each class in a task of its own and decides there what a
failed class means for the room (see the README, "Embedding the engine").
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path
from typing import Any

import trio

from suit_controller.clients import ClientSpec
from suit_controller.commands import Stop
from suit_controller.links.base import SuitLink
from suit_controller.records import callable_name
from suit_controller.session import CLOSE_TIMEOUT_S, DEFAULT_RATE_HZ, ClassSession
from suit_controller.ticks import TickSource
from workouts.plan import Plan

#: A task run beside a class, started with `nursery.start` (it calls `task_status.started()`).
Companion = Callable[..., Awaitable[Any]]

#: The command source recorded when leaving `open_class`'s block stops a class still going.
LEAVING_SOURCE = "program"

RECORD_NAME = "session.json"


def utc_now_iso() -> str:
    """The wall-clock time now, UTC, to the second (a record's `started_at`)."""
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def class_record(
    session: ClassSession, *, started_at: str = "", mode: str = "class"
) -> dict[str, Any]:
    """The record of a class as the engine saw it: what it sent each channel, and every event.

    `class_s` is the class time of the `ended` event (or now, for a class still going).
    """
    ended = session.events.of_kind("ended")
    started = session.clock.started_at is not None
    now_s = session.class_time() if started else 0.0
    class_s = ended[-1].t if ended else now_s
    t = session.totals
    names = session.layout.names
    return {
        "mode": mode,
        "workout": session.plan.workout.name,
        "layout": session.layout.name,
        "started_at": started_at,
        "ended": session.ending or "interrupted",
        "class_s": round(class_s, 3),
        "plan_s": round(session.plan_time() if started else 0.0, 3),
        "rate_hz": session.rate_hz,
        "ticks": session.ticks,
        "clients": [
            {
                "name": c.name,
                "suit": d.link.address,
                "link_drops": d.drops,
                "reconnects": d.reconnects,
                "channels": {
                    ch: {
                        "charge_uC": round(float(t.charge_uC[i, j]), 3),
                        "stim_s": round(float(t.stim_s[i, j]), 4),
                        "max_mA": float(t.max_mA[i, j]),
                        "contractions": int(t.contractions[i, j]),
                    }
                    for j, ch in enumerate(names)
                },
            }
            for i, (c, d) in enumerate(zip(session.clients, session.drivers, strict=True))
        ],
        "events": [e.as_dict() for e in session.events.events],
    }


def write_record(record: dict[str, Any], out_dir: Path) -> Path:
    """Write `record` as OUT_DIR/session.json, atomically (a reader never sees half a file)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / RECORD_NAME
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(record, indent=1), encoding="utf-8")
    tmp.replace(path)
    return path


async def _run_class(
    session: ClassSession,
    autostart: bool,
    companions: Sequence[Companion],
    record_to: Path | None,
    *,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """The class's own task: the session, its companions, and the record at the end."""
    started_at = utc_now_iso()
    try:
        async with trio.open_nursery() as nursery:
            await nursery.start(partial(session.run, autostart=autostart))
            for companion in companions:
                # an interface's failure is reported once and never ends the class
                await nursery.start(session.companion, callable_name(companion), companion)
            task_status.started()
            await session.wait_finished()
            # The session stops every suit, then announces the end: wait for both, so the
            # companions (recorder, MQTT) still see the "ended" event before they go.
            with trio.move_on_after(2 * CLOSE_TIMEOUT_S + 1.0):
                await session.closed.wait()
            nursery.cancel_scope.cancel()
    finally:
        if record_to is not None:
            record = class_record(session, started_at=started_at)
            with trio.CancelScope(shield=True):
                await trio.to_thread.run_sync(write_record, record, record_to)


async def start_class_session(
    nursery: trio.Nursery,
    session: ClassSession,
    *,
    autostart: bool = True,
    companions: Sequence[Companion] = (),
    record_to: Path | None = None,
) -> ClassSession:
    """Start a prepared session in `nursery`; return it once its suits' tasks are running.

    For callers that subscribe to the session's events or add tick observers
    before it starts. The class ends when it finishes, is stopped, or the
    nursery is cancelled; an error in it raises out of `nursery`.
    """
    await nursery.start(partial(_run_class, session, autostart, companions, record_to))
    return session


async def connect_class(
    nursery: trio.Nursery,
    plan: Plan,
    clients: Sequence[ClientSpec],
    links: Sequence[SuitLink],
    *,
    rate_hz: float = DEFAULT_RATE_HZ,
    tick_source: TickSource | None = None,
    autostart: bool = True,
    companions: Sequence[Companion] = (),
    record_to: Path | None = None,
) -> ClassSession:
    """Start a class in `nursery` (one suit link per client); return its running session.

    The nursery-taking form of `open_class`: the class runs until it ends or
    the nursery is cancelled, and every suit is stopped either way.
    """
    session = ClassSession(plan, clients, links, rate_hz=rate_hz, tick_source=tick_source)
    return await start_class_session(
        nursery, session, autostart=autostart, companions=companions, record_to=record_to
    )


@asynccontextmanager
async def open_class_session(
    session: ClassSession,
    *,
    autostart: bool = True,
    companions: Sequence[Companion] = (),
    record_to: Path | None = None,
) -> AsyncIterator[ClassSession]:
    """`open_class` for a session built beforehand (see `start_class_session`)."""
    body_error: BaseException | None = None
    body_context: BaseException | None = None
    try:
        async with trio.open_nursery() as nursery:
            await start_class_session(
                nursery, session, autostart=autostart, companions=companions, record_to=record_to
            )
            try:
                yield session
            except BaseException as e:
                body_error, body_context = e, e.__context__
                raise
            if not session.ended:
                await session.execute(Stop(), source=LEAVING_SOURCE)
    except BaseExceptionGroup as group:
        # The block's own exception comes out as itself, not wrapped by our nursery.
        if body_error is not None and group.exceptions == (body_error,):
            try:
                raise body_error
            finally:
                body_error.__context__ = body_context
        raise


@asynccontextmanager
async def open_class(
    plan: Plan,
    clients: Sequence[ClientSpec],
    links: Sequence[SuitLink],
    *,
    rate_hz: float = DEFAULT_RATE_HZ,
    tick_source: TickSource | None = None,
    autostart: bool = True,
    companions: Sequence[Companion] = (),
    record_to: Path | None = None,
) -> AsyncIterator[ClassSession]:
    """Run a class for the duration of an `async with` block; yield its running session.

    One suit link per client, in order. `autostart=False` leaves the class
    ready until a `Start` command. `companions` run beside the class and end
    with it. With `record_to`, the record is written there as session.json
    once every suit has been stopped, whatever ended the class. Leaving the
    block stops a class still going; see the module's theory of operation.
    """
    session = ClassSession(plan, clients, links, rate_hz=rate_hz, tick_source=tick_source)
    async with open_class_session(
        session, autostart=autostart, companions=companions, record_to=record_to
    ) as running:
        yield running


__all__ = [
    "Companion",
    "class_record",
    "connect_class",
    "open_class",
    "open_class_session",
    "start_class_session",
    "utc_now_iso",
    "write_record",
]
