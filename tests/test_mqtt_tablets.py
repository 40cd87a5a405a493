"""One MQTT account per tablet (review finding F2): `suitctl mqtt tablet add|remove|list`
writes the ACL lines and the password file, and a real Mosquitto run with those files lets
each tablet command only as itself, in its own room, while every tablet's e-stop works."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
import trio
import trio_asyncio
from click.testing import CliRunner

from suit_controller.cli.main import suitctl
from suit_controller.mqtt import BrokerUrl, Topics
from suit_controller.mqtt.bridge import MqttBridge
from suit_controller.mqtt.tablets import (
    Tablet,
    TabletError,
    tablets_in,
    with_tablet,
    without_tablet,
)
from suit_controller.session import ClassState

from . import mqtt_broker
from .mqtt_broker import MOSQUITTO, Broker
from .mqtt_probe import Probe
from .simclass_helpers import SHORT, short_plan

SHIPPED_ACL = Path(mqtt_broker.ROOT) / "deploy" / "mosquitto" / "acl"
ROOM = "ems/studio/room-1"
LONG = SHORT.replace("duration: 40s", "duration: 5m")


def test_add_remove_and_list_keep_the_rest_of_the_acl_file_as_it_was() -> None:
    shipped = SHIPPED_ACL.read_text()
    a, b = Tablet("studio", "room-1", "tablet-a"), Tablet("studio", "room-2", "tablet-a")
    both = with_tablet(with_tablet(shipped, a), b)
    assert tablets_in(both) == [a, b]
    assert a.username == "studio~room-1~tablet-a" and a.username != b.username
    block = "\n".join(a.acl_lines())
    assert "topic write ems/studio/room-1/commands/from/tablet-a\n" in block
    assert "topic write ems/studio/room-1/estop\n" in block
    writes = [line for line in a.acl_lines() if line.startswith("topic write ")]
    assert writes == [
        "topic write ems/studio/room-1/commands/from/tablet-a",
        "topic write ems/studio/room-1/estop",
        "topic write ems/studio/room-1/events/replay",
    ]
    wild = [line for line in a.acl_lines() if "#" in line and not line.startswith("#")]
    assert wild == ["topic read ems/studio/room-1/replies/tablet-a/#"], wild
    assert "readwrite" not in block and "commands/from/+" not in block
    with pytest.raises(TabletError, match="already in the ACL file"):
        with_tablet(both, a)
    assert without_tablet(without_tablet(both, a), b) == shipped
    with pytest.raises(TabletError, match="is not in the ACL file"):
        without_tablet(shipped, a)
    for bad in ("tab/let", "t+", "#", "a b", "a~b", ""):
        with pytest.raises(TabletError, match="may use only letters"):
            Tablet("studio", "room-1", bad)


def _add(acl: Path, passwd: Path, room: str, tablet: str) -> str:
    """`suitctl mqtt tablet add`; the password it printed."""
    r = CliRunner().invoke(
        suitctl,
        ["mqtt", "tablet", "add", room, tablet, "--acl", str(acl), "--passwd", str(passwd)],
    )
    assert r.exit_code == 0, r.output
    assert f"commands  ems/studio/{room}/commands/from/{tablet}" in r.output, r.output
    assert "reload the broker" in r.output, r.output
    m = re.search(r"password  (\S+)", r.output)
    assert m is not None, r.output
    return m.group(1)


def test_the_cli_refuses_clearly_and_changes_nothing(tmp_path: Path) -> None:
    acl = tmp_path / "acl"
    r = CliRunner().invoke(
        suitctl, ["mqtt", "tablet", "add", "room-1", "t1", "--acl", str(acl), "--passwd", "p"]
    )
    assert r.exit_code == 1 and "does not exist: copy deploy/mosquitto/acl" in r.output, r.output
    shutil.copy(SHIPPED_ACL, acl)
    r = CliRunner().invoke(
        suitctl, ["mqtt", "tablet", "add", "room 1", "t1", "--acl", str(acl), "--passwd", "p"]
    )
    assert r.exit_code == 2 and "may use only letters" in r.output, r.output
    r = CliRunner().invoke(
        suitctl, ["mqtt", "tablet", "remove", "room-1", "t1", "--acl", str(acl), "--passwd", "p"]
    )
    assert r.exit_code == 1 and "is not in the ACL file" in r.output, r.output
    assert acl.read_text() == SHIPPED_ACL.read_text() and "Traceback" not in r.output


@pytest.mark.skipif(MOSQUITTO is None, reason="mosquitto is not installed (make system-deps)")
async def test_through_mosquitto_each_tablet_commands_only_as_itself_in_its_room(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the files `suitctl mqtt tablet add` wrote: tablet A's commands published as
    tablet B, or on room-2's topics, never reach anyone (the controller gets none of them);
    A's own command is carried out under its account's name, and the e-stop works from
    every tablet. `remove` takes A off: it can no longer log in."""
    broker = Broker(tmp_path)
    conf = broker.write_config()  # the password file with the shipped accounts
    acl, passwd = tmp_path / "acl", tmp_path / "passwd"
    shutil.copy(SHIPPED_ACL, acl)
    conf.write_text(conf.read_text().replace(str(SHIPPED_ACL), str(acl)))
    accounts = {t: _add(acl, passwd, "room-1", t) for t in ("tablet-a", "tablet-b")}
    accounts["room2"] = _add(acl, passwd, "room-2", "tablet-c")
    r = CliRunner().invoke(suitctl, ["mqtt", "tablet", "list", "--acl", str(acl)])
    assert r.exit_code == 0 and r.output.count("account studio~room-") == 3, r.output
    user_a, user_b = "studio~room-1~tablet-a", "studio~room-1~tablet-b"
    monkeypatch.setitem(mqtt_broker.USERS, user_a, accounts["tablet-a"])
    monkeypatch.setitem(mqtt_broker.USERS, user_b, accounts["tablet-b"])
    broker.start()
    try:
        async with trio_asyncio.open_loop(), trio.open_nursery() as nursery:
            # the dashboard reads every room: it sees whatever the broker lets through
            watcher = await nursery.start(
                Probe(broker, "dashboard", client_id="dash", subscribe="ems/#").run
            )
            from suit_controller.cli.simclass import SimulatedClass

            sc = SimulatedClass(short_plan(LONG), 1, intensity_mA=20.0, body=False)
            bridge = MqttBridge(
                sc.session, BrokerUrl.parse(broker.url("controller-room-1")), Topics.for_room()
            )
            sc.companions = [bridge.run]
            nursery.start_soon(sc.run)
            await watcher.wait_for(
                lambda: [s for s in watcher.on("/state") if s.get("state") == "running"]
            )
            # a client id of the tablet's own choosing: the account decides, not the id
            a = await nursery.start(
                Probe(broker, user_a, client_id="made-up", subscribe=f"{ROOM}/commands/result").run
            )
            b = await nursery.start(
                Probe(broker, user_b, client_id="b", subscribe=f"{ROOM}/commands/result").run
            )
            forged = [
                (f"{ROOM}/commands/from/tablet-b", {"id": "as-b", "do": "pause"}),
                (f"{ROOM}/commands/from/made-up", {"id": "as-id", "do": "pause"}),
                (f"{ROOM}/commands", {"id": "shared", "do": "pause"}),
                ("ems/studio/room-2/commands/from/tablet-a", {"id": "room-2", "do": "pause"}),
                ("ems/studio/room-2/estop", {"id": "room-2-estop"}),
                (f"{ROOM}/state", {"state": "forged"}),
            ]
            for topic, doc in forged:
                await a.publish(topic, doc)
            # then A's own command, over the same connection: anything let through before
            # it would have reached the controller and the watcher first
            await a.publish(f"{ROOM}/commands/from/tablet-a", {"id": "own", "do": "pause"})
            own = await a.wait_for(
                lambda: [x for x in a.on("/commands/result") if x["id"] == "own"]
            )
            assert own[0]["ok"] is True, own
            assert sc.session.state is ClassState.PAUSED
            # the watcher got A's command before its result (the broker keeps the order)
            await watcher.wait_for(lambda: [x for x in watcher.on("/commands/result")])
            seen = [t for t, _, _ in watcher.messages]
            assert [t for t in seen if "/commands/from/" in t or t.endswith("/estop")] == [
                f"{ROOM}/commands/from/tablet-a"
            ], seen
            assert not [t for t in seen if t.startswith("ems/studio/room-2/")], seen
            assert not [x for x in watcher.on("/state") if x.get("state") == "forged"]
            results = [x["id"] for x in watcher.on("/commands/result")]
            assert results == ["own"], results  # the controller heard none of the forgeries
            done = [e for e in sc.session.events.events if e.kind in ("command", "command_refused")]
            mqtt_done = [e.data["source"] for e in done if e.data["source"].startswith("mqtt")]
            assert mqtt_done == ["mqtt:tablet-a"], done
            assert bridge.sources == ("mqtt:tablet-a",)  # the rate limit is the account's

            # the e-stop, from every tablet
            for tab, rid in ((a, "stop-a"), (b, "stop-b")):
                await tab.publish(f"{ROOM}/estop", {"id": rid})
                res = await tab.wait_for(
                    lambda rid=rid, tab=tab: [
                        x for x in tab.on("/commands/result") if x["id"] == rid
                    ]
                )
                assert res[0]["ok"] is True and res[0]["command"] == "estop", res
                assert sc.session.state is ClassState.ESTOPPED
                own_topic = f"{ROOM}/commands/from/{'tablet-a' if tab is a else 'tablet-b'}"
                await tab.publish(own_topic, {"id": f"reset-{rid}", "do": "reset"})
                reset = await tab.wait_for(
                    lambda rid=rid, tab=tab: [
                        x for x in tab.on("/commands/result") if x["id"] == f"reset-{rid}"
                    ]
                )
                assert reset[0]["ok"] is True, reset
                assert sc.session.state is not ClassState.ESTOPPED
            nursery.cancel_scope.cancel()

        files = ["--acl", str(acl), "--passwd", str(passwd)]
        # `remove`: A's lines and password are gone (the broker restarted to reload them)
        r = CliRunner().invoke(
            suitctl,
            ["mqtt", "tablet", "remove", "room-1", "tablet-a", *files],
        )
        assert r.exit_code == 0 and "removed" in r.output, r.output
        assert user_a not in acl.read_text() and user_a not in passwd.read_text()
        assert user_b in acl.read_text() and user_b in passwd.read_text()
        broker.stop()
        broker.start()
        import aiomqtt

        async with trio_asyncio.open_loop():
            for user, refused in ((user_a, True), (user_b, False)):
                client = aiomqtt.Client(
                    "127.0.0.1", broker.port, username=user, password=accounts[user[-8:]]
                )
                try:
                    async with trio_asyncio.aio_as_trio(client):
                        logged_in = True
                except aiomqtt.MqttError:
                    logged_in = False
                assert logged_in is not refused, user
    finally:
        broker.stop()
