"""The e-stop connection's persistent session (session-5 review, M3), through a real Mosquitto.

Before: the e-stop connection started a clean session at QoS 0 on every connect, so an
e-stop a tablet published while that connection was down (right after the broker
restarted, before the controller was back) was acknowledged to the tablet and then
dropped: the class was never stopped. Now the broker queues it in the connection's
session (QoS 1, clean start off on reconnects, kept over the broker's restart by the
shipped config's persistence) and the controller obeys it when it reconnects.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import trio
import trio_asyncio

from suit_controller.cli.simclass import SimulatedClass
from suit_controller.session import ClassState

from .mqtt_broker import MOSQUITTO, Broker
from .mqtt_probe import Probe
from .simclass_helpers import SHORT, short_plan

pytestmark = pytest.mark.skipif(MOSQUITTO is None, reason="mosquitto not installed")
LONG = SHORT.replace("duration: 40s", "duration: 3m")
ROOM = "ems/studio/room-1"
GUARD_S = 30.0  # a hang guard, not a speed check


async def _until(check: Any) -> None:
    with trio.fail_after(GUARD_S):
        while not check():  # noqa: ASYNC110 - a test polls the bridge's flags
            await trio.sleep(0.05)


def _class(broker: Broker) -> tuple[SimulatedClass, Any]:
    from suit_controller.mqtt import BrokerUrl, Topics
    from suit_controller.mqtt.bridge import MqttBridge

    sc = SimulatedClass(short_plan(LONG), 2, intensity_mA=20.0, body=False)
    bridge = MqttBridge(sc.session, BrokerUrl.parse(broker.url()), Topics.for_room())
    sc.companions = [bridge.run]
    return sc, bridge


async def test_an_estop_published_while_the_estop_connection_is_down_is_obeyed_on_reconnect(
    tmp_path: Path,
) -> None:
    """The review's M3: a tablet publishes an e-stop (QoS 1, acknowledged by the broker)
    while the controller's e-stop connection is down (ended here, and held back from
    reconnecting until the tablet has pressed, so the order is certain); when it
    reconnects, the e-stop queued in its session is obeyed and answered. Before the fix
    (a clean session at QoS 0 on every connect) the class ran on at 20 mA."""
    broker = Broker(tmp_path)
    broker.start()
    try:
        sc, bridge = _class(broker)
        may_reconnect = trio.Event()
        link, make = bridge._estop_link, bridge._client
        clients: list[Any] = []

        def recorded(*, estop: bool = False, clean: bool = False) -> Any:
            clients.append(make(estop=estop, clean=clean))
            return clients[-1]

        async def held_back(backoff: Any) -> None:
            if bridge.estop_connects:  # a reconnect: only once the tablet has pressed
                await may_reconnect.wait()
            await link(backoff)

        bridge._client = recorded
        bridge._estop_link = held_back
        async with trio_asyncio.open_loop(), trio.open_nursery() as nursery:
            nursery.start_soon(sc.run)
            await _until(
                lambda: (
                    bridge.connected
                    and bridge.estop_connected
                    and sc.session.state is ClassState.RUNNING
                )
            )
            # the e-stop connection goes (the command connection stays)
            *_clean, estop_client = [c for c in clients if c.identifier.endswith("-estop")]
            estop_client._client.disconnect()
            await _until(lambda: not bridge.estop_connected)
            tablet = await nursery.start(
                Probe(broker, "tablet-room-1", subscribe=f"{ROOM}/commands/result").run
            )
            await tablet.publish(f"{ROOM}/estop", {"id": "while-down"})  # QoS 1: acknowledged
            assert not bridge.estop_connected and sc.session.state is ClassState.RUNNING
            may_reconnect.set()
            await _until(lambda: sc.session.state is ClassState.ESTOPPED)
            answers = await tablet.wait_for(
                lambda: [r for r in tablet.on("/commands/result") if r["id"] == "while-down"]
            )
            assert bridge.estop_connects == 2
            nursery.cancel_scope.cancel()
    finally:
        broker.stop()
    assert answers[0]["ok"] is True and answers[0]["command"] == "estop"


async def test_the_first_estop_connection_starts_clean_nothing_from_an_earlier_class(
    tmp_path: Path,
) -> None:
    """The session is resumed only on reconnects: an e-stop queued for an earlier class's
    session under the same client id is not obeyed by the next class."""
    broker = Broker(tmp_path, persistent=True)
    broker.start()
    try:
        async with trio_asyncio.open_loop(), trio.open_nursery() as nursery:
            _first, first_bridge = _class(broker)
            first_bridge.client_id = "room-1-controller"
            scope = trio.CancelScope()

            async def run_first() -> None:
                with scope:
                    await first_bridge.run()

            nursery.start_soon(run_first)
            await _until(lambda: first_bridge.connected and first_bridge.estop_connected)
            scope.cancel()
            await _until(lambda: not first_bridge.estop_connected)
            tablet = await nursery.start(Probe(broker, "tablet-room-1").run)
            await tablet.publish(f"{ROOM}/estop", {"id": "for-the-old-class"})
            sc, bridge = _class(broker)
            bridge.client_id = "room-1-controller"
            nursery.start_soon(sc.run)
            await _until(
                lambda: (
                    bridge.connected
                    and bridge.estop_connected
                    and sc.session.state is ClassState.RUNNING
                )
            )
            await trio.sleep(1.0)  # what a resumed session would have handed over by now
            state = sc.session.state
            nursery.cancel_scope.cancel()
    finally:
        broker.stop()
    assert state is ClassState.RUNNING


async def test_the_estop_is_latched_before_its_puback_is_sent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """At QoS 1 paho acknowledges each e-stop to the broker: only after the callback that
    latches has returned (docs/mqtt.md, "The e-stop's path")."""
    from paho.mqtt import client as paho

    original = paho.Client._send_puback
    seen: list[ClassState] = []

    def recorded(self: Any, mid: int) -> Any:
        if bytes(self._client_id).endswith(b"-estop"):
            seen.append(sc.session.state)  # (the class below)
        return original(self, mid)

    monkeypatch.setattr(paho.Client, "_send_puback", recorded)
    broker = Broker(tmp_path)
    broker.start()
    sc, bridge = _class(broker)
    try:
        async with trio_asyncio.open_loop(), trio.open_nursery() as nursery:
            nursery.start_soon(sc.run)
            await _until(
                lambda: (
                    bridge.connected
                    and bridge.estop_connected
                    and sc.session.state is ClassState.RUNNING
                )
            )
            tablet = await nursery.start(Probe(broker, "tablet-room-1").run)
            await tablet.publish(f"{ROOM}/estop", b"")
            await _until(lambda: seen)
            nursery.cancel_scope.cancel()
    finally:
        broker.stop()
    assert seen == [ClassState.ESTOPPED]


async def test_clearing_a_retained_command_is_ignored_quietly_and_counted(
    tmp_path: Path,
) -> None:
    """The review's L6: an empty retained message on `commands/from/<id>` (the standard way to
    clear a retained one) is not a command: neither logged as refused nor answered, counted.
    Before: logged and answered as a refused command."""
    broker = Broker(tmp_path)
    broker.start()
    try:
        sc, bridge = _class(broker)
        async with trio_asyncio.open_loop(), trio.open_nursery() as nursery:
            tab = await nursery.start(Probe(broker, "tablet-room-1", client_id="tablet-c").run)
            nursery.start_soon(sc.run)
            await _until(lambda: bridge.connected and bridge.estop_connected)
            command = {"id": "ret", "do": "set_intensity", "client": 1, "mA": 33}
            await tab.publish(tab.commands_topic(), command, retain=True)
            await tab.publish(tab.commands_topic(), b"", retain=True)  # cleared
            live = await tab.command({"do": "set_intensity", "client": 2, "mA": 25}, "live")
            results = [r["id"] for r in tab.on("/commands/result")]
            refused = [
                e.message
                for e in sc.session.events.of_kind("command_refused")
                if e.data.get("source") == "mqtt:tablet-c"
            ]
            state = sc.session.state
            nursery.cancel_scope.cancel()
    finally:
        broker.stop()
    assert live["ok"] is True and state is ClassState.RUNNING
    assert results == ["ret", "live"]  # the retained command refused and answered, the clear not
    assert len(refused) == 1 and "retained" in refused[0]
    assert bridge.retained_clears == 1


async def test_an_estop_published_while_the_broker_restarts_is_obeyed_on_reconnect(
    tmp_path: Path,
) -> None:
    """The review's M3 as it found it: the broker restarts (the shipped config's
    persistence on), a tablet reconnects first and presses its e-stop (QoS 1, acknowledged)
    before the controller's e-stop connection is back: the session the broker restored
    queues it, and the controller obeys and answers it when it reconnects. It failed while
    the e-stop connection's first real connection started clean: Mosquitto 2.0 does not
    restore over its restart a v5 session begun with a clean start."""
    broker = Broker(tmp_path, persistent=True)
    broker.start()
    try:
        sc, bridge = _class(broker)
        may_reconnect = trio.Event()
        link = bridge._estop_link

        async def held_back(backoff: Any) -> None:
            if bridge.estop_connects:  # a reconnect: only once the tablet has pressed
                await may_reconnect.wait()
            await link(backoff)

        bridge._estop_link = held_back  # type: ignore[method-assign]
        async with trio_asyncio.open_loop(), trio.open_nursery() as nursery:
            nursery.start_soon(sc.run)
            await _until(
                lambda: (
                    bridge.connected
                    and bridge.estop_connected
                    and sc.session.state is ClassState.RUNNING
                )
            )
            broker.stop()  # saves its sessions, as a restart does
            await _until(lambda: not bridge.estop_connected)
            broker.start()
            tablet = await nursery.start(
                Probe(broker, "tablet-room-1", subscribe=f"{ROOM}/commands/result").run
            )
            await tablet.publish(f"{ROOM}/estop", {"id": "after-restart"})  # acknowledged
            assert not bridge.estop_connected and sc.session.state is ClassState.RUNNING
            may_reconnect.set()
            await _until(lambda: sc.session.state is ClassState.ESTOPPED)
            answers = await tablet.wait_for(
                lambda: [r for r in tablet.on("/commands/result") if r["id"] == "after-restart"]
            )
            nursery.cancel_scope.cancel()
    finally:
        broker.stop()
    assert answers[0]["ok"] is True and answers[0]["command"] == "estop"
