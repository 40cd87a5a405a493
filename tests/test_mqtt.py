"""Gym integration against a real Mosquitto: state, telemetry, events, commands, ACLs,
malformed and fuzzed payloads, and a broker restart during a class."""

from __future__ import annotations

import json
import random
from collections.abc import AsyncIterator
from pathlib import Path

import jsonschema
import pytest
import trio
import trio_asyncio

from suit_controller.cli.simclass import SimulatedClass
from suit_controller.commands import SetIntensity
from suit_controller.mqtt import BrokerUrl, Topics
from suit_controller.mqtt.bridge import MqttBridge
from suit_controller.mqtt.payloads import SCHEMAS
from suit_controller.session import ClassState

from .mqtt_broker import MOSQUITTO, Broker
from .mqtt_probe import Probe
from .simclass_helpers import SHORT, short_plan

pytestmark = pytest.mark.skipif(
    MOSQUITTO is None, reason="mosquitto is not installed (make system-deps)"
)
LONG = SHORT.replace("duration: 40s", "duration: 5m")


@pytest.fixture
def broker(tmp_path: Path) -> AsyncIterator[Broker]:
    b = Broker(tmp_path)
    b.start()
    yield b  # type: ignore[misc]
    b.stop()


def make(
    broker: Broker, n: int = 2, user: str = "controller-room-1"
) -> tuple[SimulatedClass, MqttBridge]:
    sc = SimulatedClass(short_plan(LONG), n, intensity_mA=20.0, body=False)
    bridge = MqttBridge(sc.session, BrokerUrl.parse(broker.url(user)), Topics.for_room())
    sc.companions = [bridge.run]
    return sc, bridge


def all_zero(sc: SimulatedClass) -> bool:
    return all(not s.firmware.applied_mA.any() for s in sc.suits)


async def test_state_telemetry_events_and_every_command(broker: Broker) -> None:
    async with trio_asyncio.open_loop(), trio.open_nursery() as nursery:
        tablet = await nursery.start(Probe(broker, "tablet-room-1").run)
        sc, bridge = make(broker)
        nursery.start_soon(sc.run)
        await tablet.wait_for(
            lambda: b"true" in [p for t, p, _ in tablet.messages if t.endswith("/online")]
        )
        state = await tablet.wait_for(
            lambda: [s for s in tablet.on("/state") if s["state"] == "running"]
        )
        jsonschema.validate(state[-1], SCHEMAS["state"])
        assert state[-1]["workout"] == "Short" and len(state[-1]["clients"]) == 2
        tele = await tablet.wait_for(lambda: tablet.on("/clients/client-2/telemetry"))
        jsonschema.validate(tele[-1], SCHEMAS["telemetry"])
        assert set(tele[-1]["levels_mA"]) >= {"quads", "abs"}
        r = await tablet.command({"do": "set_intensity", "client": 2, "channel": "quads", "mA": 30})
        jsonschema.validate(r, SCHEMAS["result"])
        assert r["ok"] and sc.session.board.target_mA[1, 9] == 30
        started = await tablet.command({"do": "start"})
        assert not started["ok"] and "already running" in started["message"]
        assert (await tablet.command({"do": "skip"}))["ok"]
        await trio.sleep(2.0)
        assert sc.session.snapshot()["exercise"] == "Squat"
        assert (await tablet.command({"do": "estop"}))["ok"]
        assert all_zero(sc) and sc.session.state is ClassState.ESTOPPED
        refused = await tablet.command({"do": "resume"})
        assert not refused["ok"] and "reset" in refused["message"]
        for do in ("reset", "resume", "pause", "resume"):
            assert (await tablet.command({"do": do}))["ok"], do
        # events, in order and each with its schema
        events = await tablet.wait_for(
            lambda: (
                [e for e in tablet.on("/events") if e["kind"] == "estop"] and tablet.on("/events")
            )
        )
        for e in events:
            jsonschema.validate(e, SCHEMAS["event"])
        seqs = [e["seq"] for e in events]
        assert seqs == sorted(seqs) and seqs[0] == 1
        assert (await tablet.command({"do": "stop"}))["ok"]
        await tablet.wait_for(lambda: [s for s in tablet.on("/state") if s["state"] == "stopped"])
        await tablet.wait_for(
            lambda: (
                tablet.messages[-1][1] == b"false"
                or b"false" in [p for t, p, _ in tablet.messages[-3:]]
            )
        )
        nursery.cancel_scope.cancel()
    assert all_zero(sc) and bridge.connects == 1


MALFORMED = [
    (b"not json", "not JSON"),
    (b"[1, 2]", "a command is a JSON object"),
    (b'{"do": "dance"}', "'do' must be one of"),
    (b'{"do": "set_intensity", "client": 1, "mA": 500}', "mA"),
    (b'{"do": "set_intensity", "client": 7, "mA": 10}', "no client 7"),
    (b'{"do": "set_intensity", "client": 1, "channel": "neck", "mA": 10}', "forbidden"),
    (b'{"do": "pause", "extra": 1}', "extra"),
    (b"\xff\xfe\x00", "not JSON"),
    (b"{" + b" " * 5000 + b"}", "over 4096"),
]


async def test_malformed_and_fuzzed_commands_get_an_error_and_change_nothing(
    broker: Broker,
) -> None:
    async with trio_asyncio.open_loop(), trio.open_nursery() as nursery:
        tablet = await nursery.start(Probe(broker, "tablet-room-1").run)
        sc, _ = make(broker)
        nursery.start_soon(sc.run)
        await tablet.wait_for(lambda: [s for s in tablet.on("/state") if s["state"] == "running"])
        before = sc.session.board.target_mA.copy()
        for payload, why in MALFORMED:
            seen = len(tablet.on("/commands/result"))
            await tablet.publish("ems/studio/room-1/commands", payload)
            result = await tablet.wait_for(
                lambda seen=seen: tablet.on("/commands/result")[seen:]  # type: ignore[misc]
            )
            assert result[0]["ok"] is False and why in result[0]["message"], (payload, result)
        rng = random.Random(7)
        for _ in range(40):
            junk = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 64)))
            if rng.random() < 0.3:
                junk = json.dumps(
                    {
                        "do": rng.choice(["set_intensity", "estop", "x"]),
                        "client": rng.choice([0, 1, -5, "z", None]),
                        "mA": rng.choice([-1, 1e9, "a", None]),
                    }
                ).encode()
            await tablet.publish("ems/studio/room-1/commands", junk)
        await tablet.wait_for(lambda: len(tablet.on("/commands/result")) >= len(MALFORMED) + 40)
        assert (before == sc.session.board.target_mA).all()
        assert sc.session.state in (ClassState.RUNNING, ClassState.ESTOPPED)
        nursery.cancel_scope.cancel()


async def test_read_only_anonymous_and_other_rooms_cannot_command(broker: Broker) -> None:
    import aiomqtt

    async with trio_asyncio.open_loop(), trio.open_nursery() as nursery:
        watcher = await nursery.start(Probe(broker, "dashboard").run)
        other_room = await nursery.start(Probe(broker, "tablet-room-2", room="room-2").run)
        sc, _ = make(broker)
        nursery.start_soon(sc.run)
        await watcher.wait_for(lambda: [s for s in watcher.on("/state") if s["state"] == "running"])
        await watcher.publish("ems/studio/room-1/commands", {"id": "ro", "do": "estop"})
        await other_room.publish("ems/studio/room-1/commands", {"id": "r2", "do": "estop"})
        await trio.sleep(1.5)
        assert sc.session.state is ClassState.RUNNING
        assert not [r for r in watcher.on("/commands/result") if r.get("id") in ("ro", "r2")]
        with pytest.raises(aiomqtt.MqttError):
            async with trio_asyncio.aio_as_trio(
                aiomqtt.Client("127.0.0.1", broker.port, timeout=3)
            ):
                pass
        # and the room's own tablet can
        tablet = await nursery.start(Probe(broker, "tablet-room-1").run)
        assert (await tablet.command({"do": "estop"}))["ok"]
        assert sc.session.state is ClassState.ESTOPPED
        nursery.cancel_scope.cancel()


async def test_a_broker_restart_loses_no_event_and_the_class_goes_on(broker: Broker) -> None:
    async with trio_asyncio.open_loop(), trio.open_nursery() as nursery:
        sc, bridge = make(broker)
        tablet = await nursery.start(Probe(broker, "dashboard").run)
        nursery.start_soon(sc.run)
        await tablet.wait_for(lambda: tablet.on("/events"))
        ticks_before = sc.session.ticks
        broker.stop()
        await trio.sleep(0.5)
        for i in range(5):  # the class goes on and makes events while the broker is away
            await sc.session.execute(SetIntensity(client=1, mA=20 + i), source="test")
            await trio.sleep(0.3)
        assert sc.session.ticks > ticks_before + 40
        assert bridge.pending and not bridge.connected
        broker.start()
        tablet2 = await nursery.start(Probe(broker, "dashboard").run)
        await tablet2.wait_for(lambda: bridge.connected and not bridge.pending, within=15)
        await tablet2.wait_for(lambda: [s for s in tablet2.on("/state")])
        got = {e["seq"] for e in tablet.on("/events") + tablet2.on("/events")}
        assert got == set(range(1, max(got) + 1)), "an event was lost"
        assert bridge.dropped_events == 0 and bridge.connects == 2
        nursery.cancel_scope.cancel()


async def test_the_class_runs_without_a_broker(tmp_path: Path) -> None:
    async with trio_asyncio.open_loop():
        sc = SimulatedClass(short_plan(), 1, body=False)
        bridge = MqttBridge(sc.session, BrokerUrl.parse("mqtt://127.0.0.1:1"), Topics.for_room())
        sc.companions = [bridge.run]
        with trio.move_on_after(3.0):
            await sc.run()
    assert sc.session.ticks > 100 and bridge.connects == 0 and bridge.pending


def test_broker_urls() -> None:
    u = BrokerUrl.parse("mqtts://ana:s3cret@broker.local/?ca=/etc/ca.pem")
    assert (u.host, u.port, u.tls, u.username, u.password, u.ca_file) == (
        "broker.local",
        8883,
        True,
        "ana",
        "s3cret",
        "/etc/ca.pem",
    )
    assert "s3cret" not in str(u)
    assert BrokerUrl.parse("mqtt://h").port == 1883
    from suit_controller.mqtt import MqttConfigError

    for bad in ("http://h", "mqtt://", "mqtt://h:99999"):
        with pytest.raises(MqttConfigError):
            BrokerUrl.parse(bad)
    with pytest.raises(MqttConfigError):
        Topics.for_room(room="a/b")
