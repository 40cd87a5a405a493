"""A model of the air for the simulated BLE world: connection events, bytes per event, capacity.

bumble's `LocalLink` hands every packet to its peer at once: no connection
interval, no air time, any number of connections per controller. A real class
is limited by exactly those, so `RadioLink` adds them (theory of operation):

* each LE connection has a connection interval (what the central asked for,
  from the `CONNECT_IND` or a later `LL_CONNECTION_UPDATE_IND`; 7.5 ms at best);
  its connection events fall at `anchor + k × interval`;
* a packet (ATT write, notification, SMP, LL control) waits in its
  connection's queue for the next connection event, one queue per direction;
  it goes out as LL data PDUs of at most `Radio.ll_payload` bytes, at most
  `Radio.pdus_per_event` of them per direction per event; what does not fit
  waits for the next event (order is kept: one FIFO per direction);
* a PDU exchange takes air time (`Radio.pair_us`: the PDU, the peer's empty
  answer and two inter-frame spaces at 1 Mb/s); a packet arrives at the end of
  its PDUs within the event, and each adapter staggers its connections'
  anchors by one minimal exchange so their events do not overlap;
* one adapter (an `AdapterController`) holds at most `Radio.capacity(interval)`
  connections: its `max_connections`, and no more than one minimal exchange
  per connection fits in the interval. Past that, `LE Create Connection` is
  refused with "Connection Limit Exceeded" (HCI 0x09), as a real controller
  answers.

Loss, at a chosen moment (`Loss`, in `RadioLink.losses`): a rule loses the
packets (whole L2CAP PDUs: an ATT write, a notification) due on air within its
window, in both directions: every packet (`blackout`, the air is gone) or
only those whose ATT value it `matches` (e.g. the one SET_PROGRAM). The window
opens at a time, or at the first packet the rule matches ("exactly at the
program change"). A lost packet still spends its air time; it never arrives.
That is harsher than a real link layer, which re-sends an unacknowledged PDU
at the next connection events (a loss shows as delay, or, past the
supervision timeout, as a dropped link): the host never learning of a lost
write is the case the controller must survive. LL control PDUs and advertising
are never lost.

Not modelled: random loss and retransmission (the simulated suit has its own
`loss`), the controller's ACL buffer flow control (nothing builds up at 40 Hz:
one event carries `pdus_per_event` PDUs and a frame is one PDU), advertising
air time, 2M/coded PHYs.
"""

from __future__ import annotations

import asyncio
import collections
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bumble import hci, ll
from bumble.controller import Controller
from bumble.core import PhysicalTransport
from bumble.link import LocalLink

from sim.quiet_bumble import QuietController

#: The shortest connection interval Bluetooth LE allows, ms (6 × 1.25 ms).
MIN_INTERVAL_MS = 7.5
#: LE 1M PHY: µs per byte on air; the inter-frame space, µs.
US_PER_BYTE = 8.0
T_IFS_US = 150.0
#: Bytes around an LL data PDU's payload on air: preamble 1, access address 4,
#: header 2, MIC 4 (encrypted link), CRC 3.
PDU_OVERHEAD_BYTES = 14
#: An empty PDU (the peer's answer when it has nothing to send), bytes on air (no MIC).
EMPTY_PDU_BYTES = 10
#: L2CAP basic header in front of every ATT PDU, bytes; ATT write command / notification header.
L2CAP_HEADER_BYTES = 4
ATT_HEADER_BYTES = 3
#: The L2CAP channel of ATT, and the ATT opcodes that carry a value after a 2-byte handle:
#: write request, write command, notification, indication.
ATT_CID = 0x0004
ATT_VALUE_OPCODES = frozenset({0x12, 0x52, 0x1B, 0x1D})


def att_value(l2cap_pdu: bytes) -> bytes | None:
    """The attribute value an L2CAP PDU carries (a write or a notification), or None."""
    if len(l2cap_pdu) < L2CAP_HEADER_BYTES + ATT_HEADER_BYTES:
        return None
    if int.from_bytes(l2cap_pdu[2:4], "little") != ATT_CID:
        return None
    if l2cap_pdu[4] not in ATT_VALUE_OPCODES:
        return None
    return bytes(l2cap_pdu[L2CAP_HEADER_BYTES + ATT_HEADER_BYTES :])


@dataclass(frozen=True)
class Radio:
    """What one simulated adapter and its air allow."""

    #: The connection interval a central asks for, ms (7.5 at best; real stacks
    #: default to 30–50 ms, see docs/radio.md).
    interval_ms: float = MIN_INTERVAL_MS
    #: LL data PDU payload, bytes: 27 without LE Data Length Extension, up to 251 with it.
    ll_payload: int = 27
    #: Data PDUs per direction per connection event (controller-dependent: 1 to ~6 when
    #: the controller shares its time between several connections).
    pdus_per_event: int = 4
    #: Connections one adapter holds (controller firmware limit; 5–10 for common dongles).
    max_connections: int = 10

    def __post_init__(self) -> None:
        if self.interval_ms < MIN_INTERVAL_MS:
            raise ValueError(f"connection interval {self.interval_ms} ms < {MIN_INTERVAL_MS} ms")
        if not 27 <= self.ll_payload <= 251:
            raise ValueError("LL payload is 27..251 bytes")
        if self.pdus_per_event < 1 or self.max_connections < 1:
            raise ValueError("pdus_per_event and max_connections are at least 1")

    @property
    def pair_us(self) -> float:
        """Air time of one full data PDU and the peer's empty answer, with both spaces, µs."""
        pdu = (self.ll_payload + PDU_OVERHEAD_BYTES) * US_PER_BYTE
        return pdu + T_IFS_US + EMPTY_PDU_BYTES * US_PER_BYTE + T_IFS_US

    def bytes_per_event(self) -> int:
        """LL payload bytes one connection event carries in one direction."""
        return self.ll_payload * self.pdus_per_event

    def pdus_for(self, att_value_bytes: int) -> int:
        """LL data PDUs one ATT write command or notification of this many bytes takes."""
        total = att_value_bytes + ATT_HEADER_BYTES + L2CAP_HEADER_BYTES
        return math.ceil(total / self.ll_payload)

    def capacity(self, interval_ms: float | None = None) -> int:
        """Connections one adapter holds at this interval: its limit, and the air time."""
        interval_us = 1000.0 * (interval_ms or self.interval_ms)
        return max(1, min(self.max_connections, int(interval_us // self.pair_us)))


@dataclass
class Loss:
    """A loss on the air, at a chosen moment: one rule of `RadioLink.losses`.

    Its window of `for_s` seconds opens at `at_s` (the loop's time, which is
    `trio.current_time()` under trio-asyncio) or, without `at_s`, at the air
    time of the first packet `matches` accepts (that packet is lost: "a loss
    that begins with the SET_PROGRAM"). `for_s=0` is that one packet only;
    `math.inf`, for ever. Within the window it loses every packet with
    `blackout`, else those `matches` accepts (None matches every packet).
    `suit`: only on the connection of the suit at this address.
    """

    #: Which packets, by their ATT value (None: every packet).
    matches: Callable[[bytes], bool] | None = None
    for_s: float = 0.0
    at_s: float | None = None
    blackout: bool = False
    suit: str | None = None
    #: When the window opened (loop time; None: not yet), and the packets it lost.
    opened_at: float | None = None
    lost: int = 0
    #: The ATT values it lost (None for a packet that carried none), in order.
    lost_values: list[bytes | None] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.for_s >= 0:
            raise ValueError(f"a loss lasts 0 s or more, not {self.for_s}")
        if self.at_s is None and self.matches is None:
            raise ValueError("a loss opens at a time (at_s) or at a packet it matches")

    def takes(self, suit: str, value: bytes | None, at: float) -> bool:
        """Whether this rule loses a packet of `suit`'s connection due on air at `at`."""
        if self.suit is not None and self.suit.upper() != suit.upper():
            return False
        matched = self.matches is None or (value is not None and self.matches(value))
        if self.opened_at is None:
            if self.at_s is not None and at >= self.at_s:
                self.opened_at = self.at_s
            elif self.at_s is None and matched:
                self.opened_at = at
            else:
                return False
        inside = self.opened_at <= at < self.opened_at + self.for_s or at == self.opened_at
        if not inside or not (self.blackout or matched):
            return False
        self.lost += 1
        self.lost_values.append(value)
        return True


@dataclass
class _Direction:
    """One direction of one connection: the event being filled, and what waits for air."""

    event: int = -1
    used: int = 0
    queue: collections.deque[tuple[float, Callable[[], None]]] = field(
        default_factory=collections.deque
    )


@dataclass
class _Connection:
    central: Controller
    peripheral: Controller
    interval_s: float
    anchor_s: float
    directions: dict[Controller, _Direction] = field(default_factory=dict)


class AdapterController(QuietController):
    """A bumble controller that refuses connections past its adapter's capacity."""

    def __init__(self, *args: Any, radio: Radio, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.radio = radio
        self.refused_connections = 0

    def _full(self, interval_units: int) -> bool:
        return len(self.le_connections) >= self.radio.capacity(interval_units * 1.25)

    def on_hci_le_create_connection_command(
        self, command: hci.HCI_LE_Create_Connection_Command
    ) -> None:
        if self._full(command.connection_interval_min):
            self.refused_connections += 1
            self._send_hci_command_status(
                hci.HCI_ErrorCode.CONNECTION_LIMIT_EXCEEDED_ERROR, command.op_code
            )
            return None
        return super().on_hci_le_create_connection_command(command)

    def on_hci_le_extended_create_connection_command(
        self, command: hci.HCI_LE_Extended_Create_Connection_Command
    ) -> None:
        if self._full(command.connection_interval_mins[0]):
            self.refused_connections += 1
            self._send_hci_command_status(
                hci.HCI_ErrorCode.CONNECTION_LIMIT_EXCEEDED_ERROR, command.op_code
            )
            return None
        return super().on_hci_le_extended_create_connection_command(command)


def _listening(controller: Controller) -> bool:
    """Whether a controller acts on an advertising PDU (bumble's `on_advertising_pdu`):
    scanning, initiating a connection (it connects on the advertiser's next PDU), or
    following periodic advertising."""
    return bool(
        controller.le_scan_enable
        or controller.pending_le_connection
        or controller.pending_periodic_advertising_syncs
        or controller.established_periodic_advertising_syncs
    )


class RadioLink(LocalLink):
    """A `LocalLink` whose LE connections deliver at connection events (see the module doc)."""

    #: A central's bleak backend (sim/bleak_bumble.py) may hand ATT write commands straight
    #: to its controller's connection here: this link delivers them at connection events.
    carries_att_writes = True

    def __init__(self, radio: Radio | None = None) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.radio = radio or Radio()
        self._connections: dict[frozenset[Controller], _Connection] = {}
        #: Packets delivered through the model, and their total wait for air, s.
        self.delivered = 0
        self.waited_s = 0.0
        #: Losses on the air (see `Loss`); rules may be added at any time.
        self.losses: list[Loss] = []
        #: Packets lost on the air.
        self.lost = 0

    def interval_s(self, a: Controller, b: Controller) -> float | None:
        """The connection interval between two controllers, s (None: not connected)."""
        c = self._connections.get(frozenset((a, b)))
        return None if c is None else c.interval_s

    # -- what bumble's controllers call --------------------------------------------------
    def send_advertising_pdu(self, sender_controller: Controller, packet: Any) -> None:
        if isinstance(packet, ll.ConnectInd):
            peripheral = self.find_le_controller(packet.advertiser_address)
            if peripheral is not None:
                self._open(sender_controller, peripheral, packet.interval)
            super().send_advertising_pdu(sender_controller, packet)
            return
        if not isinstance(packet, ll.AdvInd | ll.AdvExtInd):
            super().send_advertising_pdu(sender_controller, packet)
            return
        # An advertisement is heard by the controllers listening for one (scanning, or
        # following periodic advertising); the others' radios are not on it, and bumble's
        # controllers would drop it anyway. Every suit advertises every 20 ms to every
        # controller in the room: delivering to all of them was most of a class's events.
        loop = asyncio.get_running_loop()
        for c in self.controllers:
            if c is not sender_controller and _listening(c):
                loop.call_soon(c.on_ll_advertising_pdu, packet)

    def send_acl_data(
        self,
        sender_controller: Controller,
        destination_address: hci.Address,
        transport: PhysicalTransport,
        data: bytes,
    ) -> None:
        destination = (
            self.find_le_controller(destination_address)
            if transport == PhysicalTransport.LE
            else None
        )
        conn = (
            None
            if destination is None
            else self._connections.get(frozenset((sender_controller, destination)))
        )
        if conn is None or destination is None:
            super().send_acl_data(sender_controller, destination_address, transport, data)
            return
        source_address = sender_controller.random_address
        self._schedule(
            conn,
            sender_controller,
            len(data),
            lambda: destination.on_link_acl_data(source_address, transport, data),
            lost=(lambda at: self._lost(conn, data, at)) if self.losses else None,
        )

    def send_ll_control_pdu(
        self, sender_address: hci.Address, receiver_address: hci.Address, packet: Any
    ) -> None:
        sender = self.find_le_controller(sender_address)
        receiver = self.find_le_controller(receiver_address)
        conn = (
            None
            if sender is None or receiver is None
            else self._connections.get(frozenset((sender, receiver)))
        )
        if conn is None or sender is None or receiver is None:
            super().send_ll_control_pdu(sender_address, receiver_address, packet)
            return
        if isinstance(packet, ll.ConnectionUpdateInd):
            self._open(conn.central, conn.peripheral, packet.interval)
        self._schedule(
            conn,
            sender,
            0,  # a control PDU fits in one data PDU
            lambda: receiver.on_ll_control_pdu(sender_address, packet),
        )

    # -- the model ----------------------------------------------------------------------
    def _open(self, central: Controller, peripheral: Controller, interval_units: int) -> None:
        """A connection (or its new parameters): events from now, staggered per adapter."""
        loop = asyncio.get_running_loop()
        interval_s = max(MIN_INTERVAL_MS, interval_units * 1.25) / 1000.0
        key = frozenset((central, peripheral))
        old = self._connections.get(key)
        slot = sum(1 for k, c in self._connections.items() if c.central is central and k != key)
        anchor = loop.time() + slot * self.radio.pair_us / 1e6
        conn = _Connection(central, peripheral, interval_s, anchor)
        if old is not None:  # an update: what waits keeps its place and its order
            conn.directions = old.directions
            for d in conn.directions.values():
                d.event, d.used = -1, 0
        self._connections[key] = conn

    def _lost(self, conn: _Connection, data: bytes, at: float) -> bool:
        """Whether a rule of `losses` loses this L2CAP PDU, due on air at `at`."""
        suit = conn.peripheral.public_address.to_string(False)
        value = att_value(data)
        if any(loss.takes(suit, value, at) for loss in self.losses):
            self.lost += 1
            return True
        return False

    def _schedule(
        self,
        conn: _Connection,
        sender: Controller,
        n_bytes: int,
        deliver: Callable[[], None],
        lost: Callable[[float], bool] | None = None,
    ) -> None:
        """Queue a packet for its connection event; `lost(at)`: whether the air loses it."""
        loop = asyncio.get_running_loop()
        now = loop.time()
        d = conn.directions.setdefault(sender, _Direction())
        first = math.ceil((now - conn.anchor_s) / conn.interval_s - 1e-9)
        if d.event < first:
            d.event, d.used = first, 0
        pdus = max(1, math.ceil(n_bytes / self.radio.ll_payload))  # n_bytes: the L2CAP PDU
        per_event = self.radio.pdus_per_event
        while pdus > 0:
            if d.used >= per_event:
                d.event, d.used = d.event + 1, 0
            take = min(pdus, per_event - d.used)
            d.used += take
            pdus -= take
        at = conn.anchor_s + d.event * conn.interval_s + d.used * self.radio.pair_us / 1e6
        if lost is not None and lost(at):
            return  # its air time is spent (the PDUs above); nothing arrives
        self.waited_s += max(0.0, at - now)
        d.queue.append((at, deliver))
        loop.call_at(at, self._drain, d)

    def _drain(self, d: _Direction) -> None:
        """Deliver, in order, everything of this direction whose air time has come."""
        now = asyncio.get_running_loop().time()
        while d.queue and d.queue[0][0] <= now + 1e-9:
            _, deliver = d.queue.popleft()
            self.delivered += 1
            deliver()
