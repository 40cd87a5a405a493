"""A test client of the broker (a trainer's tablet or a dashboard), under trio-asyncio."""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from typing import Any

import aiomqtt
import trio
import trio_asyncio
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from suit_controller.mqtt.bridge import TrioSafeClient

from .mqtt_broker import LOGINS, USERS, Broker

_PROBES = itertools.count(1)


def _bytes(payload: bytes | str | dict[str, Any]) -> bytes:
    if isinstance(payload, dict):
        return json.dumps(payload).encode()
    return payload.encode("utf-8", "surrogatepass") if isinstance(payload, str) else payload


class Probe:
    """Subscribes to a room and keeps every message; publishes commands."""

    def __init__(
        self,
        broker: Broker,
        user: str | None,
        room: str = "room-1",
        inflight: int | None = None,
        protocol: aiomqtt.ProtocolVersion | None = None,
        subscribe: str | None = None,
        client_id: str | None = None,
    ) -> None:
        self.broker, self.user, self.room = broker, user, room
        #: the tablet's MQTT client id: commands go to `…/commands/from/<client id>`
        self.client_id = client_id or f"probe-{next(_PROBES)}"
        self.inflight = inflight  # 0: no limit, so a burst leaves the tablet at once
        self.protocol = protocol
        self.subscription = subscribe or f"ems/studio/{room}/#"
        self.messages: list[tuple[str, bytes, bool]] = []
        #: every message as received (v5 properties included)
        self.received: list[aiomqtt.Message] = []
        self.scope = trio.CancelScope()
        self._changed = trio.Event()
        self.client: aiomqtt.Client | None = None
        self.disconnected = False

    def _make(self) -> aiomqtt.Client:
        return TrioSafeClient(
            "127.0.0.1",
            self.broker.port,
            username=LOGINS.get(self.user or "", self.user),
            password=USERS.get(LOGINS.get(self.user or "", self.user or ""), None),
            identifier=self.client_id,
            timeout=5,
            max_inflight_messages=self.inflight,
            protocol=self.protocol,
        )

    async def run(self, *, task_status: trio.TaskStatus[Probe] = trio.TASK_STATUS_IGNORED) -> None:
        self.client = self._make()
        try:
            with self.scope:  # `stop()` leaves (a consumer going offline)
                async with trio_asyncio.aio_as_trio(self.client):
                    await trio_asyncio.aio_as_trio(self.client.subscribe)(self.subscription, qos=1)
                    task_status.started(self)
                    async for m in trio_asyncio.aio_as_trio(self.client.messages):
                        payload = (
                            m.payload if isinstance(m.payload, bytes) else str(m.payload).encode()
                        )
                        self.messages.append((str(m.topic), payload, bool(m.retain)))
                        if self.protocol is not None:  # v5 tests read the properties
                            self.received.append(m)
                        self._changed.set()
                        self._changed = trio.Event()
        except aiomqtt.MqttError:
            self.disconnected = True  # the broker went away: keep what was received

    def stop(self) -> None:
        """Disconnect now (what was received is kept)."""
        self.scope.cancel()

    async def publish(
        self,
        topic: str,
        payload: bytes | str | dict[str, Any],
        qos: int = 1,
        retain: bool = False,
        response_topic: str | None = None,
        correlation: bytes | None = None,
    ) -> None:
        """Publish; with `response_topic` (MQTT v5) the request asks for an answer there."""
        assert self.client is not None
        props = None
        if response_topic is not None:
            props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
            props.ResponseTopic = response_topic
            if correlation is not None:
                props.CorrelationData = correlation
        await trio_asyncio.aio_as_trio(self.client.publish)(
            topic, _bytes(payload), qos=qos, retain=retain, properties=props
        )

    def publish_nowait(self, topic: str, payload: bytes | str | dict[str, Any]) -> None:
        """Queue a QoS 1 publish in paho without waiting for the broker (a burst)."""
        assert self.client is not None
        self.client._client.publish(topic, _bytes(payload), qos=1)

    def on(self, suffix: str) -> list[Any]:
        out = []
        for topic, payload, _ in self.messages:
            if topic.endswith(suffix):
                try:
                    out.append(json.loads(payload))
                except ValueError:
                    out.append(payload)
        return out

    async def wait_for(self, check: Callable[[], Any], within: float = 10.0) -> Any:
        with trio.fail_after(within):
            while not (value := check()):
                await self._changed.wait()
            return value

    def commands_topic(self, room: str | None = None) -> str:
        """Where this tablet's commands are carried out: `…/commands/from/<its client id>`."""
        return f"ems/studio/{room or self.room}/commands/from/{self.client_id}"

    async def command(
        self, doc: dict[str, Any] | bytes, request_id: str | None = None, room: str | None = None
    ) -> dict[str, Any]:
        """Send a command and wait for its result (by id)."""
        rid = request_id or f"r{len(self.messages)}-{trio.current_time():.6f}"
        if isinstance(doc, dict):
            doc = {**doc, "id": rid}
        await self.publish(self.commands_topic(room), doc)
        result: dict[str, Any] = await self.wait_for(
            lambda: next(
                (
                    r
                    for r in self.on("/commands/result")
                    if isinstance(r, dict) and r.get("id") == rid
                ),
                None,
            )
        )
        return result
