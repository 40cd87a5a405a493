"""The e-stop over MQTT, through a real Mosquitto (issue 15's fast path).

Whatever its payload, a message on the e-stop topic stops every suit and is answered;
the desk latches it inside paho's callback, before the payload is read; both of the
controller's connections have Nagle's algorithm off.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

import aiomqtt
import pytest
import trio
import trio_asyncio

from sim.simclass import SimulatedClass
from suit_controller.commands import Reset, Resume
from suit_controller.mqtt import BrokerUrl, Topics
from suit_controller.mqtt import bridge as bridge_module
from suit_controller.mqtt.bridge import ESTOP_QOS, MqttBridge
from suit_controller.protocol import SuitState
from suit_controller.session import ClassState

from .mqtt_broker import MOSQUITTO, Broker
from .mqtt_probe import Probe
from .simclass_helpers import short_plan

pytestmark = pytest.mark.skipif(
    MOSQUITTO is None, reason="mosquitto is not installed (make system-deps)"
)
#: Outputs on from the first second to the last of the test (a 60 s impulse, no warm-up).
STEADY = """\
name: Steady
programs:
  s: {frequency_hz: 85, pulse_width_us: 350, impulse_s: 60, pause_s: 1, ramp_up_s: 0.2, ramp_down_s: 0.2}
phases:
  - kind: suit
    exercises:
      - {name: Squat, duration: 5m, program: s, channels: {quads: 1.0, glutes: 1.0}}
"""
ESTOP = "ems/studio/room-1/estop"


@pytest.fixture
def broker(tmp_path: Path) -> Any:
    b = Broker(tmp_path)
    b.start()
    yield b
    b.stop()


def make(broker: Broker) -> tuple[SimulatedClass, MqttBridge]:
    sc = SimulatedClass(short_plan(STEADY), 2, intensity_mA=20.0, body=False)
    bridge = MqttBridge(sc.session, BrokerUrl.parse(broker.url()), Topics.for_room())
    sc.companions = [bridge.run]
    return sc, bridge


def stopped_and_zero(sc: SimulatedClass) -> bool:
    return all(
        s.firmware.state is SuitState.STOPPED and not s.firmware.applied_mA.any() for s in sc.suits
    )


def stimulating(sc: SimulatedClass) -> bool:
    return all(s.firmware.applied_mA.any() for s in sc.suits)


def estop_results(tablet: Probe) -> list[dict[str, Any]]:
    return [
        r
        for r in tablet.on("/commands/result")
        if isinstance(r, dict) and r.get("command") == "estop"
    ]


async def start(broker: Broker, nursery: trio.Nursery) -> tuple[SimulatedClass, MqttBridge, Probe]:
    tablet: Probe = await nursery.start(Probe(broker, "tablet-room-1").run)
    sc, bridge = make(broker)
    nursery.start_soon(sc.run)
    await tablet.wait_for(lambda: bridge.connected and bridge.estop_connected and stimulating(sc))
    return sc, bridge, tablet


async def resume(sc: SimulatedClass, tablet: Probe) -> None:
    await sc.session.execute(Reset(), source="test")
    await sc.session.execute(Resume(), source="test")
    await tablet.wait_for(lambda: stimulating(sc))  # telemetry wakes the check 4 times a second


#: (payload, the id its answer carries): the topic is the command, the payload only an id.
PAYLOADS = [
    (b'{"id": "e-1"}', "e-1"),
    (b"\xff\xfe not JSON at all \x00", None),
    (b'{"id": 7, "do": "pause", "deep": [[[[[[[[1]]]]]]]]}', None),
    (b"", None),
    (b'{"id": "e-5", "do": "estop"} and trailing bytes', None),
]


async def test_any_payload_on_the_estop_topic_stops_every_suit_and_is_answered(
    broker: Broker,
) -> None:
    async with trio_asyncio.open_loop(), trio.open_nursery() as nursery:
        sc, bridge, tablet = await start(broker, nursery)
        for n, (payload, request_id) in enumerate(PAYLOADS, start=1):
            assert sc.session.state.value == "running" and stimulating(sc)
            await tablet.publish(ESTOP, payload)
            await tablet.wait_for(
                lambda n=n: stopped_and_zero(sc) and len(estop_results(tablet)) >= n  # type: ignore[misc]
            )
            assert sc.session.state is ClassState.ESTOPPED, payload
            answer = estop_results(tablet)[n - 1]
            assert answer["ok"] is True and answer["id"] == request_id, (payload, answer)
            await resume(sc, tablet)
        assert not bridge.errors and not sc.session.events.of_kind("interface_error")
        assert sc.session.desk.taken == len(PAYLOADS)  # each message taken once, as an e-stop
        nursery.cancel_scope.cancel()


async def test_the_estop_is_latched_inside_pahos_callback_before_its_payload_is_read(
    broker: Broker, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The latch needs nothing from the payload: reading it may even fail (a bug), and the
    e-stop is latched all the same, every suit stops, the tablet is answered, the bug is
    reported once."""
    read_after_latch: list[ClassState] = []

    def broken_id(raw: bytes) -> str | None:
        read_after_latch.append(session.state)
        raise RuntimeError("a bug reading the e-stop's id")

    monkeypatch.setattr(bridge_module, "_id", broken_id)
    async with trio_asyncio.open_loop(), trio.open_nursery() as nursery:
        sc, _, tablet = await start(broker, nursery)
        session = sc.session
        await tablet.publish(ESTOP, b'{"id": "e-1"}')
        await tablet.wait_for(lambda: stopped_and_zero(sc) and estop_results(tablet))
        assert read_after_latch == [ClassState.ESTOPPED]  # the payload was read after the latch
        answer = estop_results(tablet)[0]
        assert answer["ok"] is True and answer["id"] is None
        assert [e for e in session.events.of_kind("interface_error") if "RuntimeError" in e.message]
        nursery.cancel_scope.cancel()


async def test_the_desk_has_latched_when_pahos_callback_returns(broker: Broker) -> None:
    """No task and no queue between paho's callback and the latch: when the callback returns
    the class is e-stopped and every output the engine offers is zero."""
    sc, bridge = make(broker)
    session = sc.session
    on_return: list[tuple[ClassState, bool]] = []
    take = bridge._take_estop

    def timed_take(message: Any) -> None:
        take(message)
        on_return.append((session.state, bool(session.output_mA.any())))

    bridge._take_estop = timed_take  # type: ignore[method-assign]  # before the link connects
    async with trio_asyncio.open_loop(), trio.open_nursery() as nursery:
        tablet: Probe = await nursery.start(Probe(broker, "tablet-room-1").run)
        nursery.start_soon(sc.run)
        await tablet.wait_for(lambda: bridge.estop_connected and stimulating(sc))
        assert session.output_mA.any()
        await tablet.publish(ESTOP, b"stop")
        await tablet.wait_for(lambda: stopped_and_zero(sc) and estop_results(tablet))
        assert on_return == [(ClassState.ESTOPPED, False)]
        nursery.cancel_scope.cancel()


async def test_both_connections_have_nagle_off_and_estops_arrive_at_the_documented_qos(
    broker: Broker, monkeypatch: pytest.MonkeyPatch
) -> None:
    clients: list[aiomqtt.Client] = []
    make_client = MqttBridge._client

    def keep(self: MqttBridge, *, estop: bool = False, clean: bool = False) -> aiomqtt.Client:
        client = make_client(self, estop=estop, clean=clean)
        if not clean:  # the e-stop's throw-away clean start is closed at once
            clients.append(client)
        return client

    monkeypatch.setattr(MqttBridge, "_client", keep)
    async with trio_asyncio.open_loop(), trio.open_nursery() as nursery:
        sc, bridge, tablet = await start(broker, nursery)
        assert len(clients) == 2
        for client in clients:
            sock = client._client.socket()
            assert isinstance(sock, socket.socket)
            assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
        qos: list[int] = []
        take = bridge._take_estop
        estop_client = next(c for c in clients if str(c.identifier).endswith("-estop"))

        def seen(message: Any) -> None:
            qos.append(message.qos)
            take(message)

        estop_client.take_paho = seen  # type: ignore[attr-defined]
        await tablet.publish(ESTOP, json.dumps({"id": "q"}).encode(), qos=1)
        await tablet.wait_for(lambda: stopped_and_zero(sc) and estop_results(tablet))
        assert qos == [ESTOP_QOS]  # the broker delivers at the subscription's QoS
        nursery.cancel_scope.cancel()


def test_the_mqtt_estop_bench_runs_and_splits_each_trial_at_the_latch() -> None:
    """`make bench`'s line, small: a tablet process, a real Mosquitto, 2 suits, 2 trials."""
    from benchmarks.mqtt_estop import run_mqtt_estop

    line = run_mqtt_estop(n_suits=2, trials=2)
    assert line["trials"] == 2 and line["topic"] == "estop" and line["delivery_qos"] == ESTOP_QOS
    latched, zero = line["publish_to_latched"], line["latched_to_zero"]
    assert latched["max_ms"] > 0 and zero["max_ms"] > 0  # latched after the publish, zero after
    assert line["max_ms"] <= latched["max_ms"] + zero["max_ms"] + 1e-3  # the two halves add up
    assert {"target_p99_ms"} <= set(latched) & set(zero) and line["target_p99_ms"] == 3.0
