"""The studio controller's Prometheus metrics (`/metrics`): ticks, suits' links, commands, e-stops.

Theory of operation
-------------------
The engine is watched only through the seams every face uses, so moving it
into a thread of its own changes nothing here:

* each class's **event stream** (one subscriber): a counter increment for a
  command carried out or refused (by the kind of its source), an e-stop, a
  suit that stopped itself (its watchdog tripped);
* one **tick observer** per class, called by the engine after each tick: a
  tick counted, its lateness observed, and per suit a few integer reads
  (frames sent, links lost, round trips its link health measured) turned into
  counter increments and the status round trip;
* **snapshots**, read when Prometheus scrapes: classes by state, suits linked,
  and the MQTT brokers' connection state.

prometheus_client's metrics are thread-safe, so the subscriber and the
observer may run on the engine's own thread. Every metric lives in the
studio's own `CollectorRegistry` (two studios in one process never mix).

No personal data: suits are named by their address, classes by their room,
command sources by their kind (`studio`, `console`, `mqtt`, `engine`, …)
without the trainer's name.

The status round trip is the suit's link health's (`suit_controller.link_health`,
the figure the snapshot, the live view and the console show too): from a frame
sent to the status that echoes its counter, timed by the driver as they go
and received, observed at the next tick (the last one measured since).
"""

from __future__ import annotations

from collections import Counter as Tally
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import trio
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.responses import Response

from suit_controller.driver import LinkState, SuitDriver
from suit_controller.records import SessionEvent

if TYPE_CHECKING:
    from suit_controller.mqtt.bridge import MqttBridge
    from suit_controller.studio.api import Call, Endpoint
    from suit_controller.studio.rooms import Studio, StudioClass

#: Every state a studio class can be in (`StudioClass.state`), each always exported.
CLASS_STATES = (
    "ready",
    "running",
    "paused",
    "estopped",
    "finished",
    "stopped",
    "interrupted",
)
#: Tick lateness buckets, s: Trio wakes about 0.8 ms late at the median; a tick is 25 ms.
LATENESS_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)
#: Status round-trip buckets, s (a suit sends its status every 200 ms).
ROUND_TRIP_BUCKETS = (0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 1.0, 2.0, 5.0)


def source_kind(source: object) -> str:
    """A command source without its person: `console:Tess:3` -> `console`."""
    text = source if isinstance(source, str) else ""
    kind = text.split(":", 1)[0]
    return kind if kind.isidentifier() and len(kind) <= 32 else "other"


class StudioMetrics:
    """Every metric of one studio controller, and the class watches that feed them."""

    def __init__(self, studio: Studio) -> None:
        self.studio = studio
        self.registry = CollectorRegistry(auto_describe=True)
        #: MQTT brokers the controller talks to: name -> "is it connected now?".
        self.brokers: dict[str, Callable[[], bool]] = {}
        r = self.registry
        self.ticks = Counter(
            "suitctl_ticks", "Engine ticks, per room's class", ["room"], registry=r
        )
        self.tick_lateness = Histogram(
            "suitctl_tick_lateness_seconds",
            "How late each tick woke after its deadline on the tick grid",
            ["room"],
            buckets=LATENESS_BUCKETS,
            registry=r,
        )
        self.frames = Counter(
            "suitctl_suit_frames_sent",
            "Frames sent to a suit (rate() of it: frames delivered per second)",
            ["room", "suit"],
            registry=r,
        )
        self.round_trip = Histogram(
            "suitctl_suit_status_round_trip_seconds",
            "From a frame sent to the suit's status echoing its counter",
            ["room", "suit"],
            buckets=ROUND_TRIP_BUCKETS,
            registry=r,
        )
        self.links_lost = Counter(
            "suitctl_suit_links_lost", "Times a suit's link was lost", ["room", "suit"], registry=r
        )
        self.watchdog_trips = Counter(
            "suitctl_suit_watchdog_trips",
            "Times a suit reported that its watchdog zeroed its outputs",
            ["room", "suit"],
            registry=r,
        )
        self.commands = Counter(
            "suitctl_commands",
            "Commands carried out (accepted) or refused, by the kind of their source",
            ["source", "outcome"],
            registry=r,
        )
        self.estops = Counter(
            "suitctl_estops", "Emergency stops that stopped a class", ["room"], registry=r
        )
        self._snapshots = _Snapshots(self)
        r.register(self._snapshots)
        studio.class_watchers.append(self.watch)
        studio.bridge_watchers.append(self._room_bridge)

    def watch_broker(self, name: str, bridge: MqttBridge) -> None:
        """Report a bridge's connection to its MQTT broker as `name` (metrics and health)."""
        self.brokers[name] = lambda: bridge.connected

    def _room_bridge(self, room: str, bridge: MqttBridge | None) -> None:
        """A room's class bridge started (watched as `room <segment>`) or its class ended."""
        if bridge is None:
            self.brokers.pop(f"room {room}", None)
        else:
            self.watch_broker(f"room {room}", bridge)

    def watch(self, klass: StudioClass) -> None:
        """Feed the metrics from a class set up (before it starts)."""
        ClassWatch(self, klass)

    def text(self) -> bytes:
        """The metrics in Prometheus's text format, now."""
        self._snapshots.gather()
        return generate_latest(self.registry)

    async def serve(self, call: Call) -> Response:
        """`GET /metrics` (a login or a read-only API token: see `endpoint`).

        The studio is read here, on its own thread; the text is written in a
        worker thread (several ms for a full room), so no tick waits for it.
        """
        self._snapshots.gather()
        text = await trio.to_thread.run_sync(generate_latest, self.registry)
        return Response(text, media_type=CONTENT_TYPE_LATEST)

    def endpoint(self) -> Endpoint:
        """`/metrics` for the studio app: any login, meant for a read-only API token."""
        from suit_controller.studio.api import Endpoint

        return Endpoint(
            "GET",
            "/metrics",
            "Prometheus metrics: ticks, suits' links, commands, e-stops, brokers "
            "(send a read-only API token: 'Authorization: Bearer TOKEN')",
            self.serve,
            "operations",
        )


class ClassWatch:
    """One class's tick observer and event subscriber, feeding the studio's metrics.

    Reads the engine only from inside its own calls (the tick observer, the
    event subscriber), where its figures are current and consistent.
    """

    def __init__(self, metrics: StudioMetrics, klass: StudioClass) -> None:
        session = klass.session
        self.metrics = metrics
        self.room = klass.room
        self._suit_of = {c.name: s for c, s in zip(session.clients, klass.suits, strict=True)}
        self._ticks = metrics.ticks.labels(self.room)
        self._late = metrics.tick_lateness.labels(self.room)
        self._estops = metrics.estops.labels(self.room)
        self._session = session
        self._suits = [
            SuitWatch(metrics, self.room, s, d)
            for s, d in zip(klass.suits, session.drivers, strict=True)
        ]
        session.events.subscribe(self.on_event)
        session.tick_observers.append(self.on_tick)

    def on_tick(self, now: float) -> None:
        """After each tick (the engine calls it): count it, its lateness, each suit's figures."""
        self._ticks.inc()
        lateness = self._session.lateness_s  # the engine appends this tick's before observers
        if lateness:
            self._late.observe(max(0.0, lateness[-1]))
        for suit in self._suits:
            suit.on_tick(now)

    def on_event(self, event: SessionEvent) -> None:
        """Each event of the class: commands, e-stops, suits stopping themselves."""
        kind = event.kind
        if kind == "command" or kind == "command_refused":
            outcome = "accepted" if kind == "command" else "refused"
            self.metrics.commands.labels(source_kind(event.data.get("source")), outcome).inc()
        elif kind == "estop":
            self._estops.inc()
        elif kind == "suit_safe_state" and "WATCHDOG" in event.message:
            suit = self._suit_of.get(event.client or "", "?")
            self.metrics.watchdog_trips.labels(self.room, suit).inc()


class SuitWatch:
    """One suit's figures, read at each tick from its driver's counters and link health."""

    def __init__(self, metrics: StudioMetrics, room: str, suit: str, driver: SuitDriver) -> None:
        self.driver = driver
        self._frames = metrics.frames.labels(room, suit)
        self._lost = metrics.links_lost.labels(room, suit)
        self._round_trip = metrics.round_trip.labels(room, suit)
        self._sent = 0
        self._drops = 0
        self._round_trips = 0

    def on_tick(self, now: float) -> None:
        d = self.driver
        if d.frames_sent != self._sent:
            self._frames.inc(max(0, d.frames_sent - self._sent))
            self._sent = d.frames_sent
        if d.drops != self._drops:
            self._lost.inc(max(0, d.drops - self._drops))
            self._drops = d.drops
        health = d.health
        if health.round_trips != self._round_trips:  # the link measured a new one
            self._round_trips = health.round_trips
            if health.last_round_trip_s is not None:
                self._round_trip.observe(health.last_round_trip_s)


class _Snapshots(Collector):
    """What is read when Prometheus scrapes: classes by state, suits linked, brokers.

    `gather` reads the studio (on its own thread, where the classes live);
    `collect` only writes out what was gathered, so the text can be made in a
    worker thread without the engine waiting for it.
    """

    def __init__(self, metrics: StudioMetrics) -> None:
        self.metrics = metrics
        self._gathered: list[Metric] = []

    def gather(self) -> None:
        """Read classes, suits and brokers now (before `collect`)."""
        studio = self.metrics.studio
        classes = list(studio.classes.values())
        states = Tally(k.state for k in classes)
        by_state = GaugeMetricFamily(
            "suitctl_classes", "Classes on this controller, by state", labels=["state"]
        )
        for state in CLASS_STATES:
            by_state.add_metric([state], states.get(state, 0))
        linked = GaugeMetricFamily(
            "suitctl_suit_linked",
            "1 while a suit of a class going on is linked, else 0",
            labels=["room", "suit"],
        )
        battery = GaugeMetricFamily(
            "suitctl_suit_battery_percent",
            "A suit's battery as it last reported it",
            labels=["room", "suit"],
        )
        for k in classes:
            if k.done.is_set():
                continue
            for c in k.snapshot().clients:
                linked.add_metric([k.room, c.suit], 1.0 if c.link is LinkState.CONNECTED else 0.0)
                if c.battery_pct is not None:
                    battery.add_metric([k.room, c.suit], float(c.battery_pct))
        brokers = GaugeMetricFamily(
            "suitctl_broker_connected",
            "1 while the controller is connected to the MQTT broker, else 0",
            labels=["broker"],
        )
        for name, connected in sorted(self.metrics.brokers.items()):
            brokers.add_metric([name], 1.0 if connected() else 0.0)
        configured = GaugeMetricFamily(
            "suitctl_brokers_configured",
            "MQTT brokers this controller is configured to use",
            value=len(self.metrics.brokers),
        )
        self._gathered = [by_state, linked, battery, brokers, configured]

    def collect(self) -> Iterator[Metric]:
        yield from self._gathered
