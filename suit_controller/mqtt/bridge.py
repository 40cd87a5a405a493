"""The MQTT bridge: class state, telemetry and events out; trainer commands in.

aiomqtt is an asyncio library; it runs under `trio_asyncio` (the caller opens
the loop with `trio_asyncio.open_loop()`) and every call crosses with
`aio_as_trio`. Its errors become reconnects here: nothing else in the
program knows asyncio exists, and a broker that goes away never touches the
class. Nor does anything else that goes wrong in the bridge: it is reported
once, and the bridge reconnects (an interface never ends a class).

Two connections. The first publishes state, telemetry, events and results and
reads `commands`, `commands/from/<client id>` and `events/replay`. Commands
are carried out only from `commands/from/<client id>` (the shipped ACL lets a
connection write there only under its own client id, so each tablet has a rate
limit of its own); on the shared `commands` topic, where MQTT 3.1.1 does not
say who published, only an e-stop is obeyed and anything else is answered with
where to publish it. Every command is handed to the session's command desk the
moment it arrives (`desk.take`: parsing, rate limits per client id, e-stop
recognition), and the results are published as they come. The second
connection reads only the `estop` topic, so no burst of commands can queue in
front of an e-stop, neither in this program nor in the broker (which drops QoS
1 messages past its queue limit). A retained command is never executed: it is
answered with a refusal.

Events are the class's event log itself: event number `seq` is the log's
`seq`-th entry, published (QoS 1) once the broker has acknowledged the one
before, so delivery is at least once and nothing is lost while the broker
is away; each event carries the `class_id`, so (`class_id`, `seq`) names one
event for good. The records keep the same events in the same order, so a
consumer that missed some asks on `…/events/replay` and gets them again:
from this class's log, or for an earlier class from the store.

The controller speaks MQTT v5 only (a broker that refuses it is reported and not used:
with MQTT 3.1.1 a retained command published during a class would be carried out). A
command (or a
replay request) with a response topic and correlation data is answered on
that topic with the same correlation data, and still on `…/commands/result`
(or `…/events/replay/result`) for MQTT 3.1.1 clients.
"""

from __future__ import annotations

import json
import math
import socket
import ssl
import time
import uuid
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import replace
from types import MappingProxyType
from typing import Any

import aiomqtt
import trio
import trio_asyncio
from paho.mqtt.client import MQTTMessage
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

from suit_controller.backoff import Backoff
from suit_controller.commands import (
    CommandRefused,
    CommandResult,
    RateLimit,
    Request,
    decode,
    printable,
    says_estop,
)
from suit_controller.mqtt.broker_check import (
    describe_answer,
    protocol_refused,
    v5_refused_message,
)
from suit_controller.mqtt.payloads import (
    REPLAY_BATCH,
    REPLAY_QUEUE,
    ClassIds,
    ReplayRefused,
    event_payload,
    parse_replay_request,
    replay_doc,
    state_payload,
    telemetry_payloads,
)
from suit_controller.mqtt.topics import BrokerUrl, Topics
from suit_controller.records import SessionEvent
from suit_controller.session import ClassSession

MAX_RESPONSE_TOPIC = 256
#: Most bytes of events in one replay answer: well under the shipped `message_size_limit`
#: (128 KiB), which a broker enforces by dropping the message without a word.
REPLAY_BYTES = 64 * 1024
STATE_EVERY_S = 1.0
#: The QoS the broker delivers e-stops to the controller with. Tablets publish at QoS 1 (the
#: broker acknowledges each e-stop to its tablet), and the e-stop connection keeps a persistent
#: session (`_estop_session`): at QoS 1 the broker queues an e-stop published while that
#: connection is down (a broker restart, a network cut) and hands it over when it is back,
#: instead of dropping it after acknowledging it to the tablet (session-5 review, M3). paho
#: sends the PUBACK only after the callback that latches has returned (docs/mqtt.md, "The
#: e-stop's path").
ESTOP_QOS = 1
#: How long the broker keeps the e-stop connection's session (and the e-stops queued in it)
#: while that connection is down (MQTT v5 session expiry): far longer than any reconnect
#: (the backoff waits at most 5 s), short enough that a crashed controller's sessions go.
ESTOP_SESSION_EXPIRY_S = 600
TELEMETRY_HZ = 4.0
PUBLISH_TIMEOUT_S = 5.0
#: Client ids with a rate limit of their own at once. A new id past these takes the place of
#: the longest idle one whose limit has fully recovered (forgetting it loses nothing); if none
#: has, it gets a small limit of its own (OVERFLOW_LIMIT), among at most MAX_OVERFLOW_SOURCES:
#: one login busy under 32 invented ids cannot make a quiet newcomer share its flood's limit.
#: Only past both do new ids share one limit (OTHER_SOURCES). docs/mqtt.md, "Rate limits and
#: invented client ids", says what that leaves and what the real fix is.
MAX_COMMAND_SOURCES = 32
MAX_OVERFLOW_SOURCES = 256
OVERFLOW_LIMIT = RateLimit(per_s=1.0, burst=5)
OTHER_SOURCES = "mqtt:commands/from/(others)"
#: What any message on the e-stop topic is (the topic is the command).
ESTOP: Mapping[str, Any] = MappingProxyType({"do": "estop"})
#: The source of anything published on the shared `…/commands` topic (MQTT 3.1.1 does not say
#: who published it, so it cannot be rate-limited per tablet): only e-stops are obeyed there.
SHARED_SOURCE = "mqtt:commands"
RETAINED_REFUSAL = (
    "a retained command is never executed (it would run again at every reconnect and in the "
    "next class); publish commands with retain=false"
)
#: What an empty retained message is: a tablet clearing a retained one, the standard way (the
#: broker forwards the clear to subscribers). Not a command: ignored quietly, counted
#: (`MqttBridge.retained_clears`), neither logged nor answered.
RETAINED_CLEAR = "an empty retained message clears a retained one: not a command"
#: Refusals past a source's rate limit are not answered one by one (a flood must not build a
#: backlog of answers in front of everyone else's): the first is answered, then at most one
#: summary ("N commands refused: …") per source every this many seconds.
REFUSAL_SUMMARY_EVERY_S = 1.0
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
    #: The same for paho's own message, as paho parsed it (no copy into aiomqtt's): the
    #: e-stop's connection, where every microsecond before the latch counts.
    take_paho: Callable[[MQTTMessage], None] | None = None

    def _on_message(self, client: Any, userdata: Any, message: Any) -> None:
        if self.take_paho is not None:
            self.take_paho(message)
        elif self.take_now is None:
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
        ids: ClassIds | None = None,
        store: str | None = None,
    ) -> None:
        """`ids`: the class's and clients' ids (default: one-off ids); `store`: the
        studio database's location, from which earlier classes are replayed."""
        self.session = session
        self.ids = ids or ClassIds.one_off(len(session.clients), str(uuid.UUID(session.session_id)))
        self.store = store
        self._names = [c.name for c in session.clients]
        #: `commands/from/<id>` sources with a rate limit of their own, and when each last sent
        self._sources: dict[str, float] = {}
        #: sources past MAX_COMMAND_SOURCES, each held to OVERFLOW_LIMIT, by when each last sent
        self._overflow: dict[str, float] = {}
        for i, refs in enumerate(zip(self.ids.client_ids, self.ids.session_ids, strict=True)):
            session.client_refs.update({ref: i for ref in refs if ref})  # commands may use ids
        self.broker = broker
        self.topics = topics
        self.client_id = client_id or f"suit-controller-{socket.gethostname()}-{id(self):x}"
        self.telemetry_hz = telemetry_hz
        #: The MQTT version the controller speaks: v5 only, never 3.1.1 (docs/mqtt.md, F1).
        self.protocol = aiomqtt.ProtocolVersion.V5
        #: Why the broker is not used, when it refused MQTT v5 (for the operator).
        self.v5_refused: str | None = None
        self._v5_refusal_reported = False
        self.published_events = 0
        self.replays_answered = 0
        self.commands_handled = 0
        #: empty retained messages (a tablet clearing a retained one): ignored, not answered
        self.retained_clears = 0
        self.results_published = 0
        self.connects = 0
        self.connected = False
        self.estop_connected = False
        #: e-stop connections made (the first starts its session clean)
        self.estop_connects = 0
        self.last_error: str | None = None
        #: Errors that were not the broker's (a bug here); each kind reported once.
        self.errors: dict[str, int] = {}
        self._wake = trio.Event()
        self._state_due = True
        #: requests whose result is not known yet (each is queued for publishing when it is)
        self._pending_in, self._pending = trio.open_memory_channel[Request](math.inf)
        #: results to publish: e-stops' first, then the rest (and refusal summaries) in order
        self._estop_out: deque[Request] = deque()
        self._out: deque[Request | bytes] = deque()
        self._out_wake = trio.Event()
        self._estop_wake = trio.Event()
        #: per source, when a refusal past its rate limit was last answered (or summarised),
        #: and how many since then were not answered one by one
        self._refusal_answered_at: dict[str, float] = {}
        self._refusals_unanswered: dict[str, int] = {}
        self.refusals_summarised = 0
        self._unanswered: set[Request] = set()
        #: v5 requests' response topic and correlation data, until answered
        self._reply_to: dict[Request, tuple[str, bytes | None]] = {}
        self._replays_in, self._replays = trio.open_memory_channel[
            tuple[bytes | None, tuple[str, bytes | None] | None, str | None]
        ](math.inf)
        session.events.subscribe(self._on_event)

    @property
    def last_seq(self) -> int:
        """The seq of the class's last event so far."""
        return len(self.session.events.events)

    @property
    def pending(self) -> int:
        """Events not yet acknowledged by the broker."""
        return self.last_seq - self.published_events

    def event_doc(self, seq: int) -> dict[str, Any]:
        """Event `seq` (from 1) of this class, as published."""
        event = self.session.events.events[seq - 1]
        return event_payload(event, seq, self.ids, self._names)

    def _on_event(self, event: SessionEvent) -> None:
        if event.kind in STATE_CHANGING:
            self._state_due = True
        self._wake.set()

    def _client(self, *, estop: bool = False, clean: bool = False) -> aiomqtt.Client:
        tls = None
        if self.broker.tls:
            tls = ssl.create_default_context(cafile=self.broker.ca_file)
            if self.broker.cert_file:
                tls.load_cert_chain(self.broker.cert_file, self.broker.key_file)
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
            protocol=self.protocol,
            **(self._estop_session(clean) if estop else {}),
        )

    def _estop_session(self, clean: bool = False) -> dict[str, Any]:
        """The e-stop connection's session: kept by the broker while the connection is down.

        Same client id on every connection (`client_id` + "-estop"), a clean start never
        (the broker keeps the session ESTOP_SESSION_EXPIRY_S after a disconnect), so the
        broker queues an e-stop published while the connection is down and hands it over
        when it is back, over the broker's own restart too (the shipped Mosquitto config
        sets `persistence true`; sessions are saved when it stops). `clean` asks for a
        clean start: `_estop_link` connects once so, and at once disconnects, before its
        first real connection, so nothing queued for an earlier class under the same id is
        obeyed. The real connection must not itself start clean: Mosquitto 2.0 does not
        restore over its restart a v5 session begun with a clean start (the review's M3
        stayed open that way; `tests/test_mqtt_estop_session.py` pins it).
        """
        expiry = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        expiry.SessionExpiryInterval = ESTOP_SESSION_EXPIRY_S
        return {"clean_start": clean, "properties": expiry}

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Stay connected (both connections) until cancelled; never raises into the class."""
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._queue_when_done)  # whichever connection is up, or none
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
                if protocol_refused(e):  # an MQTT 3.1.1 broker: no fallback (F1)
                    self._refuse_v311(e)
            except Exception as e:  # not the broker's: report once, reconnect, the class goes on
                self._report(name, e)
            await trio.sleep(backoff.next())

    def _refuse_v311(self, error: BaseException) -> None:
        """The broker refused MQTT v5: say so once, and never fall back to MQTT 3.1.1.

        With 3.1.1 a retained command published during a class would be carried out
        (nothing tells it from a live one). So the bridge keeps asking for v5 (the broker
        may be upgraded) while the class goes on without MQTT commands; the trainer's
        console and Ctrl-C still stop every suit.
        """
        rc = getattr(error, "rc", None)
        answer = describe_answer(rc) if rc is not None else printable(str(error))
        self.v5_refused = v5_refused_message(self.broker, answer)
        if not self._v5_refusal_reported:
            self._v5_refusal_reported = True
            self.session.emit(
                "interface_error",
                f"{self.v5_refused}. MQTT commands and e-stops are off; the class goes on",
                interface="mqtt",
            )

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
        """The e-stop's own connection: reads one topic, latches every message at once.

        Nothing crosses from asyncio to Trio on the way: trio-asyncio waits for
        the socket in a Trio task and runs paho's read there, paho calls
        `_take_estop` as it parses the message, and the desk latches the e-stop
        inside that call (no task, no queue, no JSON before the latch).
        """
        if self.estop_connects == 0:  # an earlier class's session, and what it queued: gone
            async with trio_asyncio.aio_as_trio(self._client(estop=True, clean=True)):
                pass
        client = self._client(estop=True)
        # before connecting: an e-stop queued in the session comes right after the CONNACK
        client.take_paho = self._take_estop  # type: ignore[attr-defined]
        try:
            async with trio_asyncio.aio_as_trio(client):
                self.estop_connects += 1
                await trio_asyncio.aio_as_trio(client.subscribe)(self.topics.estop, qos=ESTOP_QOS)
                self.estop_connected = True
                backoff.reset()
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(self._estop_result_publisher, client)
                    async for _ in trio_asyncio.aio_as_trio(client.messages):
                        pass  # every message was taken as it was parsed; this notices a disconnect
                    nursery.cancel_scope.cancel()
        finally:
            self.estop_connected = False

    async def _estop_result_publisher(self, client: aiomqtt.Client) -> None:
        """Publish e-stops' results on the e-stop's own connection.

        Its stream from the broker carries nothing but e-stops, so the
        acknowledgement of each result comes back at once; on the command
        connection it would wait behind every message of a flood the broker is
        still delivering there (one at a time, results wait for each other).
        A publish that fails never ends this connection (it exists to hear
        e-stops): the result is put back for the command connection, and this
        one stops publishing; if it is broken, its reader notices.
        """
        while True:
            self._estop_wake = trio.Event()
            try:
                await self._publish_estop_results(client)
            except (aiomqtt.MqttError, OSError, trio.TooSlowError):
                self._out_wake.set()  # the command connection sends what is left
                return
            await self._estop_wake.wait()

    async def _publish_estop_results(self, client: aiomqtt.Client) -> None:
        """Publish every queued e-stop result (each taken by one connection only)."""
        while self._estop_out:
            request = self._estop_out.popleft()
            published = False
            try:
                await self._publish_result(client, request)
                published = True
            finally:
                if not published:  # the other connection (or the next one) will send it
                    self._estop_out.appendleft(request)

    async def _publish(
        self, client: aiomqtt.Client, topic: str, payload: bytes, qos: int = 0, retain: bool = False
    ) -> None:
        with trio.fail_after(PUBLISH_TIMEOUT_S):
            await trio_asyncio.aio_as_trio(client.publish)(topic, payload, qos=qos, retain=retain)

    async def _connected(self, client: aiomqtt.Client) -> None:
        client.take_now = self._take_command  # type: ignore[attr-defined]
        await self._publish(client, self.topics.online, b"true", qos=1, retain=True)
        await self._publish_state(client)  # a reconnecting controller says where it is at once
        for topic in (
            self.topics.commands,
            self.topics.commands_from_any,
            self.topics.events_replay,
        ):
            await self._subscribe_keeping_retain(client, topic)
        self.connected = True  # publishing, and reading commands
        broken = False
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._publisher, client)
                nursery.start_soon(self._result_publisher, client)
                nursery.start_soon(self._replayer, client)
                nursery.start_soon(self._receiver, client)
        except* (aiomqtt.MqttError, OSError, trio.TooSlowError) as group:
            broken = True
            raise aiomqtt.MqttError(str(group.exceptions[0])) from None
        finally:
            if not broken:  # leaving on purpose (the class ended): say goodbye
                with trio.CancelScope(shield=True), trio.move_on_after(2.0):
                    await self._farewell(client)

    async def _subscribe_keeping_retain(self, client: aiomqtt.Client, topic: str) -> None:
        """Subscribe at QoS 1 with MQTT v5's "retain as published".

        A broker forwards a retained message published while the controller is
        subscribed with retain=0 unless the subscription asks to keep the flag
        (MQTT v5 only): then a retained command published live is recognised,
        and refused, like one handed over at subscribe time. MQTT 3.1.1 cannot
        ask, which is why the controller never speaks it.
        """
        options = SubscribeOptions(qos=1, retainAsPublished=True)
        await trio_asyncio.aio_as_trio(client.subscribe)(topic, options=options)

    async def _flush_events(self, client: aiomqtt.Client) -> None:
        while self.published_events < self.last_seq:
            doc = self.event_doc(self.published_events + 1)
            await self._publish(client, self.topics.events, _dumps(doc), qos=1)
            self.published_events += 1  # only once the broker has it

    async def _publish_state(self, client: aiomqtt.Client) -> None:
        self._state_due = False
        doc = state_payload(self.session.snapshot(), self.ids, self.last_seq)
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
                for key, doc in telemetry_payloads(snap, self.session.class_time(), self.ids):
                    await self._publish(client, self.topics.telemetry(key), _dumps(doc), qos=0)
            if self.pending or self._state_due:
                continue
            with trio.move_on_after(max(0.0, min(next_state, next_telemetry) - time.monotonic())):
                await self._wake.wait()

    def _take_estop(self, message: MQTTMessage) -> None:
        """Any message on the e-stop topic is an e-stop (its id is echoed if it can be read).

        The topic is the command: the desk latches it before the payload is
        read at all; its id is read afterwards, for the answer only.
        """
        try:
            source = "mqtt:estop"
            if message.retain:
                request = self.session.desk.refuse(
                    _payload(message.payload), source, RETAINED_REFUSAL, limited=True
                )
            else:
                request = self.session.desk.take(ESTOP, source)  # latched when this returns
                try:
                    _echo_id(request, _id(_payload(message.payload)))
                finally:  # answered whatever its payload
                    self._answer(request, self._response_route(message))
                return
            self._answer(request, self._response_route(message))
        except Exception as e:  # inside paho's callback: report, never raise into the loop
            self._report("e-stop", e)

    def _take_command(self, message: aiomqtt.Message) -> None:
        """Every command message goes to the desk the moment paho has parsed it."""
        try:
            topic = str(message.topic)
            route = self._response_route(message)
            if topic == self.topics.events_replay:
                self._take_replay(
                    _payload(message.payload),
                    route,
                    bool(message.retain),
                    self._refused_response(message),
                )
                return
            prefix = self.topics.commands_from("")
            raw = _payload(message.payload)
            if topic.startswith(prefix):
                # rate limits are per client id: the broker's ACL lets a tablet write only its own
                source = self.source_for(topic[len(prefix) :])
                self.handle(raw, source, retained=bool(message.retain), route=route)
            else:
                self.handle(raw, SHARED_SOURCE, retained=bool(message.retain), route=route)
        except Exception as e:  # inside paho's callback: report, never raise into the loop
            self._report("commands", e)

    async def _receiver(self, client: aiomqtt.Client) -> None:
        async for _ in trio_asyncio.aio_as_trio(client.messages):
            pass  # every message was taken as it was parsed; this notices a disconnect

    def handle(
        self,
        raw: bytes,
        source: str,
        *,
        retained: bool = False,
        route: tuple[str, bytes | None] | None = None,
    ) -> Request:
        """Take one command message now; its result is published when it is known.

        `source`: `mqtt:<client id>` (from `source_for`), or SHARED_SOURCE for the shared
        `…/commands` topic, where only an e-stop is taken. `route`: an MQTT v5 response
        topic and correlation data to answer on too.
        """
        self.commands_handled += 1
        desk = self.session.desk
        if retained and not raw:  # the standard way to clear a retained message: no command
            self.retained_clears += 1
            cleared = Request(source, None, None)
            cleared.finish(CommandResult(False, "", RETAINED_CLEAR))  # (for the caller alone)
            return cleared
        # refusals count against the source's rate too, so a flood of them is summarised
        if retained:
            request = desk.refuse(raw, source, RETAINED_REFUSAL, limited=True)
        elif source == SHARED_SOURCE and not _is_estop(raw):
            request = desk.refuse(raw, source, self.shared_topic_refusal, limited=True)
        else:  # an e-stop is obeyed from anywhere, the shared topic included (safety over form)
            request = desk.take(raw, source)
        self._answer(request, route)
        return request

    @property
    def shared_topic_refusal(self) -> str:
        """Why a command on the shared `…/commands` topic is not carried out; where to send it."""
        return (
            f"commands on {self.topics.commands} are not carried out (the controller cannot tell "
            f"which tablet sent them, so it cannot hold each tablet to its own rate limit): "
            f"publish them on {self.topics.commands_from('<your client id>')}. An e-stop is "
            f"obeyed from any topic, this one included"
        )

    @property
    def sources(self) -> tuple[str, ...]:
        """The `mqtt:<client id>` sources that have a rate limit of their own now."""
        return tuple(self._sources)

    @property
    def overflow_sources(self) -> tuple[str, ...]:
        """The sources past MAX_COMMAND_SOURCES, each with a small limit (OVERFLOW_LIMIT)."""
        return tuple(self._overflow)

    def source_for(self, client_id: str) -> str:
        """The rate-limited source of commands from `client_id` (`mqtt:<client id>`).

        At most MAX_COMMAND_SOURCES at once: a new id takes the place of the longest
        idle source whose limit has fully recovered. If none has, the id gets a limit of
        its own, OVERFLOW_LIMIT, among at most MAX_OVERFLOW_SOURCES (a full place as soon
        as one is free, keeping what it has spent); only past those does it share
        OTHER_SOURCES with the rest. No early tablet can squat a place, and ids a flood
        invents are refused on their own limits, not on a newcomer's.
        """
        source = "mqtt:" + client_id
        now = trio.current_time()
        desk = self.session.desk
        if source in self._sources:
            self._sources[source] = now
            return source
        if source in self._overflow:
            if not self._free_place(self._sources, MAX_COMMAND_SOURCES):
                self._overflow[source] = now
                return source
            del self._overflow[source]  # a full place; what it has spent stays spent
            desk.limit_source(source, desk.limit)
            self._sources[source] = now
            return source
        if self._free_place(self._sources, MAX_COMMAND_SOURCES):
            self._sources[source] = now
            return source
        if self._free_place(self._overflow, MAX_OVERFLOW_SOURCES):
            desk.limit_source(source, OVERFLOW_LIMIT)
            self._overflow[source] = now
            return source
        return OTHER_SOURCES

    def _free_place(self, places: dict[str, float], most: int) -> bool:
        """Make room for one more in `places` by forgetting the longest idle rested source."""
        if len(places) < most:
            return True
        desk = self.session.desk
        rested = [s for s in places if desk.rested(s)]
        if not rested:
            return False
        idlest = min(rested, key=places.__getitem__)
        del places[idlest]
        desk.forget(idlest)
        return True

    def _answer(self, request: Request, route: tuple[str, bytes | None] | None = None) -> None:
        """Queue `request`'s result for publishing (now, or once it is known).

        A refusal past its source's rate limit is answered only if it is the
        source's first for REFUSAL_SUMMARY_EVERY_S; the others are counted and
        answered together by one summary (`_queue_due_summaries`).
        """
        self._unanswered.add(request)
        if route is not None:
            self._reply_to[request] = route
        if request.result is None:
            self._pending_in.send_nowait(request)
        else:
            self._queue_answer(request)

    def _queue_answer(self, request: Request) -> None:
        """Queue a request whose result is known (unless it is summarised)."""
        if self._summarised(request):
            self._unanswered.discard(request)
            self._reply_to.pop(request, None)
            return
        (self._estop_out if request.is_estop else self._out).append(request)
        self._out_wake.set()
        self._estop_wake.set()

    def _summarised(self, request: Request) -> bool:
        """True if `request` is a refusal past its source's rate limit, to be summarised."""
        result = request.result
        if not request.over_limit or result is None or result.ok:
            return False
        source = request.source
        now = trio.current_time()
        if source not in self._refusals_unanswered:
            last = self._refusal_answered_at.get(source)
            if last is None or now - last >= REFUSAL_SUMMARY_EVERY_S:
                self._refusal_answered_at[source] = now  # the first past the limit: answered
                return False
        self._refusals_unanswered[source] = self._refusals_unanswered.get(source, 0) + 1
        return True

    def _summary(self, source: str, n: int) -> bytes:
        limit = getattr(self.session.desk, "limit", RateLimit())  # (a port's desk has none)
        message = (
            f"{n} commands refused: more than {limit.burst} commands at once or "
            f"{limit.per_s:g} a second from {printable(source, 200)}; none of them was carried "
            "out (past the limit, refusals are answered together, not one by one)"
        )
        if source == SHARED_SOURCE:
            message += f". {self.shared_topic_refusal}"
        self.refusals_summarised += n
        return _dumps(CommandResult(False, "", message).as_dict())

    def _queue_due_summaries(self, *, all_now: bool = False) -> None:
        """Queue a summary for each source whose refusals are due (every one with `all_now`)."""
        now = trio.current_time()
        for source, n in list(self._refusals_unanswered.items()):
            if all_now or now - self._refusal_answered_at[source] >= REFUSAL_SUMMARY_EVERY_S:
                del self._refusals_unanswered[source]
                self._refusal_answered_at[source] = now
                self._out.append(self._summary(source, n))
        for source, at in list(self._refusal_answered_at.items()):  # forget quiet sources
            if now - at >= REFUSAL_SUMMARY_EVERY_S and source not in self._refusals_unanswered:
                del self._refusal_answered_at[source]

    def _next_summary_at(self) -> float:
        due = [self._refusal_answered_at[s] for s in self._refusals_unanswered]
        return min(due) + REFUSAL_SUMMARY_EVERY_S if due else math.inf

    def _response_route(
        self, message: aiomqtt.Message | MQTTMessage
    ) -> tuple[str, bytes | None] | None:
        """An MQTT v5 message's response topic and correlation data, if it may be used."""
        props = message.properties
        topic = getattr(props, "ResponseTopic", None) if props is not None else None
        if not isinstance(topic, str) or self._response_refusal(topic) is not None:
            return None
        corr = getattr(props, "CorrelationData", None)
        return topic, bytes(corr) if isinstance(corr, bytes | bytearray) else None

    def _response_refusal(self, topic: str) -> str | None:
        """Why a v5 response topic may not be answered on (None: it may).

        Only topics under `<room prefix>/replies/` are answered on. Any other
        topic of the room is one the controller reads (an answer must never
        become a command) or publishes (state, events, results, telemetry: a
        read-only account must not write there through the controller), and a
        topic outside the room is another room's or nobody's.
        """
        replies = f"{self.topics.replies_prefix}/"
        if not topic or len(topic) > MAX_RESPONSE_TOPIC:
            return f"a response topic is 1 to {MAX_RESPONSE_TOPIC} characters"
        if "+" in topic or "#" in topic or "\x00" in topic:
            return "a response topic has no wildcards"
        if not topic.startswith(replies) or len(topic) == len(replies):
            return f"a response topic must be under {replies}<your client id>"
        if any(aiomqtt.Topic(topic).matches(f) for f in self.topics.inputs):
            return "a response topic is never one the controller reads"
        return None

    def _refused_response(self, message: aiomqtt.Message) -> str | None:
        """The reason a message's response topic is refused, if it set one that is."""
        props = message.properties
        topic = getattr(props, "ResponseTopic", None) if props is not None else None
        if topic is None:
            return None
        if not isinstance(topic, str):
            return "a response topic is text"
        return self._response_refusal(topic)

    async def _reply(
        self, client: aiomqtt.Client, route: tuple[str, bytes | None], payload: bytes
    ) -> None:
        """Publish an answer on a v5 response topic, with the request's correlation data."""
        topic, corr = route
        props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
        if corr is not None:
            props.CorrelationData = corr
        with trio.fail_after(PUBLISH_TIMEOUT_S):
            await trio_asyncio.aio_as_trio(client.publish)(
                topic, payload, qos=1, retain=False, properties=props
            )

    async def _result_publisher(self, client: aiomqtt.Client) -> None:
        """Publish each result once it is known, one at a time: e-stops' ahead of the rest.

        One publish in flight at a time keeps paho's own queue short, so an
        e-stop's result, which goes ahead of every result still waiting here,
        is never behind a flood's answers. (The e-stop's connection publishes
        e-stops' results too, and usually first: `_estop_result_publisher`.)
        """
        while True:
            self._out_wake = trio.Event()
            self._queue_due_summaries()
            if self._estop_out:
                await self._publish_estop_results(client)
            elif self._out:
                item = self._out[0]
                if isinstance(item, bytes):
                    with trio.CancelScope(shield=True):
                        await self._publish(client, self.topics.results, item, qos=1)
                    self.results_published += 1
                else:
                    await self._publish_result(client, item)
                self._out.popleft()
            else:
                with trio.move_on_at(self._next_summary_at()):
                    await self._out_wake.wait()

    async def _queue_when_done(self) -> None:
        async with trio.open_nursery() as nursery:
            async for request in self._pending:
                nursery.start_soon(self._queue_answer_when_done, request)

    async def _queue_answer_when_done(self, request: Request) -> None:
        await request.wait()
        self._queue_answer(request)

    async def _publish_result(self, client: aiomqtt.Client, request: Request) -> None:
        assert request.result is not None
        # A stop ends the class and with it this bridge: the answer still goes out.
        payload = _dumps(request.result.as_dict())
        with trio.CancelScope(shield=True):
            await self._publish(client, self.topics.results, payload, qos=1)
            route = self._reply_to.get(request)
            if route is not None:
                await self._reply(client, route, payload)
        self._reply_to.pop(request, None)
        self._unanswered.discard(request)
        self.results_published += 1

    # -- replay -----------------------------------------------------------------------
    def _take_replay(
        self,
        raw: bytes,
        route: tuple[str, bytes | None] | None,
        retained: bool,
        refusal: str | None = None,
    ) -> None:
        """Queue a replay request (answered in turn by `_replayer`); refuse it when busy.

        `refusal`: why its response topic may not be used; the request is then
        refused, with that reason, on the room's replay result topic.
        """
        waiting = self._replays_in.statistics().current_buffer_used
        if waiting >= 2 * REPLAY_QUEUE:
            return  # a flood: past the busy answers too, requests are dropped
        if retained:
            raw = b'{"retained": true}'
        self._replays_in.send_nowait((None if waiting >= REPLAY_QUEUE else raw, route, refusal))

    async def _replayer(self, client: aiomqtt.Client) -> None:
        async for raw, route, refusal in self._replays:
            await self._answer_replay(client, raw, route, refusal)

    async def _answer_replay(
        self,
        client: aiomqtt.Client,
        raw: bytes | None,
        route: tuple[str, bytes | None] | None,
        refusal: str | None = None,
    ) -> None:
        try:
            if raw is None:
                raise ReplayRefused(
                    f"more than {REPLAY_QUEUE} replay requests are waiting; ask again"
                )
            request_id, class_id, after = parse_replay_request(raw)
            if refusal is not None:
                raise ReplayRefused(f"refused: {refusal}", request_id)
        except ReplayRefused as e:
            await self._publish_replay(
                client, route, replay_doc(e.request_id, None, 0, [], False, str(e), ok=False)
            )
            return
        class_id = class_id or self.ids.class_id
        if class_id == self.ids.class_id:
            last = self.last_seq
            docs = [self.event_doc(seq) for seq in range(after + 1, last + 1)]
        elif self.store is None:
            await self._publish_replay(
                client,
                route,
                replay_doc(
                    request_id,
                    class_id,
                    after,
                    [],
                    False,
                    "this controller keeps no records: only the class running now can be replayed",
                    ok=False,
                ),
            )
            return
        else:
            try:
                docs = await trio.to_thread.run_sync(
                    _stored_events, self.store, class_id, after, self.topics.room
                )
            except LookupError as e:
                await self._publish_replay(
                    client,
                    route,
                    replay_doc(request_id, class_id, after, [], False, str(e), ok=False),
                )
                return
        start = 0
        while True:
            batch: list[dict[str, Any]] = []
            size = 0
            for doc in docs[start : start + REPLAY_BATCH]:  # and under the broker's size limit
                size += len(_dumps(doc))
                if batch and size > REPLAY_BYTES:
                    break
                batch.append(doc)
            more = start + len(batch) < len(docs)
            message = (
                f"events {after + start + 1}–{after + start + len(batch)}"
                if batch
                else "no events after " + str(after)
            )
            await self._publish_replay(
                client, route, replay_doc(request_id, class_id, after + start, batch, more, message)
            )
            start += len(batch)
            if not more:
                break
        self.replays_answered += 1

    async def _publish_replay(
        self, client: aiomqtt.Client, route: tuple[str, bytes | None] | None, doc: dict[str, Any]
    ) -> None:
        payload = _dumps(doc)
        if route is not None:
            await self._reply(client, route, payload)
        else:
            await self._publish(client, self.topics.events_replay_result, payload, qos=1)

    async def _farewell(self, client: aiomqtt.Client) -> None:
        try:
            answered = [r for r in self._unanswered if r.result is not None]
            for request in sorted(answered, key=lambda r: not r.is_estop):  # e-stops first
                await self._publish_result(client, request)
            self._queue_due_summaries(all_now=True)
            for item in [i for i in self._out if isinstance(i, bytes)]:
                await self._publish(client, self.topics.results, item, qos=1)
                self.results_published += 1
            await self._flush_events(client)
            await self._publish_state(client)
            await self._publish(client, self.topics.online, b"false", qos=1, retain=True)
        except (aiomqtt.MqttError, OSError, trio.TooSlowError):
            pass  # the broker is gone: the last will says we are offline


def _is_estop(raw: bytes) -> bool:
    """True if `raw` is an e-stop: in its literal spelling, or once fully parsed.

    The text pattern (`says_estop`) catches `"do": "estop"` in anything, however
    malformed; the parse catches an e-stop spelled otherwise (`"\\u0065stop"`).
    A payload over the desk's size bound is not parsed, so only the literal
    spelling counts there.
    """
    if says_estop(raw):
        return True
    try:
        return decode(raw).get("do") == "estop"
    except (CommandRefused, TypeError, ValueError, RecursionError):
        return False


def recorded_ids(location: str, class_id: str) -> ClassIds:
    """The ids of a class the store has opened (its clients' and sessions' ids)."""
    from suit_controller.studio.store import Store

    store = Store(location, recover=False)
    try:
        return ClassIds.from_records(class_id, store.sessions_of_class(class_id))
    finally:
        store.close()


def _stored_events(
    location: str, class_id: str, after: int, room: str | None = None
) -> list[dict[str, Any]]:
    """An earlier class's events after `after`, from the store, as they were published.

    The records keep a class's events in the order of its event log, so the
    n-th stored event is event `seq` n. LookupError when the class is unknown,
    or was held in another room than `room` (a store shared by several rooms
    must not let one room's account read another's classes).
    """
    from suit_controller.studio.store import Store, StoreError

    store = Store(location, recover=False)
    try:
        try:
            held_in = store.class_record(class_id).get("room")
            if room is not None and held_in is not None and held_in != room:
                raise LookupError(f"class {class_id} was not held in this room")
            events = store.class_events(class_id)
            sessions = store.sessions_of_class(class_id)
        except StoreError as error:
            raise LookupError(str(error)) from None
    finally:
        store.close()
    client_of = {s["session_id"]: s["client_id"] for s in sessions}
    out = []
    for seq, e in enumerate(events, start=1):
        if seq <= after:
            continue
        doc: dict[str, Any] = {
            "class_id": class_id,
            "seq": seq,
            "t": round(float(e["t"]), 4),
            "kind": e["kind"],
            "message": e["message"],
        }
        if e.get("session_id"):
            doc["client_id"] = client_of.get(e["session_id"])
            doc["session_id"] = e["session_id"]
        if e["data"]:
            doc["data"] = e["data"]
        out.append(doc)
    return out


def _payload(payload: Any) -> bytes:
    if isinstance(payload, bytes):
        return payload
    if isinstance(payload, bytearray):
        return bytes(payload)
    return b"" if payload is None else str(payload).encode()


def _echo_id(request: Request, request_id: str | None) -> None:
    """Give an e-stop taken without its payload the id the payload carried, for its answer."""
    if request_id is None:
        return
    request.request_id = request_id
    if request.result is not None:  # answered already (the class had ended)
        request.result = replace(request.result, request_id=request_id)


def _id(raw: bytes) -> str | None:
    """The request id of an e-stop message, if one can be read; anything else is ignored."""
    try:
        doc = json.loads(raw[:1000].decode("utf-8")) if raw.strip().startswith(b"{") else None
    except (ValueError, RecursionError):
        return None
    rid = doc.get("id") if isinstance(doc, dict) else None
    return rid if isinstance(rid, str) and len(rid) <= 100 else None
