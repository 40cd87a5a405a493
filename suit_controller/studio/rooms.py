"""The studio controller's classes: one class per room, each in a task of its own.

Theory of operation
-------------------
`Studio.run` owns one nursery for the whole program. A class is set up
(`set_up_class`: check-in, then `Store.open_class` with the rest-day guard)
and started in that nursery in a *room task* of its own, which runs
`connect_class` in its own nursery with the session recorder beside it. The
class waits for the trainer's Start (`autostart=False`).

A failure inside a class (a suit's task, the tick loop, the recorder) ends
that class — its own shielded close stops every one of its suits first — and
comes out of its room task, where it is written on the class (`failure`) and
the room is free again. Only the last ended class of each room stays in
`classes` (its summary and console still answer); older ones are read from
the records. A failure never reaches the Studio's nursery, so the other
rooms' classes go on. Cancellation (the server shutting down) is not caught:
it ends every class, and every suit is stopped on the way out.

Every command from the studio's pages and API goes through `send_command`,
the studio's one call into the engine's command path.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Protocol

import trio

from suit_controller.classroom import start_class_session
from suit_controller.clients import ClientSpec
from suit_controller.commands import CommandResult, submit
from suit_controller.links.base import SuitLink
from suit_controller.session import ClassSession
from suit_controller.snapshot import ClassSnapshot
from suit_controller.studio.checkin import CheckIn, ClassRefused, check_in
from suit_controller.studio.library import Library, LibraryError, Resolved
from suit_controller.studio.recorder import SessionRecorder
from suit_controller.studio.screening import DEFAULT_POLICY, SitePolicy
from suit_controller.studio.store import CheckInRefused, OpenedClass, Store, StoreError
from workouts.plan import Plan, compile_workout

if TYPE_CHECKING:
    from suit_controller.mqtt.bridge import MqttBridge
    from suit_controller.mqtt.topics import BrokerUrl

log = logging.getLogger("suit_controller.studio")

#: Intensity a client starts at the first time (mA), before the trainer raises it.
DEFAULT_START_MA = 10.0


@dataclass(frozen=True)
class SuitSeen:
    """A suit the controller can reach: address, battery (%), signal (dBm), in a class or not.

    `state` and `output_mA` are what the suit itself reports (its firmware's
    state: idle, armed, stopped, watchdog; its highest output now), when the
    rack can know them (simulated suits); None otherwise.
    """

    address: str
    battery_pct: int | None
    rssi_dbm: int | None
    in_use: bool = False
    state: str | None = None
    output_mA: float | None = None


class SuitRack(Protocol):
    """Where the studio's suits come from (simulated suits, or a Bluetooth scan)."""

    #: Whether the suits are simulated (their classes are recorded as simulated).
    simulated: bool

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Keep the suits available until cancelled."""

    async def scan(self) -> list[SuitSeen]:
        """The suits in reach now."""

    def link(self, address: str) -> SuitLink:
        """A new link to the suit at `address` (KeyError when there is none)."""

    def prepare(self, session: ClassSession, addresses: Sequence[str]) -> None:
        """Called once a class is built, before it starts (simulated suits add bodies here)."""


@dataclass(frozen=True)
class Arrival:
    """A client at the door for a class: who, in which suit, and the check-in answers."""

    client: str
    suit: str
    ate_recently: bool = False
    #: They feel unwell today (a cold, a fever, …): an acute illness refuses them.
    unwell: bool = False


class SetUpRefused(Exception):
    """The class cannot start; `reasons` in a trainer's words, one line each."""

    def __init__(self, reasons: list[str]) -> None:
        self.reasons = reasons
        super().__init__("; ".join(reasons))


@dataclass
class StudioClass:
    """A class the studio runs in one room."""

    room: str
    workout: str
    plan: Plan
    opened: OpenedClass
    session: ClassSession
    suits: tuple[str, ...]
    client_ids: tuple[str, ...]
    guidance: tuple[str, ...]
    set_up_by: str
    simulated: bool
    #: The exact version of the workout the class runs (SHA-256 of its YAML text).
    workout_hash: str = ""
    #: Why the class ended on its own failure (None while it runs, or when it ended normally).
    failure: str | None = None
    done: trio.Event = field(default_factory=trio.Event)

    @property
    def id(self) -> str:
        return self.opened.id

    @property
    def state(self) -> str:
        """ready, running, paused, estopped, finished, stopped, or interrupted."""
        if self.session.ending == "interrupted" or self.failure is not None:
            return "interrupted"
        return self.session.state.value

    def snapshot(self) -> ClassSnapshot:
        return self.session.class_snapshot()


def room_segment(room: str) -> str:
    """A room's name as an MQTT topic segment: "Room 1" -> "room-1"."""
    slug = re.sub(r"[^a-z0-9._-]+", "-", room.strip().lower()).strip("-")
    return slug or "room"


@dataclass(frozen=True)
class StudioMqtt:
    """Where the studio's classes publish: every room's class gets a bridge of its own
    under `ems/<site>/<room segment>/` (the same topics and schemas as `sim run --mqtt`)."""

    broker: BrokerUrl
    site: str = "studio"


class Studio:
    """One studio controller: the records, the suits, and a class per room."""

    def __init__(
        self,
        store: Store,
        rack: SuitRack,
        *,
        policy: SitePolicy = DEFAULT_POLICY,
        mqtt: StudioMqtt | None = None,
    ) -> None:
        self.store = store
        self.rack = rack
        self.policy = policy
        self.mqtt = mqtt
        #: Called with (room segment, bridge) when a class's MQTT bridge starts and with
        #: (room segment, None) when its class has ended (metrics and health watch them).
        self.bridge_watchers: list[Callable[[str, MqttBridge | None], None]] = []
        self.classes: dict[str, StudioClass] = {}
        self.library = Library(store)
        self._nursery: trio.Nursery | None = None
        #: One set-up at a time: two tablets cannot both take a room or a suit.
        self._setting_up = trio.Lock()
        #: Called with each class once it is built, before it starts (metrics subscribe here).
        self.class_watchers: list[Callable[[StudioClass], None]] = []

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Keep the suits and the rooms' classes running until cancelled."""
        async with trio.open_nursery() as nursery:
            await nursery.start(self.rack.run)
            self._nursery = nursery
            task_status.started()
            try:
                await trio.sleep_forever()
            finally:
                self._nursery = None

    def _keyed_link(self, address: str) -> SuitLink:
        """The rack's link to the suit, carrying its key from the records if it is enrolled
        here (the driver signs every frame with it; an enrolled suit refuses unsigned ones)."""
        from suit_controller.studio.suit_keys import suit_key

        link = self.rack.link(address)
        key = suit_key(self.store, address)
        if key is not None:
            link.suit_key = key  # type: ignore[attr-defined]  # BleLink and InProcessLink
        return link

    def spawn(self, fn: Callable[[], Awaitable[None]]) -> None:
        """Run `fn` beside the rooms until it ends or the studio stops (the designer's runs)."""
        if self._nursery is None:
            raise RuntimeError("the studio is not running")
        self._nursery.start_soon(fn)

    # -- rooms ------------------------------------------------------------------------
    def in_room(self, room: str) -> StudioClass | None:
        """The class going on in `room` (not yet ended), if any."""
        for k in self.classes.values():
            if k.room == room and not k.done.is_set():
                return k
        return None

    def busy_suits(self) -> set[str]:
        return {s for k in self.classes.values() if not k.done.is_set() for s in k.suits}

    async def scan(self) -> list[SuitSeen]:
        busy = self.busy_suits()
        return [replace(s, in_use=s.address in busy) for s in await self.rack.scan()]

    # -- setting a class up -------------------------------------------------------------
    async def set_up_class(
        self,
        room: str,
        workout: str,
        arrivals: Sequence[Arrival],
        trainers: Sequence[str],
        *,
        by: str,
    ) -> StudioClass:
        """Check every client in, open the class in the records and connect its suits.

        The class waits for Start. Raises SetUpRefused listing every reason at once
        (nothing is recorded then).
        """
        async with self._setting_up:
            return await self._set_up(room, workout, arrivals, trainers, by=by)

    async def _set_up(
        self,
        room: str,
        workout: str,
        arrivals: Sequence[Arrival],
        trainers: Sequence[str],
        *,
        by: str,
    ) -> StudioClass:
        if self._nursery is None:
            raise SetUpRefused(["the studio is not running"])
        reasons: list[str] = []
        if self.in_room(room) is not None:
            reasons.append(f"a class is already on in {room}: end it first")
        resolved: Resolved | None = None
        try:
            resolved = await trio.to_thread.run_sync(self.library.resolve, workout, by)
        except LibraryError as e:
            reasons.append(str(e))
        if not arrivals:
            reasons.append("pick at least one client")
        busy = self.busy_suits()
        known = {s.address for s in await self.rack.scan()}
        suits = [a.suit for a in arrivals]
        for s in sorted(set(suits)):
            if suits.count(s) > 1:
                reasons.append(f"suit {s} is given to {suits.count(s)} clients")
            if s not in known:
                reasons.append(f"suit {s} is not in reach: scan again")
            elif s in busy:
                reasons.append(f"suit {s} is in another room's class")
        if reasons or resolved is None:
            raise SetUpRefused(reasons)
        chosen: Resolved = resolved
        plan = compile_workout(chosen.workout)
        simulated = self.rack.simulated
        policy = replace(self.policy, min_days_between_sessions=0) if simulated else self.policy

        def check() -> tuple[list[ClientSpec], OpenedClass, list[str], list[str]]:
            unwell = [
                f"{self.store.client(a.client).name} feels unwell today: no EMS training "
                "while ill (come back when well)"
                for a in arrivals
                if a.unwell
            ]
            try:
                specs, roster, guidance = check_in(
                    self.store,
                    [CheckIn(a.client, a.suit, a.ate_recently) for a in arrivals],
                    list(trainers),
                    plan.layout,
                    default_intensity_mA=DEFAULT_START_MA,
                    policy=policy,
                )
            except ClassRefused as e:
                raise ClassRefused(unwell + e.reasons) from None
            if unwell:
                raise ClassRefused(unwell)
            opened = self.store.open_class(
                chosen.record_name,
                roster,
                simulated=simulated,
                room=room,
                policy=policy,
                workout_hash=chosen.hash,
            )
            return specs, opened, guidance, [r.client_id or "" for r in roster]

        try:
            specs, opened, guidance, ids = await trio.to_thread.run_sync(check)
        except (ClassRefused, CheckInRefused) as e:
            raise SetUpRefused(e.reasons) from None
        except StoreError as e:
            raise SetUpRefused([str(e)]) from None
        try:
            links = [self._keyed_link(a.suit) for a in arrivals]
            session = ClassSession(plan, specs, links)
            # commands may name a client by id: two clients may share a name
            session.client_refs.update({cid: i for i, cid in enumerate(ids) if cid})
            self.rack.prepare(session, suits)
        except BaseException:
            await self._discard(opened)  # it never started: not left `running` in the records
            raise
        klass = StudioClass(
            room,
            resolved.record_name,
            plan,
            opened,
            session,
            tuple(suits),
            tuple(ids),
            tuple(guidance),
            by,
            simulated,
            resolved.hash,
        )
        for watch in self.class_watchers:
            watch(klass)
        self.classes[klass.id] = klass
        await self._nursery.start(self._room, klass)
        return klass

    async def _discard(self, opened: OpenedClass) -> None:
        """Remove from the records a class whose session could not be built (shielded: it
        runs on the way out of a cancelled set-up too). Its failure is logged, never raised
        over the error that ended the set-up."""
        with trio.CancelScope(shield=True):
            try:
                await trio.to_thread.run_sync(self.store.discard_class, opened)
            except Exception as e:  # the records' failure: the set-up's own error goes on
                log.error("class %s never started and is not discarded: %s", opened.id, e)

    async def _room(
        self, klass: StudioClass, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """The room's task: the class, and what its failure means (it ends only this class)."""
        recorder = SessionRecorder(self.store.location, klass.session, klass.opened)
        companions: list[Callable[..., Awaitable[None]]] = [recorder.run]
        if self.mqtt is not None:
            companions.append(self._bridge(klass).run)
        try:
            async with trio.open_nursery() as nursery:
                await start_class_session(
                    nursery, klass.session, autostart=False, companions=companions
                )
                task_status.started()
        except Exception as e:  # an ExceptionGroup of this class's errors; never Cancelled
            klass.failure = _first_message(e)
            log.error("room %s: class %s failed: %s", klass.room, klass.id, klass.failure)
        finally:
            klass.done.set()
            self._forget_ended(klass)
            if self.mqtt is not None:
                for watch in self.bridge_watchers:
                    watch(room_segment(klass.room), None)

    def _bridge(self, klass: StudioClass) -> MqttBridge:
        """The class's MQTT bridge (an interface: its failure never ends the class)."""
        from suit_controller.mqtt.bridge import MqttBridge, recorded_ids
        from suit_controller.mqtt.topics import Topics

        assert self.mqtt is not None
        segment = room_segment(klass.room)
        bridge = MqttBridge(
            klass.session,
            self.mqtt.broker,
            Topics.for_room(self.mqtt.site, segment),
            ids=recorded_ids(self.store.location, klass.opened.id),
            store=self.store.location,
        )
        for watch in self.bridge_watchers:
            watch(segment, bridge)
        return bridge

    def _forget_ended(self, last: StudioClass) -> None:
        """Keep in memory only the last ended class of `last`'s room; the records hold the rest.

        A controller that serves for months would otherwise keep every class it
        ever ran (its session, snapshots and events) in memory.
        """
        for k in list(self.classes.values()):
            if k is not last and k.room == last.room and k.done.is_set():
                del self.classes[k.id]

    # -- the one way in for commands ------------------------------------------------------
    async def send_command(
        self, klass: StudioClass, raw: dict[str, Any], source: str
    ) -> CommandResult:
        """Every command from the studio's pages and API, into the engine's one command path.

        `raw` is the command as sent (`{"do": "set_intensity", ...}`); refusals
        (malformed, not now) come back as a result, never an exception.
        """
        if klass.done.is_set():
            return CommandResult(False, str(raw.get("do", "?")), "the class has ended")
        return await submit(klass.session, raw, source)

    async def wait_ended(self, klass: StudioClass) -> None:
        """Wait until the class's room task is over (the record written, every suit stopped)."""
        await klass.done.wait()


def _first_message(e: BaseException) -> str:
    while isinstance(e, BaseExceptionGroup) and e.exceptions:
        e = e.exceptions[0]
    return f"{type(e).__name__}: {e}"
