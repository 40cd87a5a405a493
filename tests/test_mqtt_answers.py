"""Commands over MQTT, through a real Mosquitto: retained, escaped, flooded (review of issue 12).

F1: a retained command published while the controller is connected is refused (MQTT v5
"retain as published"). F3: an e-stop's result goes out ahead of a flood's results, and a
flood of refused commands is answered by one refusal and one summary, not one by one.
F6: an e-stop written with a JSON escape is obeyed on the shared `…/commands` topic.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import trio
import trio_asyncio

from suit_controller.cli.simclass import SimulatedClass
from suit_controller.records import SessionEvent
from suit_controller.session import ClassState

from .mqtt_broker import MOSQUITTO, Broker
from .mqtt_probe import Probe
from .simclass_helpers import SHORT, short_plan

pytestmark = pytest.mark.skipif(
    MOSQUITTO is None, reason="mosquitto is not installed (make system-deps)"
)
LONG = SHORT.replace("duration: 40s", "duration: 5m")
ROOM = "ems/studio/room-1"


async def _until(check: Any, within: float = 30.0) -> None:
    """Wait (polling) until `check()` is true; fail after `within` seconds."""
    with trio.fail_after(within):
        while not check():  # noqa: ASYNC110 - a test polls the bridge and the desk
            await trio.sleep(0.01)


def _class(broker: Broker) -> tuple[SimulatedClass, Any]:
    from suit_controller.mqtt import BrokerUrl, Topics
    from suit_controller.mqtt.bridge import MqttBridge

    sc = SimulatedClass(short_plan(LONG), 2, intensity_mA=20.0, body=False)
    bridge = MqttBridge(sc.session, BrokerUrl.parse(broker.url()), Topics.for_room())
    sc.companions = [bridge.run]
    return sc, bridge


async def test_a_retained_command_published_during_a_class_is_refused_and_answered(
    tmp_path: Path,
) -> None:
    """Failed before the fix: the broker forwarded it with retain=0 and it was carried out."""
    broker = Broker(tmp_path)
    broker.start()
    try:
        sc, bridge = _class(broker)
        async with trio_asyncio.open_loop(), trio.open_nursery() as nursery:
            tab = await nursery.start(Probe(broker, "tablet-room-1", client_id="tablet-r").run)
            nursery.start_soon(sc.run)
            await tab.wait_for(lambda: [s for s in tab.on("/state") if s["state"] == "running"])
            await _until(lambda: bridge.connected and bridge.estop_connected)
            await tab.publish(
                tab.commands_topic(),
                {"id": "ret1", "do": "set_intensity", "client": 1, "mA": 33},
                retain=True,
            )
            res = await tab.wait_for(
                lambda: [r for r in tab.on("/commands/result") if r.get("id") == "ret1"]
            )
            assert res[0]["ok"] is False and "retained" in res[0]["message"]
            # and a live command right after it is carried out: the class goes on
            assert (await tab.command({"do": "set_intensity", "client": 2, "mA": 25}, "live"))["ok"]
            assert sc.session.board.target_mA[0].max() == pytest.approx(20.0)
            assert sc.session.board.target_mA[1].max() == pytest.approx(25.0)
            assert sc.session.state is ClassState.RUNNING
            nursery.cancel_scope.cancel()
    finally:
        broker.stop()


async def test_an_estop_written_with_a_json_escape_is_obeyed_on_the_shared_topic(
    tmp_path: Path,
) -> None:
    """Failed before the fix: the shared topic recognised e-stops by their literal spelling."""
    broker = Broker(tmp_path)
    broker.start()
    try:
        sc, bridge = _class(broker)
        async with trio_asyncio.open_loop(), trio.open_nursery() as nursery:
            tab = await nursery.start(Probe(broker, "tablet-room-1", client_id="tablet-u").run)
            nursery.start_soon(sc.run)
            await tab.wait_for(lambda: [s for s in tab.on("/state") if s["state"] == "running"])
            await _until(lambda: bridge.connected and bridge.estop_connected)
            # a skip spelled with an escape is still refused there (only e-stops are obeyed)
            await tab.publish(f"{ROOM}/commands", b'{"id": "s1", "do": "\\u0073kip"}')
            skip = await tab.wait_for(
                lambda: [r for r in tab.on("/commands/result") if r.get("id") == "s1"]
            )
            assert skip[0]["ok"] is False and "not carried out" in skip[0]["message"]
            assert sc.session.state is ClassState.RUNNING
            await tab.publish(f"{ROOM}/commands", b'{"id": "u1", "do": "\\u0065stop"}')
            res = await tab.wait_for(
                lambda: [r for r in tab.on("/commands/result") if r.get("id") == "u1"]
            )
            assert res[0]["ok"] is True and res[0]["command"] == "estop"
            assert sc.session.state is ClassState.ESTOPPED
            nursery.cancel_scope.cancel()
    finally:
        broker.stop()


async def test_an_estops_result_overtakes_a_flood_and_refusals_are_summarised(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One tablet floods K commands at once (40 carried out, the rest past its rate limit);
    another presses the e-stop. The e-stop's result is published ahead of every flood result
    still waiting, and the refusals are answered by one refusal plus one summary.

    Failed before the fix: the e-stop's result came after the flood's ~K results.
    """
    from suit_controller.mqtt import bridge as bridge_module

    # no summary until the class ends (its farewell sends what is due), so the count is exact
    monkeypatch.setattr(bridge_module, "REFUSAL_SUMMARY_EVERY_S", 3600.0)
    k = 400
    broker = Broker(tmp_path)
    broker.start()
    try:
        sc, bridge = _class(broker)
        published_at_latch: list[int] = []

        def on_event(event: SessionEvent) -> None:
            if event.kind == "estop":
                published_at_latch.append(bridge.results_published)

        sc.session.events.subscribe(on_event)
        async with trio_asyncio.open_loop(), trio.open_nursery() as nursery:
            trainer = await nursery.start(Probe(broker, "tablet-room-1", client_id="trainer").run)
            flooder = await nursery.start(
                Probe(broker, "tablet-room-1", client_id="flooder", inflight=0).run
            )
            nursery.start_soon(sc.run)
            await trainer.wait_for(
                lambda: [s for s in trainer.on("/state") if s["state"] == "running"]
            )
            await _until(lambda: bridge.connected and bridge.estop_connected)
            taken = sc.session.desk.taken
            for i in range(k):
                flooder.publish_nowait(
                    flooder.commands_topic(),
                    {"id": f"f{i}", "do": "set_intensity", "client": 1, "mA": 5 + i % 10},
                )
            await _until(lambda: sc.session.desk.taken >= taken + k)
            await trainer.publish(f"{ROOM}/estop", {"id": "E"})

            def results() -> list[dict[str, Any]]:
                return [r for r in trainer.on("/commands/result") if isinstance(r, dict)]

            await trainer.wait_for(lambda: [r for r in results() if r.get("id") == "E"])
            assert sc.session.state is ClassState.ESTOPPED
            # order, not time: at most the one publish in flight when it latched went first
            position = [r.get("id") for r in results()].index("E")
            assert published_at_latch and position <= published_at_latch[0] + 1, (
                position,
                published_at_latch,
            )
            # end the class: its farewell publishes the summary of the refusals still counted
            trainer.publish_nowait(trainer.commands_topic(), {"id": "end", "do": "stop"})
            await trainer.wait_for(
                lambda: [r for r in results() if "commands refused" in r["message"]], within=30
            )
            flood = [r for r in results() if str(r.get("id")).startswith("f")]
            rate = [r for r in flood if "more than 40 commands" in r["message"]]
            summaries = [r for r in results() if "commands refused" in r["message"]]
            assert len(rate) == 1 and len(summaries) == 1, (rate, summaries)
            summarised = int(summaries[0]["message"].split()[0])
            assert "from mqtt:flooder" in summaries[0]["message"]
            assert summaries[0]["ok"] is False and summaries[0]["id"] is None
            # every flood command is accounted for: answered one by one, or in the summary
            assert len({r["id"] for r in flood}) == len(flood) == k - summarised
            assert summarised == sc.session.desk.rate_limited - 1 >= k - 100
            nursery.cancel_scope.cancel()
    finally:
        broker.stop()


async def test_a_flood_on_the_shared_topic_is_answered_within_its_limit_then_summarised(
    tmp_path: Path,
) -> None:
    """Refusals on the shared `…/commands` topic count against its rate limit: past it they
    are summarised. Failed before the fix: each of the K commands was answered one by one."""
    k = 200
    broker = Broker(tmp_path)
    broker.start()
    try:
        sc, bridge = _class(broker)
        async with trio_asyncio.open_loop(), trio.open_nursery() as nursery:
            tab = await nursery.start(
                Probe(broker, "tablet-room-1", client_id="flood-s", inflight=0).run
            )
            nursery.start_soon(sc.run)
            await tab.wait_for(lambda: [s for s in tab.on("/state") if s["state"] == "running"])
            await _until(lambda: bridge.connected and bridge.estop_connected)
            for i in range(k):
                tab.publish_nowait(f"{ROOM}/commands", {"id": f"s{i}", "do": "skip"})

            def results() -> list[dict[str, Any]]:
                return [r for r in tab.on("/commands/result") if isinstance(r, dict)]

            def one_by_one() -> list[dict[str, Any]]:
                return [r for r in results() if str(r.get("id")).startswith("s")]

            def summaries() -> list[dict[str, Any]]:
                return [r for r in results() if "commands refused" in r["message"]]

            await tab.wait_for(
                lambda: (
                    len(one_by_one()) + sum(int(r["message"].split()[0]) for r in summaries()) == k
                ),
                within=30,
            )
            assert all(not r["ok"] and "not carried out" in r["message"] for r in one_by_one())
            assert len(one_by_one()) <= k // 2, len(one_by_one())  # ~41, never all k
            assert summaries() and all(
                "from mqtt:commands;" in r["message"] and "publish them on" in r["message"]
                for r in summaries()
            )
            assert sc.session.state is ClassState.RUNNING
            nursery.cancel_scope.cancel()
    finally:
        broker.stop()


async def test_an_estops_result_goes_out_on_the_estop_connection(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The command connection's results are held (as behind a flood's acknowledgements):
    the e-stop's result still arrives, published by the e-stop's own connection. Failed
    before: e-stops' results went out only on the command connection."""
    from suit_controller.mqtt import bridge as bridge_module

    async def held(self: Any, client: Any) -> None:
        await trio.sleep_forever()

    monkeypatch.setattr(bridge_module.MqttBridge, "_result_publisher", held)
    broker = Broker(tmp_path)
    broker.start()
    try:
        sc, bridge = _class(broker)
        async with trio_asyncio.open_loop(), trio.open_nursery() as nursery:
            tab = await nursery.start(
                Probe(
                    broker, "tablet-room-1", client_id="t-e", subscribe=f"{ROOM}/commands/result"
                ).run
            )
            nursery.start_soon(sc.run)
            await _until(lambda: bridge.connected and bridge.estop_connected)
            await _until(lambda: sc.session.state is ClassState.RUNNING)
            await tab.publish(tab.commands_topic(), {"id": "held", "do": "pause"})
            await tab.publish(f"{ROOM}/estop", {"id": "E2"})
            res = await tab.wait_for(lambda: [r for r in tab.on("/commands/result")])
            assert [r["id"] for r in res] == ["E2"] and res[0]["ok"] is True, res
            assert sc.session.state is ClassState.ESTOPPED
            nursery.cancel_scope.cancel()
    finally:
        broker.stop()


async def test_a_result_that_fails_on_the_estop_connection_never_ends_that_connection(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The e-stop's connection exists to hear e-stops: a result it fails to publish goes out
    on the command connection instead, and the e-stop connection stays up, error-free."""
    import aiomqtt

    from suit_controller.mqtt import bridge as bridge_module

    original = bridge_module.MqttBridge._publish_result
    tried: list[str] = []

    async def fails_on_estop(self: Any, client: aiomqtt.Client, request: Any) -> None:
        if client.identifier.endswith("-estop"):
            tried.append(str(request.request_id))
            raise aiomqtt.MqttError("publishing failed")
        await original(self, client, request)

    monkeypatch.setattr(bridge_module.MqttBridge, "_publish_result", fails_on_estop)
    broker = Broker(tmp_path)
    broker.start()
    try:
        sc, bridge = _class(broker)
        async with trio_asyncio.open_loop(), trio.open_nursery() as nursery:
            tab = await nursery.start(
                Probe(
                    broker, "tablet-room-1", client_id="t-f", subscribe=f"{ROOM}/commands/result"
                ).run
            )
            nursery.start_soon(sc.run)
            await _until(lambda: bridge.connected and bridge.estop_connected)
            await _until(lambda: sc.session.state is ClassState.RUNNING)
            # both connections may publish an e-stop's result (the e-stop's usually first):
            # press until one publish has failed on the e-stop connection
            for n in range(1, 11):
                await tab.publish(f"{ROOM}/estop", {"id": f"E{n}"})
                res = await tab.wait_for(
                    lambda n=n: [r for r in tab.on("/commands/result") if r["id"] == f"E{n}"]
                )
                assert res[0]["ok"] is True, res  # answered, on the command connection if need be
                if tried:
                    break
            assert tried, "no result was ever tried on the e-stop connection"
            # the next e-stop is heard on the same, still open, e-stop connection
            await tab.publish(f"{ROOM}/estop", {"id": "after"})
            await tab.wait_for(
                lambda: [r for r in tab.on("/commands/result") if r["id"] == "after"]
            )
            assert bridge.estop_connected and bridge.last_error is None and not bridge.errors
            nursery.cancel_scope.cancel()
    finally:
        broker.stop()


def test_the_summary_says_how_many_and_why() -> None:
    """The summary is a command result like any other: {"id", "ok", "command", "message"}."""
    from suit_controller.mqtt.bridge import MqttBridge

    bridge = object.__new__(MqttBridge)
    bridge.refusals_summarised = 0
    sc = SimulatedClass(short_plan(LONG), 2, intensity_mA=20.0, body=False)
    bridge.session = sc.session
    doc = json.loads(MqttBridge._summary(bridge, "mqtt:tab-1", 7))
    assert doc == {
        "id": None,
        "ok": False,
        "command": None,
        "message": "7 commands refused: more than 40 commands at once or 20 a second from "
        "mqtt:tab-1; none of them was carried out (past the limit, refusals are answered "
        "together, not one by one)",
    }
    assert bridge.refusals_summarised == 7
