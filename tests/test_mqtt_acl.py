"""The shipped ACL (deploy/mosquitto/acl) against a real Mosquitto: a tablet cannot forge
what the controller publishes, and the controller (account `suitctl`) still can."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio
import trio_asyncio

from suit_controller.mqtt import BrokerUrl, Topics
from suit_controller.mqtt.bridge import MqttBridge

from .mqtt_broker import MOSQUITTO, Broker
from .mqtt_probe import Probe
from .simclass_helpers import SHORT, short_plan

pytestmark = pytest.mark.skipif(
    MOSQUITTO is None, reason="mosquitto is not installed (make system-deps)"
)
ROOM = "ems/studio/room-1"
LONG = SHORT.replace("duration: 40s", "duration: 5m")
#: What only the controller may publish, with a forged payload for each.
FORGED = {
    "/state": {"state": "estopped", "class_id": "forged"},
    "/online": b"true",
    "/events": {"kind": "estop", "message": "forged"},
    "/commands/result": {
        "id": "E-from-tablet-t",
        "ok": True,
        "command": "estop",
        "message": "every suit was told to stop",
    },
    "/events/replay/result": {"id": "forged", "ok": True, "events": []},
    "/clients/forged/telemetry": {"client_id": "forged"},
    "/replies/tablet-t": {"id": "forged", "ok": True},
}


def forged_seen(probe: Probe) -> list[str]:
    return [t for t, p, _ in probe.messages if any(t == ROOM + s for s in FORGED)]


async def test_a_tablet_cannot_forge_what_the_controller_publishes_the_controller_can(
    tmp_path: Path,
) -> None:
    """F5 (review of issue 12). Before the controller had its own account, the room account
    that tablets log in with could write state/online/results: this test failed."""
    broker = Broker(tmp_path)
    broker.start()
    try:
        async with trio_asyncio.open_loop(), trio.open_nursery() as nursery:
            trainer = await nursery.start(Probe(broker, "tablet-room-1", client_id="tablet-t").run)
            rogue = await nursery.start(Probe(broker, "tablet-room-1", client_id="tablet-x").run)
            for suffix, payload in FORGED.items():
                retain = suffix in ("/state", "/online")
                await rogue.publish(ROOM + suffix, payload, retain=retain)
            # A marker the rogue may publish, sent after the forgeries over the same
            # connection: once it is seen, the forgeries would have been seen before it.
            await rogue.publish(f"{ROOM}/events/replay", {"id": "marker-1"})
            await trainer.wait_for(lambda: trainer.on("/events/replay"))
            # A later subscriber gets retained messages at once, before any later publish.
            dash = await nursery.start(Probe(broker, "dashboard", client_id="dash").run)
            await rogue.publish(f"{ROOM}/events/replay", {"id": "marker-2"})
            await dash.wait_for(lambda: dash.on("/events/replay"))
            assert forged_seen(trainer) == [] and forged_seen(dash) == []

            # The controller, logged in as `suitctl`, publishes all of it as before.
            from suit_controller.cli.simclass import SimulatedClass

            sc = SimulatedClass(short_plan(LONG), 1, intensity_mA=20.0, body=False)
            url = broker.url("controller-room-1")
            assert url.startswith("mqtt://suitctl:")
            bridge = MqttBridge(sc.session, BrokerUrl.parse(url), Topics.for_room())
            sc.companions = [bridge.run]
            nursery.start_soon(sc.run)
            await trainer.wait_for(
                lambda: b"true" in [p for t, p, _ in trainer.messages if t == f"{ROOM}/online"]
            )
            state = await trainer.wait_for(
                lambda: [s for s in trainer.on("/state") if s.get("state") == "running"]
            )
            assert state[-1]["class_id"] == bridge.ids.class_id
            result = await trainer.command({"do": "pause"}, request_id="p1")
            assert result["ok"] is True and result["command"] == "pause", result
            await trainer.wait_for(lambda: trainer.on("/events"))
            nursery.cancel_scope.cancel()
    finally:
        broker.stop()


async def test_an_account_per_tablet_as_docs_mqtt_describes_names_the_source_at_the_broker(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """docs/mqtt.md's real fix for invented client ids: a tablet account with fixed topic
    lines may command only under its account's name, whatever client id it picks."""
    from . import mqtt_broker

    tablet = "room-1-tablet-7"
    monkeypatch.setitem(mqtt_broker.USERS, tablet, "t7-secret")
    broker = Broker(tmp_path)
    conf = broker.write_config()
    acl = tmp_path / "acl"
    acl.write_text(
        (Path(mqtt_broker.ROOT) / "deploy" / "mosquitto" / "acl").read_text() + f"\nuser {tablet}\n"
        f"topic read {ROOM}/#\n"
        f"topic write {ROOM}/commands/from/{tablet}\n"
        f"topic write {ROOM}/estop\n"
        f"topic write {ROOM}/events/replay\n"
    )
    text = conf.read_text()
    shipped_acl = str(Path(mqtt_broker.ROOT) / "deploy" / "mosquitto" / "acl")
    assert shipped_acl in text
    conf.write_text(text.replace(shipped_acl, str(acl)))
    broker.start()
    try:
        async with trio_asyncio.open_loop(), trio.open_nursery() as nursery:
            watcher = await nursery.start(Probe(broker, "dashboard", client_id="dash").run)
            t7 = await nursery.start(Probe(broker, tablet, client_id="made-up-id").run)
            await t7.publish(f"{ROOM}/commands/from/made-up-id", {"id": "invented"})
            await t7.publish(f"{ROOM}/commands/from/{tablet}", {"id": "named"})
            await t7.publish(f"{ROOM}/state", {"state": "forged"})
            await t7.publish(f"{ROOM}/events/replay", {"id": "marker"})
            await watcher.wait_for(lambda: watcher.on("/events/replay"))
            seen = [t for t, _, _ in watcher.messages]
            assert seen == [f"{ROOM}/commands/from/{tablet}", f"{ROOM}/events/replay"], seen
            nursery.cancel_scope.cancel()
    finally:
        broker.stop()
