"""The MQTT bridge: class state, telemetry and events out; trainer commands in.

aiomqtt is an asyncio library; it runs under `trio_asyncio` (the caller opens
the loop with `trio_asyncio.open_loop()`) and every call crosses with
`aio_as_trio`. Its errors become reconnects here: nothing else in the
program knows asyncio exists, and a broker that goes away never touches the
class. Nor does anything else that goes wrong in the bridge: it is reported
once, and the bridge reconnects (an interface never ends a class).

Two connections. The first publishes state, telemetry, events and results
and reads `commands` and `commands/from/<client id>`; every message is
handed to the session's command desk the moment it arrives (`desk.take`:
parsing, rate limits per client id, e-stop recognition), and the results
are published as they come. The second connection reads only the `estop`
topic, so no burst of commands can queue in front of an e-stop, neither in
this program nor in the broker (which drops QoS 1 messages past its queue
limit). A retained command is never executed: it is answered with a
refusal. Events wait in a bounded buffer (`EVENT_BUFFER`, oldest dropped and
counted past it) until the broker has acknowledged them (QoS 1): delivery
is at least once, and each event carries `seq` and the class's
`session_id` so consumers can drop repeats and tell classes apart.
"""

from __future__ import annotations

import json
import math
import socket
import ssl
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import aiomqtt
import trio
import trio_asyncio

from suit_controller.backoff import Backoff
from suit_controller.commands import Request, printable
from suit_controller.mqtt.payloads import state_payload, telemetry_payloads
from suit_controller.mqtt.topics import BrokerUrl, Topics
from suit_controller.records import SessionEvent
from suit_controller.session import ClassSession

EVENT_BUFFER = 10_000
STATE_EVERY_S = 1.0
TELEMETRY_HZ = 4.0
PUBLISH_TIMEOUT_S = 5.0
RETAINED_REFUSAL = (
    "a retained command is never executed (it would run again at every reconnect and in the "
    "next class); publish commands with retain=false"
)
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

    #: Called with each message the moment paho has parsed it (in the loop's callback, so in
    #: this Trio thread); a message it takes is not queued for `messages`.
    take_now: Callable[[aiomqtt.Message], None] | None = None

    def _on_message(self, client: Any, userdata: Any, message: Any) -> None:
        if self.take_now is None:
            super()._on_message(client, userdata, message)
        else:
            self.take_now(aiomqtt.Message._from_paho_message(message))

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
        self.results_published = 0
        self.connects = 0
        self.connected = False
        self.estop_connected = False
        self.last_error: str | None = None
        #: Errors that were not the broker's (a bug here); each kind reported once.
        self.errors: dict[str, int] = {}
        self._seq = 0
        self._wake = trio.Event()
        self._state_due = True
        self._answers_in, self._answers = trio.open_memory_channel[Request](math.inf)
        self._unanswered: set[Request] = set()
        session.events.subscribe(self._on_event)

    def _on_event(self, event: SessionEvent) -> None:
        self._seq += 1
        if len(self.pending) >= EVENT_BUFFER:
            self.pending.popleft()
            self.dropped_events += 1
        doc = {**event.as_dict(), "seq": self._seq, "session_id": self.session.session_id}
        self.pending.append((self._seq, doc))
        if event.kind in STATE_CHANGING:
            self._state_due = True
        self._wake.set()

    def _client(self, *, estop: bool = False) -> aiomqtt.Client:
        tls = None
        if self.broker.tls:
            tls = ssl.create_default_context(cafile=self.broker.ca_file)
        return TrioSafeClient(
            self.broker.host,
            self.broker.port,
            username=self.broker.username,
            password=self.broker.password,
            identifier=f"{self.client_id}-estop" if estop else self.client_id,
            keepalive=10,
            timeout=PUBLISH_TIMEOUT_S,
            will=None if estop else aiomqtt.Will(self.topics.online, b"false", qos=1, retain=True),
            socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)],
            tls_context=tls,
        )

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Stay connected (both connections) until cancelled; never raises into the class."""
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._stay_connected, self._main_link, "commands")
            nursery.start_soon(self._stay_connected, self._estop_link, "e-stop")
            task_status.started()

    async def _stay_connected(self, link: Any, name: str) -> None:
        backoff = Backoff(first_s=0.25, max_s=5.0)
        while True:
            try:
                await link(backoff)
            except (aiomqtt.MqttError, OSError) as e:
                self.last_error = str(e)
            except Exception as e:  # not the broker's: report once, reconnect, the class goes on
                self._report(name, e)
            await trio.sleep(backoff.next())

    def _report(self, link: str, error: BaseException) -> None:
        while isinstance(error, BaseExceptionGroup) and error.exceptions:
            error = error.exceptions[0]
        kind = f"{link}:{type(error).__name__}"
        self.last_error = str(error)
        n = self.errors[kind] = self.errors.get(kind, 0) + 1
        if n == 1:
            self.session.emit(
                "interface_error",
                f"MQTT {link} connection: {type(error).__name__}: {printable(str(error))}; "
                "reconnecting, the class goes on",
                interface="mqtt",
            )

    async def _main_link(self, backoff: Backoff) -> None:
        client = self._client()
        try:
            async with trio_asyncio.aio_as_trio(client):
                self.connects += 1
                backoff.reset()
                await self._connected(client)
        finally:
            self.connected = False

    async def _estop_link(self, backoff: Backoff) -> None:
        """The e-stop's own connection: reads one topic, hands every message to the desk at once."""
        client = self._client(estop=True)
        try:
            async with trio_asyncio.aio_as_trio(client):
                client.take_now = self._take_estop  # type: ignore[attr-defined]
                await trio_asyncio.aio_as_trio(client.subscribe)(self.topics.estop, qos=1)
                self.estop_connected = True
                backoff.reset()
                async for _ in trio_asyncio.aio_as_trio(client.messages):
                    pass  # every message was taken as it was parsed; this notices a disconnect
        finally:
            self.estop_connected = False

    async def _publish(
        self, client: aiomqtt.Client, topic: str, payload: bytes, qos: int = 0, retain: bool = False
    ) -> None:
        with trio.fail_after(PUBLISH_TIMEOUT_S):
            await trio_asyncio.aio_as_trio(client.publish)(topic, payload, qos=qos, retain=retain)

    async def _connected(self, client: aiomqtt.Client) -> None:
        client.take_now = self._take_command  # type: ignore[attr-defined]
        await self._publish(client, self.topics.online, b"true", qos=1, retain=True)
        await self._publish_state(client)  # a reconnecting controller says where it is at once
        await trio_asyncio.aio_as_trio(client.subscribe)(self.topics.commands, qos=1)
        await trio_asyncio.aio_as_trio(client.subscribe)(self.topics.commands_from_any, qos=1)
        self.connected = True  # publishing, and reading commands
        broken = False
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._publisher, client)
                nursery.start_soon(self._result_publisher, client)
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
        doc["session_id"] = self.session.session_id
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

    def _take_estop(self, message: aiomqtt.Message) -> None:
        """Any message on the e-stop topic is an e-stop (its id is echoed if it can be read)."""
        try:
            raw = _payload(message.payload)
            source = "mqtt:estop"
            if message.retain:
                self._answer(self.session.desk.refuse(raw, source, RETAINED_REFUSAL))
            else:
                self._answer(self.session.desk.take({"do": "estop", "id": _id(raw)}, source))
        except Exception as e:  # inside paho's callback: report, never raise into the loop
            self._report("e-stop", e)

    def _take_command(self, message: aiomqtt.Message) -> None:
        """Every command message goes to the desk the moment paho has parsed it."""
        try:
            topic = str(message.topic)
            prefix = self.topics.commands_from("")
            # rate limits are per client id: the broker's ACL lets a tablet write only its own
            source = "mqtt:" + topic[len(prefix) :] if topic.startswith(prefix) else "mqtt"
            self.handle(_payload(message.payload), source, retained=bool(message.retain))
        except Exception as e:  # inside paho's callback: report, never raise into the loop
            self._report("commands", e)

    async def _receiver(self, client: aiomqtt.Client) -> None:
        async for _ in trio_asyncio.aio_as_trio(client.messages):
            pass  # every message was taken as it was parsed; this notices a disconnect

    def handle(self, raw: bytes, source: str = "mqtt", *, retained: bool = False) -> Request:
        """Take one command message now; its result is published when it is known."""
        self.commands_handled += 1
        desk = self.session.desk
        request = desk.refuse(raw, source, RETAINED_REFUSAL) if retained else desk.take(raw, source)
        self._answer(request)
        return request

    def _answer(self, request: Request) -> None:
        self._unanswered.add(request)
        self._answers_in.send_nowait(request)

    async def _result_publisher(self, client: aiomqtt.Client) -> None:
        """Publish each result as soon as it is known (an e-stop's does not wait for others)."""
        async with trio.open_nursery() as waiting:
            async for request in self._answers:
                if request.result is not None:
                    await self._publish_result(client, request)
                else:
                    waiting.start_soon(self._publish_when_done, client, request)

    async def _publish_when_done(self, client: aiomqtt.Client, request: Request) -> None:
        await request.wait()
        await self._publish_result(client, request)

    async def _publish_result(self, client: aiomqtt.Client, request: Request) -> None:
        assert request.result is not None
        # A stop ends the class and with it this bridge: the answer still goes out.
        with trio.CancelScope(shield=True):
            await self._publish(
                client, self.topics.results, _dumps(request.result.as_dict()), qos=1
            )
        self._unanswered.discard(request)
        self.results_published += 1

    async def _farewell(self, client: aiomqtt.Client) -> None:
        try:
            for request in [r for r in self._unanswered if r.result is not None]:
                await self._publish_result(client, request)
            await self._flush_events(client)
            await self._publish_state(client)
            await self._publish(client, self.topics.online, b"false", qos=1, retain=True)
        except (aiomqtt.MqttError, OSError, trio.TooSlowError):
            pass  # the broker is gone: the last will says we are offline


def _payload(payload: Any) -> bytes:
    if isinstance(payload, bytes):
        return payload
    if isinstance(payload, bytearray):
        return bytes(payload)
    return b"" if payload is None else str(payload).encode()


def _id(raw: bytes) -> str | None:
    """The request id of an e-stop message, if one can be read; anything else is ignored."""
    try:
        doc = json.loads(raw[:1000].decode("utf-8")) if raw.strip().startswith(b"{") else None
    except (ValueError, RecursionError):
        return None
    rid = doc.get("id") if isinstance(doc, dict) else None
    return rid if isinstance(rid, str) and len(rid) <= 100 else None
