"""Gym integration against a real Mosquitto: state, telemetry, events, commands, ACLs,
malformed and fuzzed payloads, and a broker restart during a class."""

from __future__ import annotations

import json
import os
import random
import ssl
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import jsonschema
import pytest
import trio
import trio_asyncio

from suit_controller.cli.simclass import SimulatedClass
from suit_controller.clients import ClientSpec
from suit_controller.commands import SetIntensity, Stop
from suit_controller.mqtt import BrokerUrl, Topics
from suit_controller.mqtt.bridge import MqttBridge, TrioSafeClient, recorded_ids
from suit_controller.mqtt.payloads import SCHEMAS
from suit_controller.records import SessionEvent
from suit_controller.session import ClassState
from suit_controller.studio.recorder import SessionRecorder
from suit_controller.studio.store import RosterEntry, Store

from .mqtt_broker import MOSQUITTO, Broker
from .mqtt_probe import Probe
from .simclass_helpers import SHORT, short_plan
from .studio_helpers import eventually

pytestmark = pytest.mark.skipif(
    MOSQUITTO is None, reason="mosquitto is not installed (make system-deps)"
)
ACL = Path(__file__).resolve().parent.parent / "deploy" / "mosquitto" / "acl"
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
        client_2 = bridge.ids.client_ids[1]
        assert client_2 is not None
        tele = await tablet.wait_for(lambda: tablet.on(f"/clients/{client_2}/telemetry"))
        jsonschema.validate(tele[-1], SCHEMAS["telemetry"])
        assert tele[-1]["client_id"] == client_2
        assert set(tele[-1]["levels_mA"]) >= {"quads", "abs"}
        r = await tablet.command({"do": "set_intensity", "client": 2, "channel": "quads", "mA": 30})
        jsonschema.validate(r, SCHEMAS["result"])
        assert r["ok"] and sc.session.board.target_mA[1, 9] == 30
        by_id = {"do": "set_intensity", "client": client_2, "channel": "quads", "mA": 28}
        assert (await tablet.command(by_id))["ok"] and sc.session.board.target_mA[1, 9] == 28
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
    # every payload published during the class, each against its schema
    counted = validate_all(tablet.messages)
    assert {"online", "state", "telemetry", "event", "result", "command"} <= set(counted)
    names = {c.name for c in sc.session.clients}
    for _, payload, _ in tablet.messages:  # ids, never names (messages for people aside)
        doc = json.loads(payload)
        if isinstance(doc, dict):
            doc.pop("message", None)
            assert not names & set(json.dumps(doc).split('"')), doc


def schema_of(topic: str) -> str:
    """The schema name of a topic of the room (docs/mqtt.md's table)."""
    tail = topic.split("/", 3)[3]
    if tail.startswith("clients/") and tail.endswith("/telemetry"):
        return "telemetry"
    return {
        "online": "online",
        "state": "state",
        "events": "event",
        "estop": "command",
        "commands": "command",
        "commands/result": "result",
        "events/replay": "replay_request",
        "events/replay/result": "replay",
    }.get(tail, "command" if tail.startswith("commands/from/") else "?")


def validate_all(messages: list[tuple[str, bytes, bool]]) -> dict[str, int]:
    """Validate each message against its topic's schema; how many of each were seen."""
    counted: dict[str, int] = {}
    for topic, payload, _ in messages:
        name = schema_of(topic)
        assert name in SCHEMAS, topic
        jsonschema.validate(json.loads(payload), SCHEMAS[name])
        counted[name] = counted.get(name, 0) + 1
    return counted


def test_every_emitted_event_kind_is_listed_and_every_listed_kind_is_emitted() -> None:
    """The sources' emit("kind", …) calls against EVENT_KINDS (the schema's enum)."""
    import ast

    from suit_controller.event_kinds import EVENT_KINDS

    root = Path(__file__).resolve().parent.parent
    emitted: dict[str, str] = {}
    for path in [*root.glob("suit_controller/**/*.py"), *root.glob("sim/**/*.py")]:
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not isinstance(node, ast.Call):
                continue
            fn = node.func
            name = fn.attr if isinstance(fn, ast.Attribute) else getattr(fn, "id", "")
            index = {"emit": 0, "_on_event": 0, "SessionEvent": 1}.get(name)
            if index is None or len(node.args) <= index:
                continue
            arg = node.args[index]
            if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                emitted[arg.value] = f"{path.relative_to(root)}:{node.lineno}"
    assert {"estop", "link_lost", "segment", "client_request"} <= set(emitted)  # the scan works
    unlisted = {k: where for k, where in emitted.items() if k not in EVENT_KINDS}
    assert not unlisted, f"emitted but not in EVENT_KINDS (the schema's enum): {unlisted}"
    assert set(EVENT_KINDS) <= set(emitted), "listed but never emitted"
    assert SCHEMAS["event"]["properties"]["kind"]["enum"] == list(EVENT_KINDS)


def test_docs_carry_the_generated_schemas_and_every_field_is_described() -> None:
    from suit_controller.mqtt.payloads import schemas_markdown

    docs = (Path(__file__).resolve().parent.parent / "docs" / "mqtt.md").read_text()
    assert schemas_markdown() in docs, "run: python -m suit_controller.mqtt.payloads"

    def described(schema: dict[str, object], where: str) -> None:
        props = schema.get("properties", {})
        assert isinstance(props, dict)
        for name, sub in props.items():
            assert isinstance(sub, dict) and sub.get("description"), f"{where}.{name}"
            items = sub.get("items")
            if isinstance(items, dict):
                described(items, f"{where}.{name}[]")

    for name, schema in SCHEMAS.items():
        jsonschema.Draft202012Validator.check_schema(schema)
        described(schema, name)
        if schema.get("type") == "object" and name not in ("command", "replay_request"):
            assert schema["additionalProperties"] is False, name  # every sent field listed


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
            await tablet.publish(tablet.commands_topic(), payload)
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
            await tablet.publish(tablet.commands_topic(), junk)
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
        assert bridge.pending > 0 and not bridge.connected
        broker.start()
        tablet2 = await nursery.start(Probe(broker, "dashboard").run)
        await tablet2.wait_for(lambda: bridge.connected and not bridge.pending, within=15)
        await tablet2.wait_for(lambda: [s for s in tablet2.on("/state")])
        got = {e["seq"] for e in tablet.on("/events") + tablet2.on("/events")}
        assert got == set(range(1, max(got) + 1)), "an event was lost"
        assert bridge.connects == 2
        nursery.cancel_scope.cancel()


async def test_the_class_runs_without_a_broker(tmp_path: Path) -> None:
    async with trio_asyncio.open_loop():
        sc = SimulatedClass(short_plan(), 1, body=False)
        bridge = MqttBridge(sc.session, BrokerUrl.parse("mqtt://127.0.0.1:1"), Topics.for_room())
        sc.companions = [bridge.run]
        with trio.move_on_after(3.0):
            await sc.run()
    assert sc.session.ticks > 100 and bridge.connects == 0 and bridge.pending


def test_broker_urls(tmp_path: Path) -> None:
    for name in ("ca.pem", "me.pem", "me.key"):
        (tmp_path / name).write_text("x")
    ca, cert, key = (str(tmp_path / n) for n in ("ca.pem", "me.pem", "me.key"))
    u = BrokerUrl.parse(f"mqtts://ana:s3cret@broker.local/?ca={ca}&cert={cert}&key={key}")
    assert (u.host, u.port, u.tls, u.username, u.password, u.ca_file) == (
        "broker.local",
        8883,
        True,
        "ana",
        "s3cret",
        ca,
    )
    assert (u.cert_file, u.key_file) == (cert, key)
    assert "s3cret" not in str(u)
    assert BrokerUrl.parse("mqtt://h").port == 1883
    from suit_controller.mqtt import MqttConfigError

    for bad, why in (
        ("http://h", "mqtt://"),
        ("mqtt://", "no host"),
        ("mqtt://h:99999", "bad port"),
        (f"mqtt://h/?ca={ca}", "needs mqtts://"),
        (f"mqtts://h/?key={key}", "needs its certificate"),
        ("mqtts://h/?ca=/nowhere/ca.pem", "/nowhere/ca.pem does not exist"),
        ("mqtts://h/?cafile=x", "unknown option"),
    ):
        with pytest.raises(MqttConfigError, match=why):
            BrokerUrl.parse(bad)
    with pytest.raises(MqttConfigError):
        Topics.for_room(room="a/b")


# -- replay ---------------------------------------------------------------------------------
def recorded(
    broker: Broker, location: str, names: tuple[str, ...]
) -> tuple[SimulatedClass, MqttBridge]:
    """A class recorded in the studio database at `location`, with its bridge."""
    store = Store(location)
    try:
        roster = []
        for i, n in enumerate(names):
            known = [c for c in store.clients() if c.name == n]
            client = known[0] if known else store.add_client(n)
            roster.append(RosterEntry(client.id, n, f"SIM-{i + 1:02d}", None, False, False))
        specs = [ClientSpec(n, intensity_mA=20.0) for n in names]
        sc = SimulatedClass(short_plan(LONG), len(names), clients=specs, body=False)
        opened = store.open_class(sc.plan.workout.name, roster, simulated=True, room="room-1")
    finally:
        store.close()

    def fails_on_started(event: SessionEvent) -> None:  # subscribed first: its error event
        if event.kind == "started":  # reaches later subscribers before "started" does
            raise RuntimeError("a screen's bug")

    sc.session.events.subscribe(fails_on_started)
    bridge = MqttBridge(
        sc.session,
        BrokerUrl.parse(broker.url()),
        Topics.for_room(),
        ids=recorded_ids(location, opened.id),
        store=location,
    )
    sc.companions = [SessionRecorder(location, sc.session, opened).run, bridge.run]
    return sc, bridge


async def make_events(sc: SimulatedClass, n: int) -> None:
    for i in range(n):
        await sc.session.execute(SetIntensity(client=1 + i % 2, mA=20 + i), source="test")


def seqs_of(probe: Probe, class_id: str) -> list[int]:
    return [e["seq"] for e in probe.on("/events") if e["class_id"] == class_id]


async def replay(
    probe: Probe, request: dict[str, object], *, room: str = "room-1"
) -> list[dict[str, object]]:
    """Ask for a replay; every answer to it, up to the one with "more": false."""
    await probe.publish(f"ems/studio/{room}/events/replay", request)

    def answers() -> list[dict[str, object]] | None:
        got = [a for a in probe.on("/events/replay/result") if a["id"] == request["id"]]
        return got if got and got[-1]["more"] is False else None

    found: list[dict[str, object]] = await probe.wait_for(answers)
    return found


async def test_a_consumer_offline_across_a_broker_restart_recovers_exactly_the_missing_events(
    broker: Broker, tmp_path: Path
) -> None:
    assert "persistence true" not in (broker.workdir / "mosquitto.conf").read_text()
    location = str(tmp_path / "studio.db")
    async with trio_asyncio.open_loop(), trio.open_nursery() as nursery:
        sc, bridge = recorded(broker, location, ("Ana", "Ben"))
        class_id = bridge.ids.class_id
        consumer = await nursery.start(Probe(broker, "dashboard").run)
        nursery.start_soon(sc.run)
        await consumer.wait_for(
            lambda: [e for e in consumer.on("/events") if e["kind"] == "subscriber_error"]
        )
        await make_events(sc, 3)
        await consumer.wait_for(lambda: len(seqs_of(consumer, class_id)) >= bridge.last_seq)
        had = seqs_of(consumer, class_id)
        assert had == list(range(1, len(had) + 1))
        consumer.stop()  # the consumer goes offline ...
        await make_events(sc, 3)  # ... and misses events the broker delivers meanwhile
        await eventually(lambda: bridge.pending == 0)
        broker.stop()  # the broker goes down (no persistence) ...
        await make_events(sc, 4)  # ... while the class makes more
        assert bridge.pending >= 4
        broker.start()
        await eventually(lambda: bridge.connected and bridge.pending == 0)
        await make_events(sc, 2)  # and more, after the broker is back
        await eventually(lambda: bridge.pending == 0)
        back = await nursery.start(Probe(broker, "dashboard").run)
        state = await back.wait_for(lambda: back.on("/state"))
        last_seq = state[-1]["last_seq"]
        assert last_seq >= len(had) + 9
        answers = await replay(back, {"id": "catch-up", "after_seq": max(had)})
        for a in answers:
            jsonschema.validate(a, SCHEMAS["replay"])
            assert a["ok"] and a["class_id"] == class_id
        replayed = [e["seq"] for a in answers for e in a["events"]]  # type: ignore[attr-defined]
        assert len(replayed) == len(set(replayed)), "a duplicate"
        assert not set(replayed) & set(had), "an event the consumer had"
        assert sorted(set(had) | set(replayed)) == list(range(1, max(replayed) + 1)), "a gap"
        assert max(replayed) >= last_seq
        for a in answers:  # exactly as published
            for e in a["events"]:  # type: ignore[attr-defined]
                assert e == bridge.event_doc(e["seq"])
        ana = bridge.ids.client_ids[0]
        link_up = [e for e in consumer.on("/events") if e["kind"] == "link_up"]
        assert {e["client_id"] for e in link_up} == set(bridge.ids.client_ids) and ana in {
            e["client_id"] for e in link_up
        }
        # the class ends; the next class's controller replays it from the records
        assert (await sc.session.execute(Stop(), source="test")).ok
        await eventually(lambda: sc.session.ended and not bridge.connected)
        published = [bridge.event_doc(s) for s in range(1, bridge.last_seq + 1)]
        sc2, bridge2 = recorded(broker, location, ("Ben",))
        nursery.start_soon(sc2.run)
        await eventually(lambda: bridge2.connected)
        old = await replay(back, {"id": "earlier", "class_id": class_id, "after_seq": 0})
        assert [e for a in old for e in a["events"]] == published  # type: ignore[attr-defined]
        assert len(published) > 200 or len(old) == 1
        shared = Store(location)  # a store several rooms share: room-2's class is not ours
        room_2 = shared.open_class("Short", [], simulated=True, room="room-2").id
        shared.close()
        for bad, why in (
            ({"id": "x0", "class_id": room_2, "after_seq": 0}, "not held in this room"),
            ({"id": "x1", "class_id": str(uuid.uuid4()), "after_seq": 0}, "no class"),
            ({"id": "x2", "after_seq": -1}, "after_seq"),
            ({"id": "x3", "after_seq": 0, "from": 1}, "unknown field"),
        ):
            refused = await replay(back, bad)
            assert refused[-1]["ok"] is False and why in str(refused[-1]["message"]), refused
        assert sc2.session.state is ClassState.RUNNING
        nursery.cancel_scope.cancel()


# -- client certificates ------------------------------------------------------------------
def _certificates(where: Path) -> dict[str, str]:
    """A throw-away CA, a server certificate for 127.0.0.1, client certificates for the
    controller `suitctl` and `dashboard` (the common name is the account), and a stranger's."""
    import datetime as dt
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = dt.datetime.now(dt.UTC)
    files: dict[str, str] = {}

    def write(name: str, key: ec.EllipticCurvePrivateKey, cert: x509.Certificate) -> None:
        (where / f"{name}.key").write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        (where / f"{name}.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        files[name] = str(where / f"{name}.pem")
        files[f"{name}.key"] = str(where / f"{name}.key")

    def issue(
        cn: str,
        issuer: tuple[ec.EllipticCurvePrivateKey, x509.Name] | None,
        *,
        server: bool = False,
    ) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
        signer, issuer_name = issuer or (key, name)
        builder = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(issuer_name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=issuer is None, path_length=None), True)
        )
        if server:
            builder = builder.add_extension(
                x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                False,
            )
        return key, builder.sign(signer, hashes.SHA256())

    ca_key, ca = issue("suit-controller test CA", None)
    write("ca", ca_key, ca)
    for cn, server in (("server", True), ("suitctl", False), ("dashboard", False)):
        write(cn, *issue(cn, (ca_key, ca.subject), server=server))
    other_key, other_ca = issue("another CA", None)
    write("stranger", *issue("suitctl", (other_key, other_ca.subject)))
    return files


def _tls_context(files: dict[str, str], who: str | None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=files["ca"])
    if who is not None:
        context.load_cert_chain(files[who], files[f"{who}.key"])
    return context


async def test_client_certificates_a_client_without_one_is_refused_the_controller_connects(
    tmp_path: Path,
) -> None:
    import aiomqtt

    files = _certificates(tmp_path)
    broker = Broker(tmp_path)
    conf = (
        f"per_listener_settings false\nlistener {broker.port} 127.0.0.1\n"
        f"cafile {files['ca']}\ncertfile {files['server']}\nkeyfile {files['server.key']}\n"
        "require_certificate true\nuse_identity_as_username true\n"
        f"acl_file {ACL}\n"
        "allow_anonymous false\n"
    )
    if os.getuid() == 0:
        conf += "user root\n"
    (tmp_path / "mosquitto.conf").write_text(conf)
    broker.start()
    try:
        async with trio_asyncio.open_loop(), trio.open_nursery() as nursery:
            for who in (None, "stranger"):  # no certificate; one from another CA
                with pytest.raises(aiomqtt.MqttError):
                    async with trio_asyncio.aio_as_trio(
                        TrioSafeClient(
                            "127.0.0.1",
                            broker.port,
                            timeout=5,
                            tls_context=_tls_context(files, who),
                        )
                    ):
                        pass
            url = (
                f"mqtts://127.0.0.1:{broker.port}/?ca={files['ca']}"
                f"&cert={files['suitctl']}&key={files['suitctl.key']}"
            )
            sc = SimulatedClass(short_plan(LONG), 1, intensity_mA=20.0, body=False)
            bridge = MqttBridge(sc.session, BrokerUrl.parse(url), Topics.for_room())
            sc.companions = [bridge.run]
            nursery.start_soon(sc.run)
            desk = TrioSafeClient(
                "127.0.0.1", broker.port, timeout=5, tls_context=_tls_context(files, "dashboard")
            )
            async with trio_asyncio.aio_as_trio(desk):
                await trio_asyncio.aio_as_trio(desk.subscribe)("ems/studio/room-1/state", qos=1)
                async for m in trio_asyncio.aio_as_trio(desk.messages):
                    state = json.loads(m.payload)  # type: ignore[arg-type]
                    jsonschema.validate(state, SCHEMAS["state"])
                    break
            assert state["class_id"] == bridge.ids.class_id
            await eventually(lambda: bridge.connected and bridge.estop_connected)
            assert bridge.connects == 1 and bridge.broker.cert_file == files["suitctl"]
            nursery.cancel_scope.cancel()
    finally:
        broker.stop()


def test_tls_options_on_the_command_line_and_from_the_environment(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from suit_controller.cli.main import suitctl as cli

    runner = CliRunner()
    (tmp_path / "short.yaml").write_text(SHORT)
    args = ["sim", "run", str(tmp_path / "short.yaml"), "--clients", "1", "--virtual"]
    args += ["--out", str(tmp_path / "out")]
    r = runner.invoke(cli, [*args, "--mqtt", "mqtts://127.0.0.1:1", "--mqtt-ca", "/no/ca.pem"])
    assert r.exit_code == 2 and "the CA file /no/ca.pem does not exist" in r.output, r.output
    r = runner.invoke(cli, [*args, "--mqtt-cert", "/no/me.pem"])
    assert r.exit_code == 2 and "need --mqtt" in r.output, r.output
    (tmp_path / "k").write_text("x")
    r = runner.invoke(
        cli,
        [*args, "--mqtt", "mqtt://127.0.0.1:1"],
        env={"SUITCTL_MQTT_KEY": str(tmp_path / "k")},
    )
    assert r.exit_code == 2 and "needs mqtts://" in r.output, r.output


def test_sim_run_with_mqtt_says_where_tablets_send_commands_and_estops(tmp_path: Path) -> None:
    """The operator is told the per-client commands topic and that an e-stop needs no payload
    (a payload above the broker's message_size_limit is dropped by the broker, unanswered)."""
    from click.testing import CliRunner

    from suit_controller.cli.main import suitctl as cli

    (tmp_path / "short.yaml").write_text(SHORT)
    r = CliRunner().invoke(
        cli,
        ["sim", "run", str(tmp_path / "short.yaml"), "--clients", "1", "--virtual",
         "--out", str(tmp_path / "out"), "--mqtt", "mqtt://127.0.0.1:1", "--room", "gym-2"],
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    said = " ".join(r.output.split())
    assert "commands on ems/studio/gym-2/commands/from/<client id>" in said, r.output
    assert "e-stops on ems/studio/gym-2/estop (an empty payload will do" in said, r.output
    assert "message_size_limit never arrives" in said, r.output


# -- MQTT v5 -------------------------------------------------------------------------------
async def test_v5_requests_are_answered_on_their_response_topic_and_311_clients_still_see_results(
    broker: Broker,
) -> None:
    import aiomqtt

    reply_to = "ems/studio/room-1/replies/tablet-7"
    async with trio_asyncio.open_loop(), trio.open_nursery() as nursery:
        v5 = await nursery.start(
            Probe(broker, "tablet-room-1", protocol=aiomqtt.ProtocolVersion.V5).run
        )
        old = await nursery.start(Probe(broker, "tablet-room-1").run)  # MQTT 3.1.1
        sc, bridge = make(broker)
        nursery.start_soon(sc.run)
        await old.wait_for(lambda: [s for s in old.on("/state") if s["state"] == "running"])
        assert bridge.protocol is aiomqtt.ProtocolVersion.V5

        async def ask(topic: str, doc: dict[str, object], corr: bytes) -> dict[str, object]:
            await v5.publish(topic, doc, response_topic=reply_to, correlation=corr)
            m = await v5.wait_for(
                lambda: next(
                    (
                        m
                        for m in v5.received
                        if str(m.topic) == reply_to
                        and getattr(m.properties, "CorrelationData", None) == corr
                    ),
                    None,
                )
            )
            answer: dict[str, object] = json.loads(m.payload)
            return answer

        room = "ems/studio/room-1"
        doc = {"id": "v5-1", "do": "set_intensity", "client": 1, "channel": "quads", "mA": 25}
        r = await ask(v5.commands_topic(), doc, b"\x00corr-1\xff")
        jsonschema.validate(r, SCHEMAS["result"])
        assert r["ok"] and r["id"] == "v5-1" and sc.session.board.target_mA[0, 9] == 25
        # the 3.1.1 tablet sees the same result on …/commands/result
        seen = await old.wait_for(
            lambda: [x for x in old.on("/commands/result") if x.get("id") == "v5-1"]
        )
        assert seen[0] == r
        refused = await ask(v5.commands_topic(), {"id": "v5-2", "do": "x"}, b"c2")
        assert refused["ok"] is False and refused["id"] == "v5-2"
        # a response topic the controller reads is never answered on: no command, no e-stop
        await v5.publish(
            v5.commands_topic(), {"id": "v5-3", "do": "pause"}, response_topic=f"{room}/estop"
        )
        await old.wait_for(lambda: [x for x in old.on("/commands/result") if x["id"] == "v5-3"])
        await trio.sleep(0.5)
        assert sc.session.state is ClassState.PAUSED
        assert not [t for t, _, _ in old.messages if t == f"{room}/estop"]
        # a replay request, answered on the response topic only
        replayed = await ask(f"{room}/events/replay", {"id": "v5-4", "after_seq": 0}, b"c4")
        jsonschema.validate(replayed, SCHEMAS["replay"])
        assert replayed["ok"] and replayed["events"][0]["seq"] == 1  # type: ignore[index]
        assert not [a for a in old.on("/events/replay/result") if a["id"] == "v5-4"]
        # big events: more answers, each well under the broker's message size limit
        for _ in range(30):
            sc.session.emit("fault", "x" * 5000)
        last = bridge.last_seq
        big = await replay(old, {"id": "big", "after_seq": 0})
        assert len(big) >= 3 and all(len(json.dumps(a)) < 70_000 for a in big)
        seqs = [e["seq"] for a in big for e in a["events"]]  # type: ignore[attr-defined]
        assert seqs[:last] == list(range(1, last + 1))
        # and the e-stop
        stopped = await ask(f"{room}/estop", {"id": "v5-5"}, b"c5")
        assert stopped["ok"] and stopped["id"] == "v5-5" and all_zero(sc)
        assert sc.session.state is ClassState.ESTOPPED
        nursery.cancel_scope.cancel()


class Broker311:
    """Just enough of an MQTT 3.1.1-only broker, on a real socket: it answers a v5 CONNECT
    with CONNACK code 1 (unacceptable protocol version) and accepts a 3.1.1 one, so a
    controller that fell back to 3.1.1 would be let in. `levels`: each CONNECT's level."""

    def __init__(self) -> None:
        import socket
        import threading

        self.levels: list[int] = []
        self.server = socket.socket()
        self.server.bind(("127.0.0.1", 0))
        self.server.listen()
        self.server.settimeout(0.2)
        self.port = int(self.server.getsockname()[1])
        self._done = threading.Event()
        self._held: list[socket.socket] = []
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self) -> Broker311:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join()
        self.server.close()
        for conn in self._held:
            conn.close()

    def _serve(self) -> None:
        while not self._done.is_set():
            try:
                conn, _ = self.server.accept()
            except TimeoutError:
                continue
            conn.settimeout(2)
            try:
                data = conn.recv(1024)
            except OSError:
                conn.close()
                continue
            # fixed header (1 byte + 1-byte length here), then "\0\4MQTT" and the level
            level = data[8] if len(data) > 8 else -1
            self.levels.append(level)
            conn.sendall(bytes([0x20, 0x02, 0x00, 0x00 if level == 4 else 0x01]))
            self._held.append(conn)


async def test_the_controller_never_falls_back_to_311_it_says_why_and_the_class_goes_on() -> None:
    """Review F1: with MQTT 3.1.1 a retained command published during a class is carried
    out, so a broker that refuses v5 is not used. The controller keeps asking with v5 (never
    3.1.1: the fake broker would let that in), says once what the broker answered and what
    to do, and the class goes on. Before: it fell back to 3.1.1 and this test failed."""
    from suit_controller.session import ClassState

    with Broker311() as fake:
        async with trio_asyncio.open_loop(), trio.open_nursery() as nursery:
            sc = SimulatedClass(short_plan(LONG), 1, body=False)
            bridge = MqttBridge(
                sc.session, BrokerUrl.parse(f"mqtt://127.0.0.1:{fake.port}"), Topics.for_room()
            )
            sc.companions = [bridge.run]
            nursery.start_soon(sc.run)
            refusals = lambda: [  # noqa: E731
                e for e in sc.session.events.events if e.kind == "interface_error"
            ]
            await eventually(lambda: refusals() and len(fake.levels) >= 3)
            assert sc.session.state not in (ClassState.ESTOPPED, ClassState.STOPPED)
            nursery.cancel_scope.cancel()
    assert fake.levels and set(fake.levels) == {5}, fake.levels  # asked again, never with 3.1.1
    assert bridge.protocol.value == 5 and not bridge.connected
    [event] = refusals()  # said once, not at every retry
    said = event.message
    assert f"broker at 127.0.0.1:{fake.port} refused MQTT v5" in said, said
    assert "(its CONNACK: unsupported protocol version, code 132)" in said, said
    assert "Mosquitto 1.6 or later" in said and "retained command" in said, said
    assert "the class goes on" in said, said
    assert bridge.v5_refused is not None and bridge.v5_refused in said


def test_a_class_with_mqtt_refuses_to_start_on_a_broker_that_refuses_v5(
    tmp_path: Path, broker: Broker
) -> None:
    """`sim run --mqtt` on a 3.1.1-only broker: exit 1, the broker's answer and what to do,
    and no class (no output written). A v5 broker (the real Mosquitto) passes the check."""
    from click.testing import CliRunner

    from suit_controller.cli.main import suitctl as cli
    from suit_controller.mqtt.broker_check import broker_refuses_v5

    (tmp_path / "short.yaml").write_text(SHORT)
    args = ["sim", "run", str(tmp_path / "short.yaml"), "--clients", "1", "--virtual"]
    with Broker311() as fake:
        r = CliRunner().invoke(
            cli, [*args, "--out", str(tmp_path / "out"), "--mqtt", f"mqtt://127.0.0.1:{fake.port}"]
        )
        said = " ".join(r.output.split())
        assert r.exit_code == 1, r.output
        assert f"the MQTT broker at 127.0.0.1:{fake.port} refused MQTT v5" in said, said
        assert "unsupported protocol version, code 132" in said, said  # paho: v5 name
        assert "Mosquitto 1.6 or later" in said and "Traceback" not in said, said
        assert fake.levels == [5], fake.levels
        r = CliRunner().invoke(
            cli,
            ["serve", "--mqtt", f"mqtt://127.0.0.1:{fake.port}", "--db", str(tmp_path / "s.db")],
        )
        assert r.exit_code == 1 and "refused MQTT v5" in r.output, r.output
        assert fake.levels == [5, 5], fake.levels
    assert not (tmp_path / "out").exists() and not (tmp_path / "s.db").exists()
    assert broker_refuses_v5(BrokerUrl.parse(broker.url())) is None


async def test_v5_response_topics_outside_the_rooms_replies_are_refused_with_a_reason(
    broker: Broker,
) -> None:
    """The read-only dashboard cannot make the controller write onto the room's own topics."""
    import aiomqtt

    room = "ems/studio/room-1"
    async with trio_asyncio.open_loop(), trio.open_nursery() as nursery:
        dash = await nursery.start(
            Probe(broker, "dashboard", protocol=aiomqtt.ProtocolVersion.V5).run
        )
        tab = await nursery.start(Probe(broker, "tablet-room-1").run)
        sc, bridge = make(broker)
        nursery.start_soon(sc.run)
        await tab.wait_for(lambda: [s for s in tab.on("/state") if s["state"] == "running"])
        targets = [
            "state",
            "online",
            "events",
            "commands/result",
            "clients/x/telemetry",
            "replies",
            "replies/",
            "x/replies/a",
        ]
        for i, target in enumerate(targets):
            await dash.publish(
                f"{room}/events/replay",
                {"id": f"dash-{i}", "after_seq": 0},
                response_topic=f"{room}/{target}",
                correlation=b"c",
            )
        await dash.publish(  # another room's topic, or the broker's
            f"{room}/events/replay",
            {"id": "dash-other", "after_seq": 0},
            response_topic="ems/studio/room-2/state",
        )
        ids = {f"dash-{i}" for i in range(len(targets))} | {"dash-other"}

        def all_answered() -> list[dict[str, object]] | None:
            got: list[dict[str, object]] = tab.on("/events/replay/result")
            return got if {a["id"] for a in got} >= ids else None

        answers = await tab.wait_for(all_answered)
        for a in answers:
            jsonschema.validate(a, SCHEMAS["replay"])
            assert a["ok"] is False and a["events"] == []
            assert f"{room}/replies/" in a["message"], a
        # a topic under …/replies/ is still answered on
        await dash.publish(
            f"{room}/events/replay",
            {"id": "dash-ok", "after_seq": 0},
            response_topic=f"{room}/replies/desk",
            correlation=b"ok",
        )
        await tab.wait_for(lambda: [m for m in tab.messages if m[0] == f"{room}/replies/desk"])
        # the requests themselves, the refusals and the one allowed reply; nothing else
        answered_on = {
            f"{room}/events/replay",
            f"{room}/events/replay/result",
            f"{room}/replies/desk",
        }
        landed = [
            t for t, payload, _ in tab.messages if b"dash-" in payload and t not in answered_on
        ]
        assert landed == [] and bridge.connected
        nursery.cancel_scope.cancel()
