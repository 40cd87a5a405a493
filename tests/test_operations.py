"""Running the studio for real: its health endpoints and its Prometheus metrics.

The metrics are scraped from the studio app over HTTP (in-process ASGI), with a
class running on simulated suits, and parsed with prometheus_client's own
parser; each test makes the figures move (ticks, frames, an e-stop, a refused
command, a lost link, a watchdog trip) and checks that they did.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio
import trio_asyncio
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import create_engine

from suit_controller.mqtt import BrokerUrl, Topics
from suit_controller.mqtt.bridge import MqttBridge
from suit_controller.studio.health import describe
from suit_controller.studio.metrics import source_kind

from .mqtt_broker import MOSQUITTO, Broker
from .studio_helpers import client, eventually, logged_in, start_site

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def parse(text: str) -> Samples:
    """Every sample of a scrape: (name, sorted labels) -> value."""
    out: Samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


async def scrape(reader: httpx.AsyncClient) -> Samples:
    r = await reader.get("/metrics")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain")
    return parse(r.text)


async def until(reader: httpx.AsyncClient, ok: Any) -> Samples:
    """Scrape until `ok(samples)` holds (the caller's fail_after bounds the wait)."""
    while True:
        samples = await scrape(reader)
        if ok(samples):
            return samples
        await trio.sleep(0.05)


async def screened_client(tess: httpx.AsyncClient, name: str) -> str:
    r = await tess.post("/api/v1/clients", json={"name": name})
    assert r.status_code == 201, r.text
    cid: str = r.json()["id"]
    r = await tess.post(f"/api/v1/clients/{cid}/screenings", json={"yes": []})
    assert r.status_code == 201, r.text
    return cid


async def a_class(tess: httpx.AsyncClient, room: str, clients: dict[str, str]) -> str:
    body = {
        "room": room,
        "workout": "classic_strength",
        "trainers": ["Tess"],
        "clients": [{"client": c, "suit": s} for c, s in clients.items()],
    }
    r = await tess.post("/api/v1/classes", json=body)
    assert r.status_code == 201, r.text
    class_id: str = r.json()["id"]
    return class_id


async def reader_of(site: Any) -> httpx.AsyncClient:
    mia = await logged_in(site, "Mia")
    token = (await mia.post("/api/v1/tokens", json={"label": "prometheus"})).json()["token"]
    await mia.aclose()
    reader = client(site)
    reader.headers["authorization"] = f"Bearer {token}"
    return reader


def test_source_kinds_carry_no_names() -> None:
    assert source_kind("console:Tess:3") == "console"
    assert source_kind("studio:Mia") == "studio"
    assert source_kind("mqtt") == "mqtt"
    assert source_kind("actions:x.yaml") == "actions"
    assert source_kind("Ana Weber:1") == "other" and source_kind(None) == "other"


async def test_health_says_alive_and_ready_without_a_login_and_names_nobody(
    tmp_path: Path,
) -> None:
    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            site, _ = await start_site(nursery, tmp_path)
            plain = client(site)
            r = await plain.get("/healthz")
            assert r.status_code == 200 and r.json() == {"status": "alive"}
            r = await plain.get("/api/v1/health")
            assert r.status_code == 200, r.text
            assert r.json() == {
                "status": "ok",
                "store": {"reachable": True, "backend": "sqlite"},
                "rooms": [],
                "brokers": {"configured": 0, "connected": 0},
            }

            tess = await logged_in(site, "Tess")
            ana = await screened_client(tess, "Ana Weber")
            class_id = await a_class(tess, "Room 1", {ana: "SIM-01"})
            r = await plain.get("/api/v1/health")
            assert r.json()["rooms"] == [  # without a login: counted, not named
                {
                    "state": "ready",
                    "simulated": True,
                    "suits": 1,
                    "suits_linked": r.json()["rooms"][0]["suits_linked"],
                }
            ]
            for secret in ("Ana", "Tess", ana, class_id, "Room 1"):
                assert secret not in r.text
            named = (await tess.get("/api/v1/health")).json()  # with a login: named
            assert [room["room"] for room in named["rooms"]] == ["Room 1"]
            for secret in ("Ana", ana, class_id):
                assert secret not in json.dumps(named)
            bad = client(site)  # a login that is not valid is no login: counts only
            bad.headers["authorization"] = "Bearer not-a-token"
            assert "room" not in (await bad.get("/api/v1/health")).json()["rooms"][0]
            await bad.aclose()

            # a broker that is down makes the controller degraded, still ready
            site.metrics.brokers["studio"] = lambda: False
            r = await plain.get("/api/v1/health")
            assert r.status_code == 200 and r.json()["status"] == "degraded"
            assert r.json()["brokers"] == {"configured": 1, "connected": 0}
            named = (await tess.get("/api/v1/health")).json()
            assert named["brokers"] == {"configured": 1, "connected": {"studio": False}}
            del site.metrics.brokers["studio"]

            # a store that does not answer: not ready (a real refused connection)
            store = site.studio.store
            working, store.engine = (
                store.engine,
                create_engine("postgresql+psycopg://nobody@127.0.0.1:1/none"),
            )
            try:
                r = await plain.get("/api/v1/health")
            finally:
                store.engine.dispose()
                store.engine = working
            assert r.status_code == 503 and r.json()["status"] == "failing"
            assert r.json()["store"]["reachable"] is False
            assert (await plain.get("/healthz")).status_code == 200
            for c in (plain, tess):
                await c.aclose()
            nursery.cancel_scope.cancel()


async def test_metrics_need_a_login_and_move_with_a_running_class(tmp_path: Path) -> None:
    with trio.fail_after(120):
        async with trio.open_nursery() as nursery:
            site, rack = await start_site(nursery, tmp_path)
            plain = client(site)
            assert (await plain.get("/metrics")).status_code == 401
            reader = await reader_of(site)
            before = await scrape(reader)
            assert value(before, "suitctl_classes", state="running") == 0
            assert value(before, "suitctl_brokers_configured") == 0

            tess = await logged_in(site, "Tess")
            ana = await screened_client(tess, "Ana Weber")
            ben = await screened_client(tess, "Ben Okafor")
            class_id = await a_class(tess, "Room 1", {ana: "SIM-01", ben: "SIM-02"})
            cmds = f"/api/v1/classes/{class_id}/commands"
            assert (await tess.post(f"/api/v1/classes/{class_id}/start")).status_code == 200

            def running(s: Samples) -> bool:
                return (
                    value(s, "suitctl_ticks_total", room="Room 1") > 10
                    and value(s, "suitctl_suit_frames_sent_total", room="Room 1", suit="SIM-02")
                    > 10
                    and value(
                        s,
                        "suitctl_suit_status_round_trip_seconds_count",
                        room="Room 1",
                        suit="SIM-01",
                    )
                    > 0
                )

            s = await until(reader, running)
            assert value(s, "suitctl_classes", state="running") == 1
            assert value(s, "suitctl_suit_linked", room="Room 1", suit="SIM-01") == 1
            assert value(s, "suitctl_suit_battery_percent", room="Room 1", suit="SIM-02") == 100
            late = value(s, "suitctl_tick_lateness_seconds_count", room="Room 1")
            assert late == value(s, "suitctl_ticks_total", room="Room 1")
            rtt = value(
                s, "suitctl_suit_status_round_trip_seconds_sum", room="Room 1", suit="SIM-01"
            )
            assert rtt >= 0.0

            # a refused command and an accepted one, counted by their source's kind
            accepted = value(s, "suitctl_commands_total", source="studio", outcome="accepted")
            r = await tess.post(cmds, json={"do": "resume"})  # running: refused
            assert r.status_code == 409, r.text
            r = await tess.post(cmds, json={"do": "set_intensity", "client": 1, "mA": 12})
            assert r.status_code == 200, r.text
            s = await scrape(reader)
            assert value(s, "suitctl_commands_total", source="studio", outcome="refused") == 1
            assert (
                value(s, "suitctl_commands_total", source="studio", outcome="accepted")
                == accepted + 1
            )

            # a lost link, counted for that suit only
            rack.suit("SIM-02").drop_link()
            s = await until(
                reader,
                lambda s: value(s, "suitctl_suit_linked", room="Room 1", suit="SIM-02") == 0,
            )
            rack.suit("SIM-02").restore_link()
            s = await until(
                reader,
                lambda s: (
                    value(s, "suitctl_suit_links_lost_total", room="Room 1", suit="SIM-02") == 1
                ),
            )
            assert value(s, "suitctl_suit_links_lost_total", room="Room 1", suit="SIM-01") == 0

            # frames that never arrive: the suit's watchdog zeroes it and it says so
            rack.suit("SIM-01").loss = 1.0
            await until(
                reader,
                lambda s: (
                    value(s, "suitctl_suit_watchdog_trips_total", room="Room 1", suit="SIM-01") >= 1
                ),
            )
            rack.suit("SIM-01").loss = 0.0

            # an e-stop: counted once, the class shown as e-stopped
            assert (await tess.post(cmds, json={"do": "estop"})).status_code == 200
            s = await scrape(reader)
            assert value(s, "suitctl_estops_total", room="Room 1") == 1
            assert value(s, "suitctl_classes", state="estopped") == 1
            assert value(s, "suitctl_classes", state="running") == 0
            ticks = value(s, "suitctl_ticks_total", room="Room 1")
            s = await until(
                reader, lambda s: value(s, "suitctl_ticks_total", room="Room 1") > ticks
            )

            text = (await reader.get("/metrics")).text
            for person in ("Ana", "Ben", "Tess", "Mia", ana, ben):
                assert person not in text
            for c in (plain, reader, tess):
                await c.aclose()
            nursery.cancel_scope.cancel()


def test_the_document_says_what_metrics_and_health_answer() -> None:
    doc: dict[str, Any] = {
        "paths": {
            "/metrics": {"get": {"responses": {"200": {}}}},
            "/api/v1/health": {"get": {"responses": {"200": {}}}},
        }
    }
    describe(doc)
    assert "text/plain" in doc["paths"]["/metrics"]["get"]["responses"]["200"]["content"]
    assert "503" in doc["paths"]["/api/v1/health"]["get"]["responses"]


@pytest.mark.skipif(MOSQUITTO is None, reason="mosquitto is not installed (make system-deps)")
async def test_the_broker_gauge_and_health_follow_a_real_mosquitto(tmp_path: Path) -> None:
    broker = Broker(tmp_path)
    broker.start()
    try:
        with trio.fail_after(60):
            async with trio_asyncio.open_loop(), trio.open_nursery() as nursery:
                site, _ = await start_site(nursery, tmp_path)
                reader = await reader_of(site)
                tess = await logged_in(site, "Tess")
                ana = await screened_client(tess, "Ana")
                class_id = await a_class(tess, "Room 1", {ana: "SIM-01"})
                bridge = MqttBridge(
                    site.studio.classes[class_id].session,
                    BrokerUrl.parse(broker.url()),
                    Topics.for_room(),
                )
                site.metrics.watch_broker("room-1", bridge)
                nursery.start_soon(bridge.run)
                s = await until(
                    reader, lambda s: value(s, "suitctl_broker_connected", broker="room-1") == 1
                )
                assert value(s, "suitctl_brokers_configured") == 1
                health = (await reader.get("/api/v1/health")).json()
                assert health["status"] == "ok"
                assert health["brokers"] == {"configured": 1, "connected": {"room-1": True}}

                broker.stop()  # the broker goes away: the gauge and the health say so
                await until(
                    reader, lambda s: value(s, "suitctl_broker_connected", broker="room-1") == 0
                )
                health = (await reader.get("/api/v1/health")).json()
                assert health["status"] == "degraded"
                assert health["brokers"]["connected"] == {"room-1": False}
                for c in (reader, tess):
                    await c.aclose()
                nursery.cancel_scope.cancel()
    finally:
        broker.stop()


def test_a_room_name_becomes_a_topic_segment() -> None:
    from suit_controller.studio.rooms import room_segment

    assert room_segment("Room 1") == "room-1"
    assert room_segment("  Spa/Studio #2 ") == "spa-studio-2"
    assert room_segment("###") == "room"
    for name in ("Room 1", "Raum Süd", "a+b", "x/y/#"):
        Topics.for_room("studio", room_segment(name))  # always a valid segment


@pytest.mark.skipif(MOSQUITTO is None, reason="mosquitto is not installed (make system-deps)")
async def test_the_studio_publishes_each_rooms_class_and_takes_its_estop_over_mqtt(
    tmp_path: Path,
) -> None:
    """`suitctl serve --mqtt`: a room's class on ems/studio/<room>/ (ids, never names), its
    e-stop from a tablet stops the suits at their firmware, and metrics/health see the broker."""
    from suit_controller.studio.rooms import StudioMqtt

    from .mqtt_probe import Probe

    broker = Broker(tmp_path)
    broker.start()
    try:
        with trio.fail_after(90):
            async with trio_asyncio.open_loop(), trio.open_nursery() as nursery:
                site, rack = await start_site(nursery, tmp_path)
                site.studio.mqtt = StudioMqtt(BrokerUrl.parse(broker.url()))
                tablet = await nursery.start(Probe(broker, "tablet-room-1").run)
                reader = await reader_of(site)
                tess = await logged_in(site, "Tess")
                ana = await screened_client(tess, "Ana")
                class_id = await a_class(tess, "Room 1", {ana: "SIM-01"})
                r = await tess.post(f"/api/v1/classes/{class_id}/commands", json={"do": "start"})
                assert r.status_code == 200, r.text
                state = await tablet.wait_for(
                    lambda: next(
                        (
                            s
                            for s in tablet.on("ems/studio/room-1/state")
                            if isinstance(s, dict) and s.get("state") == "running"
                        ),
                        None,
                    ),
                    within=30,
                )
                assert state["class_id"] == class_id
                assert "Ana" not in json.dumps(state)  # ids, never names, outside messages
                await until(
                    reader,
                    lambda s: value(s, "suitctl_broker_connected", broker="room room-1") == 1,
                )
                suit = rack.suit("SIM-01").firmware
                await eventually(lambda: suit.state.name == "ARMED")  # the class drives it
                await tablet.publish("ems/studio/room-1/estop", {"do": "estop", "id": "e1"})
                await eventually(lambda: suit.state.name == "STOPPED" and not suit.applied_mA.any())
                klass = site.studio.classes[class_id]
                assert klass.session.state.value == "estopped"
                r = await tess.post(f"/api/v1/classes/{class_id}/commands", json={"do": "stop"})
                assert r.status_code == 200, r.text
                await site.studio.wait_ended(klass)
                # the class has ended: its bridge is no longer a broker the studio waits for
                await until(reader, lambda s: value(s, "suitctl_brokers_configured") == 0)
                health = (await reader.get("/api/v1/health")).json()
                assert health["brokers"] == {"configured": 0, "connected": {}}
                for c in (reader, tess):
                    await c.aclose()
                nursery.cancel_scope.cancel()
    finally:
        broker.stop()


def test_serve_refuses_a_bad_broker_url_before_starting(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from suit_controller.cli.main import suitctl

    result = CliRunner().invoke(
        suitctl, ["serve", "--mqtt", "ftp://nowhere", "--db", str(tmp_path / "s.db")]
    )
    assert result.exit_code == 2
    assert "mqtt://" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "s.db").exists()  # nothing was started or written
