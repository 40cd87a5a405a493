"""A class against simulated suits: the real engine, in-process links, injected faults.

Built on `suit_controller.classroom.open_class_session`, like every other
face: the suits (and their simulated radio) run in a nursery around the
class, so the class's shielded stop reaches them before they stop.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import trio

from channels.limits import DEVICE_MAX_MA
from sim.ble_world import BleRoom
from sim.body import BodyResult, make_population
from sim.body.document import body_document, plan_segments
from sim.body.observer import BodyObserver
from sim.c_firmware import CSuitFirmware
from sim.faults import Fault
from sim.faulty_link import FaultyLink, FaultyTickSource
from sim.radio import Radio
from sim.suit import SimulatedSuit
from suit_controller.actions import Action
from suit_controller.classroom import Companion, open_class_session, utc_now_iso, write_record
from suit_controller.clients import ClientSpec
from suit_controller.commands import Stop, submit
from suit_controller.links import InProcessLink, SuitLink
from suit_controller.links.adapters import AdapterPool
from suit_controller.links.ble import BleLink
from suit_controller.protocol import REQUIRED_ATT_PAYLOAD
from suit_controller.protocol.enrollment import (
    SuitKey,
    encode_enroll,
    new_studio_id,
    new_suit_key,
)
from suit_controller.session import ClassSession, ClassState
from workouts.plan import Plan

#: In a scripted class, an emergency stop that no action resets within this long ends
#: the class (whatever actions are still to come).
ESTOP_GRACE_S = 10.0


@dataclass
class SimulatedClass:
    """N simulated clients, each in a simulated suit, running one plan."""

    plan: Plan
    n_clients: int
    intensity_mA: float = 40.0
    rate_hz: float = 40.0
    seed: int = 0
    actions: Sequence[Action] = ()
    faults: Sequence[Fault] = ()
    clients: Sequence[ClientSpec] | None = None
    att_payload: int = REQUIRED_ATT_PAYLOAD
    #: Tasks started beside the class (e.g. a session recorder), as `nursery.start` targets.
    companions: Sequence[Companion] = ()
    #: Simulate the clients' bodies: force, fatigue, sensation, requests (see sim.body).
    body: bool = True
    #: "inprocess", or "ble": bleak's real client API over a bumble host stack (needs
    #: trio-asyncio's loop, opened by the caller).
    link: str = "inprocess"
    #: Source id of the actions' commands (rate limits are per source).
    actions_source: str = "actions"
    #: Wrap every suit's link in a `FaultyLink` (see `faulty_links`) and tick through a
    #: `FaultyTickSource` (`faulty_ticks`), to inject engine errors.
    faulty: bool = False
    #: The suits' firmware: "python" (sim/firmware.py) or "c" (the portable C core, firmware/).
    firmware: str = "python"
    #: Enroll every suit in a studio first (issue 18): each gets a random key, refuses
    #: unsigned frames, and the controller signs every frame with it.
    authenticated: bool = False
    #: With link "ble": the controller's simulated adapters by name (suits spread over
    #: them), and the air's model (None: bumble's instant LocalLink).
    adapters: Sequence[str] = ("sim-hci0",)
    radio: Radio | None = field(default_factory=Radio)
    suits: list[SimulatedSuit] = field(init=False)
    session: ClassSession = field(init=False)
    started_at: str = field(init=False, default="")
    ended_at: float = field(init=False, default=0.0)
    #: how many of `actions` have been carried out
    _actions_done: int = field(init=False, default=0)

    def __post_init__(self) -> None:
        n = len(self.plan.layout)
        if self.firmware not in ("python", "c"):
            raise ValueError(f"unknown firmware {self.firmware!r}: python or c")
        self.suits = [
            SimulatedSuit(
                f"SIM-{i + 1:02d}",
                n,
                att_payload=self.att_payload,
                seed=self.seed + i,
                firmware=CSuitFirmware(n) if self.firmware == "c" else None,
            )
            for i in range(self.n_clients)
        ]
        specs = (
            list(self.clients)
            if self.clients is not None
            else [
                ClientSpec(f"client-{i + 1}", intensity_mA=min(self.intensity_mA, DEVICE_MAX_MA))
                for i in range(self.n_clients)
            ]
        )
        keys: list[SuitKey | None] = [None] * len(self.suits)
        if self.authenticated:
            studio = new_studio_id()
            for i, suit in enumerate(self.suits):
                key = keys[i] = new_suit_key()
                suit.firmware.auth.handle(encode_enroll(studio, key))  # enrolled beforehand
        links: list[SuitLink]
        self.room: BleRoom | None = None
        #: With link "ble": which adapter each suit is connected through.
        self.adapter_pool: AdapterPool | None = None
        if self.link == "ble":
            self.room = BleRoom(self.suits, adapter_names=self.adapters, radio=self.radio)
            pool = self.adapter_pool = self.room.adapter_pool()
            links = [
                BleLink(a, suit_key=k, adapters=pool, **self.room.client_kwargs())
                for a, k in zip(self.room.addresses, keys, strict=True)
            ]
        elif self.link == "inprocess":
            links = [
                InProcessLink(s, att_payload=self.att_payload, suit_key=k)
                for s, k in zip(self.suits, keys, strict=True)
            ]
        else:
            raise ValueError(f"unknown link kind {self.link!r}")
        #: With `faulty=True`, each client's link, armed through its `fail_next_send` etc.
        self.faulty_links: list[FaultyLink] = []
        if self.faulty:
            self.faulty_links = [FaultyLink(link) for link in links]
            links = list(self.faulty_links)
        #: With `faulty`: the tick source, armed with `fail_next_tick` to raise in the tick.
        self.faulty_ticks = FaultyTickSource()
        self.session = ClassSession(
            self.plan,
            specs,
            links,
            rate_hz=self.rate_hz,
            tick_source=self.faulty_ticks if self.faulty else None,
        )
        self.observer: BodyObserver | None = None
        self.body_result: BodyResult | None = None
        if self.body:
            self.observer = BodyObserver(
                [s.firmware for s in self.suits],
                make_population(self.n_clients, self.plan.layout, seed=self.seed),
                self.plan.layout,
                [c.name for c in specs],
                [c.first_session for c in specs],
                lambda: self.session.pulse,
                lambda i, message, data: self.session.emit("client_request", message, i, **data),
            )
            self.session.tick_observers.append(self.observer)

    async def run(self) -> str:
        """Run the class to its end; returns how it ended."""
        self.started_at = utc_now_iso()
        try:
            async with trio.open_nursery() as suits:
                for suit in self.suits:
                    await suits.start(suit.run)
                if self.room is not None:
                    await suits.start(self.room.run)
                async with (
                    open_class_session(self.session, companions=self.companions) as session,
                    trio.open_nursery() as scripts,
                ):
                    scripts.start_soon(self._run_actions)
                    scripts.start_soon(self._run_faults)
                    await session.wait_finished()
                    scripts.cancel_scope.cancel()
                # open_class_session has stopped every suit; on the radio model its last
                # frames are still on the air until the next connection events: let them land.
                if self.room is not None and self.radio is not None:
                    await trio.sleep(3 * self.radio.interval_ms / 1000)
                # now the suits may stop running.
                suits.cancel_scope.cancel()
        finally:  # a signal or Ctrl-C too: durations are measured up to here
            self.ended_at = trio.current_time()
        if self.observer is not None:
            self.body_result = self.observer.result()
        return self.session.ending or "interrupted"

    async def _run_actions(self) -> None:
        if not self.actions:
            return
        async with trio.open_nursery() as nursery:
            # beside the actions, not after them: one far in the future must not keep
            # an e-stopped class open
            nursery.start_soon(self._end_an_estop_nobody_resets)
            t0 = trio.current_time()
            for k, action in enumerate(self.actions):
                await trio.sleep_until(t0 + action.at_s)
                await submit(self.session, action.raw, self.actions_source)
                self._actions_done = k + 1
            await trio.sleep_forever()  # the class ends it

    def _a_resume_is_still_to_come(self) -> bool:
        return any(a.command.do == "resume" for a in self.actions[self._actions_done :])

    async def _end_an_estop_nobody_resets(self) -> None:
        """A scripted e-stop that no action resets within ESTOP_GRACE_S ends the class; so
        does a pause when no action still to come resumes it (a script's class never waits
        for a trainer who is not there)."""
        while self.session.state not in (ClassState.FINISHED, ClassState.STOPPED):
            if self.session.state is ClassState.ESTOPPED:
                await trio.sleep(ESTOP_GRACE_S)
                if self.session.state is ClassState.ESTOPPED:
                    await self.session.execute(Stop(), source="sim")
                    return
            elif self.session.state is ClassState.PAUSED and not self._a_resume_is_still_to_come():
                await trio.sleep(ESTOP_GRACE_S)
                if (
                    self.session.state is ClassState.PAUSED
                    and not self._a_resume_is_still_to_come()
                ):
                    await self.session.execute(Stop(), source="sim")
                    return
            await trio.sleep(1.0)

    def _targets(self, fault: Fault) -> list[SimulatedSuit]:
        if fault.client is None:
            return self.suits
        if fault.client > len(self.suits):
            return []
        return [self.suits[fault.client - 1]]

    async def _run_faults(self) -> None:
        t0 = trio.current_time()
        async with trio.open_nursery() as nursery:
            for fault in sorted(self.faults, key=lambda f: f.at_s):
                nursery.start_soon(self._one_fault, t0, fault)

    async def _one_fault(self, t0: float, fault: Fault) -> None:
        await trio.sleep_until(t0 + fault.at_s)
        suits = self._targets(fault)
        who = None if fault.client is None else fault.client - 1
        if who is not None and who >= self.n_clients:
            return
        self.session.emit(
            "fault",
            f"injected {fault.kind} {fault.params}",
            who,
            fault=fault.kind,
            params=dict(fault.params),
        )
        if fault.kind == "battery":
            for s in suits:
                s.set_battery(int(fault.number("pct", 10)))
        elif fault.kind == "latency":
            for s in suits:
                s.latency_s = fault.number("ms", 0) / 1000
                s.jitter_s = fault.number("jitter", 0) / 1000
        elif fault.kind == "loss":
            before = [s.loss for s in suits]
            for s in suits:
                s.loss = fault.number("pct", 0) / 100
            if "for" in fault.params:  # a burst: the radio recovers after it
                await trio.sleep(fault.seconds("for", 0))
                for s, loss in zip(suits, before, strict=True):
                    s.loss = loss
        elif fault.kind == "drop" and self.room is not None:
            async with trio.open_nursery() as nursery:
                for s in suits:
                    peripheral = self.room.peripherals[self.suits.index(s)]
                    nursery.start_soon(peripheral.drop_link, fault.seconds("for", 5.0))
        elif fault.kind == "drop":
            for s in suits:
                s.drop_link()
            await trio.sleep(fault.seconds("for", 5.0))
            for s in suits:
                s.restore_link()
        elif fault.kind == "unplug":
            await self._unplug(fault)
        elif fault.kind == "detach":
            names = self.plan.layout.names
            channel = fault.params["channel"]
            if channel not in names:
                self.session.emit("fault", f"no channel {channel} on this suit; fault ignored", who)
                return
            ch = names.index(channel)
            for s in suits:
                s.detach_electrode(ch)
            if "for" in fault.params:
                await trio.sleep(fault.seconds("for", 0))
                for s in suits:
                    s.attach_electrode(ch)

    async def _unplug(self, fault: Fault) -> None:
        """Pull out one simulated adapter (for a while): its suits move to the others."""
        if self.room is None:
            self.session.emit("fault", "unplug needs --link ble; fault ignored", None)
            return
        name = fault.params.get("adapter", self.room.adapters[0].name)
        found = [a for a in self.room.adapters if a.name == name]
        if not found:
            self.session.emit("fault", f"no adapter {name}; fault ignored", None)
            return
        await found[0].unplug()
        if "for" in fault.params:
            await trio.sleep(fault.seconds("for", 0))
            found[0].plug_in()

    def record(self) -> dict[str, Any]:
        """The session record (`session.json`): totals measured at the suits, and events."""
        now = self.ended_at
        clients = []
        for i, suit in enumerate(self.suits):
            totals = suit.firmware.totals(now)
            clients.append(
                {
                    "name": self.session.clients[i].name,
                    "suit": suit.address,
                    "channels": {
                        name: {
                            "charge_uC": round(t.charge_uC, 3),
                            "stim_s": round(t.stim_s, 4),
                            "max_mA": t.max_mA,
                            "contractions": t.contractions,
                            "max_uC_per_phase": round(float(q), 3),
                        }
                        for name, t, q in zip(
                            self.plan.layout.names,
                            totals,
                            suit.firmware.max_uC_per_phase,
                            strict=True,
                        )
                    },
                    "watchdog_trips": suit.firmware.watchdog_trips,
                    "suit_state_at_end": suit.firmware.state.name,
                    "outputs_zero_at_end": not suit.firmware.applied_mA.any(),
                    "link_drops": self.session.drivers[i].drops,
                    "reconnects": self.session.drivers[i].reconnects,
                }
            )
        return {
            "mode": "run",
            "workout": self.plan.workout.name,
            "layout": self.plan.layout.name,
            "started_at": self.started_at,
            "ended": self.session.ending or "interrupted",
            "class_s": round(self.session.class_time(now), 3),
            "plan_s": round(self.session.plan_time(now), 3),
            "rate_hz": self.rate_hz,
            "ticks": self.session.ticks,
            "clients": clients,
            "events": [e.as_dict() for e in self.session.events.events],
            "channels": list(self.plan.layout.names),
            "segments": plan_segments(self.plan),
            **(
                {
                    "adapter_connections": {
                        a.name: a.connections_made for a in self.adapter_pool.adapters
                    },
                    "adapter_moves": [list(m) for m in self.adapter_pool.moves],
                }
                if self.adapter_pool is not None
                else {}
            ),
            **({"body": body_document(self.body_result)} if self.body_result else {}),
        }

    def write_record(self, out_dir: Path) -> Path:
        """Write `record()` as OUT_DIR/session.json."""
        return write_record(self.record(), out_dir)
