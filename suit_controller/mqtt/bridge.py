"""The MQTT bridge: class state, telemetry and events out; trainer commands in.

aiomqtt is an asyncio library; it runs under `trio_asyncio` (the caller opens
the loop with `trio_asyncio.open_loop()`) and every call crosses with
`aio_as_trio`. Its errors become reconnects here: nothing else in the
program knows asyncio exists, and a broker that goes away never touches the
class. Events wait in a bounded buffer (`EVENT_BUFFER`, oldest dropped and
counted past it) until the broker has acknowledged them (QoS 1): delivery
is at least once, and each event carries `seq` so consumers can drop repeats.
"""

from __future__ import annotations

import json
import socket
import ssl
import time
from collections import deque
from typing import Any

import aiomqtt
import trio
import trio_asyncio

from suit_controller.backoff import Backoff
from suit_controller.commands import CommandRefused
from suit_controller.mqtt.payloads import parse_command_payload, state_payload, telemetry_payloads
from suit_controller.mqtt.topics import BrokerUrl, Topics
from suit_controller.records import SessionEvent
from suit_controller.session import ClassSession

EVENT_BUFFER = 10_000
STATE_EVERY_S = 1.0
TELEMETRY_HZ = 4.0
PUBLISH_TIMEOUT_S = 5.0
#: Events after which the retained state is re-published at once.
STATE_CHANGING = {
    "started",
    "segment",
    "estop",
    "ended",
    "command",
    "link_lost",
    "link_up",
    "suit_safe_state",
}


class TrioSafeClient(aiomqtt.Client):
    """aiomqtt's client, with one fix for running under trio-asyncio.

    aiomqtt registers paho's socket for writing with a *deferred*
    `loop.add_writer(fd, …)`. When the broker goes away, paho closes the
    socket before that deferred call runs; under trio-asyncio the late
    registration then waits on a closed descriptor and the error escapes
    into the loop, ending it. Here the deferred call first checks that the
    socket is still open.
    """

    def _on_socket_register_write(self, client: Any, userdata: Any, sock: Any) -> None:
        def callback() -> None:
            try:
                client.loop_write()
            except Exception as exc:  # paho's errors mean the connection broke
                if not self._disconnected.done():
                    self._disconnected.set_exception(exc)

        def register() -> None:
            if sock.fileno() != -1:
                self._loop.add_writer(sock.fileno(), callback)

        self._loop.call_soon_threadsafe(register)

    def _on_socket_unregister_write(self, client: Any, userdata: Any, sock: Any) -> None:
        if sock.fileno() != -1:
            self._loop.remove_writer(sock.fileno())


def _dumps(doc: Any) -> bytes:
    return json.dumps(doc, separators=(",", ":"), default=str).encode("utf-8")


class MqttBridge:
    """Connects one class to a broker; reconnects with backoff; never blocks the class."""

    def __init__(
        self,
        session: ClassSession,
        broker: BrokerUrl,
        topics: Topics,
        *,
        client_id: str | None = None,
        telemetry_hz: float = TELEMETRY_HZ,
    ) -> None:
        self.session = session
        self.broker = broker
        self.topics = topics
        self.client_id = client_id or f"suit-controller-{socket.gethostname()}-{id(self):x}"
        self.telemetry_hz = telemetry_hz
        self.pending: deque[tuple[int, dict[str, Any]]] = deque()
        self.dropped_events = 0
        self.published_events = 0
        self.commands_handled = 0
        self.connects = 0
        self.connected = False
        self.last_error: str | None = None
        self._seq = 0
        self._wake = trio.Event()
        self._state_due = True
        session.events.subscribe(self._on_event)

    def _on_event(self, event: SessionEvent) -> None:
        self._seq += 1
        if len(self.pending) >= EVENT_BUFFER:
            self.pending.popleft()
            self.dropped_events += 1
        self.pending.append((self._seq, {**event.as_dict(), "seq": self._seq}))
        if event.kind in STATE_CHANGING:
            self._state_due = True
        self._wake.set()

    def _client(self) -> aiomqtt.Client:
        tls = None
        if self.broker.tls:
            tls = ssl.create_default_context(cafile=self.broker.ca_file)
        return TrioSafeClient(
            self.broker.host,
            self.broker.port,
            username=self.broker.username,
            password=self.broker.password,
            identifier=self.client_id,
            keepalive=10,
            timeout=PUBLISH_TIMEOUT_S,
            will=aiomqtt.Will(self.topics.online, b"false", qos=1, retain=True),
            socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)],
            tls_context=tls,
        )

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Stay connected until cancelled; on the way out, say goodbye if the broker is there."""
        backoff = Backoff(first_s=0.25, max_s=5.0)
        task_status.started()
        while True:
            client = self._client()
            try:
                async with trio_asyncio.aio_as_trio(client):
                    self.connected = True
                    self.connects += 1
                    backoff.reset()
                    await self._connected(client)
            except (aiomqtt.MqttError, OSError) as e:
                self.last_error = str(e)
            finally:
                self.connected = False
            await trio.sleep(backoff.next())

    async def _publish(
        self, client: aiomqtt.Client, topic: str, payload: bytes, qos: int = 0, retain: bool = False
    ) -> None:
        with trio.fail_after(PUBLISH_TIMEOUT_S):
            await trio_asyncio.aio_as_trio(client.publish)(topic, payload, qos=qos, retain=retain)

    async def _connected(self, client: aiomqtt.Client) -> None:
        await trio_asyncio.aio_as_trio(client.subscribe)(self.topics.commands, qos=1)
        await self._publish(client, self.topics.online, b"true", qos=1, retain=True)
        self._state_due = True
        broken = False
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._publisher, client)
                nursery.start_soon(self._receiver, client)
        except* (aiomqtt.MqttError, OSError, trio.TooSlowError) as group:
            broken = True
            raise aiomqtt.MqttError(str(group.exceptions[0])) from None
        finally:
            if not broken:  # leaving on purpose (the class ended): say goodbye
                with trio.CancelScope(shield=True), trio.move_on_after(2.0):
                    await self._farewell(client)

    async def _flush_events(self, client: aiomqtt.Client) -> None:
        while self.pending:
            _, doc = self.pending[0]
            await self._publish(client, self.topics.events, _dumps(doc), qos=1)
            self.pending.popleft()  # only once the broker has it
            self.published_events += 1

    async def _publish_state(self, client: aiomqtt.Client) -> None:
        self._state_due = False
        doc = state_payload(self.session.snapshot())
        await self._publish(client, self.topics.state, _dumps(doc), qos=1, retain=True)

    async def _publisher(self, client: aiomqtt.Client) -> None:
        next_state = next_telemetry = time.monotonic()
        period = 1.0 / self.telemetry_hz
        while True:
            self._wake = trio.Event()
            await self._flush_events(client)
            now = time.monotonic()
            if self._state_due or now >= next_state:
                await self._publish_state(client)
                next_state = now + STATE_EVERY_S
            if now >= next_telemetry:
                next_telemetry = now + period
                snap = self.session.snapshot()
                for name, doc in telemetry_payloads(snap, self.session.class_time()):
                    await self._publish(client, self.topics.telemetry(name), _dumps(doc), qos=0)
            if self.pending or self._state_due:
                continue
            with trio.move_on_after(max(0.0, min(next_state, next_telemetry) - time.monotonic())):
                await self._wake.wait()

    async def _receiver(self, client: aiomqtt.Client) -> None:
        async for message in trio_asyncio.aio_as_trio(client.messages):
            payload = message.payload
            raw = (
                payload
                if isinstance(payload, bytes)
                else bytes(payload)
                if isinstance(payload, bytearray)
                else str(payload).encode()
            )
            await self.handle_command(client, raw)

    async def handle_command(self, client: aiomqtt.Client, raw: bytes) -> None:
        """Parse, run through the session's one command path, and answer on the result topic."""
        self.commands_handled += 1
        request_id: str | None = None
        try:
            request_id, cmd = parse_command_payload(raw)
        except CommandRefused as e:
            request_id = getattr(e, "request_id", None)
            self.session.emit("command_refused", f"command from mqtt refused: {e}", source="mqtt")
            result = {"id": request_id, "ok": False, "command": None, "message": str(e)}
        else:
            outcome = await self.session.execute(cmd, source="mqtt")
            result = {"id": request_id, **outcome.as_dict()}
        # A stop ends the class and with it this bridge: the answer still goes out.
        with trio.CancelScope(shield=True):
            await self._publish(client, self.topics.results, _dumps(result), qos=1)

    async def _farewell(self, client: aiomqtt.Client) -> None:
        try:
            await self._flush_events(client)
            await self._publish_state(client)
            await self._publish(client, self.topics.online, b"false", qos=1, retain=True)
        except (aiomqtt.MqttError, OSError, trio.TooSlowError):
            pass  # the broker is gone: the last will says we are offline
