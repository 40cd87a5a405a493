"""bumble's controller and host without the cost of their debug log lines when nobody logs.

bumble logs every HCI packet with `logger.debug(f"... {packet}")`: the f-string
formats the whole packet (every field, in colour) before `debug` finds that
the level is off. In a simulated class that was a fifth of the CPU (cProfile of
a class over BLE: 92,000 packets formatted for nothing in 30 s of class). These
subclasses do exactly what bumble's do, and format the packet only when the
logger would print it (then they call bumble's own method, log line included).

Two more costs of the same kind (issue 15, `ble_class`): HCI ACL data between a
simulated controller and its host is handed over as the packet object (the fields
`from_bytes` would give), not encoded to bytes and parsed back, and at once when
nothing of that controller's waits for the host (else behind it: one FIFO); the
GATT server (`QuietGattServer`) formats ATT PDUs only for a log that prints
them, and runs a write command at once instead of in a new asyncio task per
write (a task finishes it only if the attribute's write waits).

Measured against bumble 0.0.236; the dispatch below is bumble's own.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine, Generator
from typing import Any

from bumble import att, gatt, gatt_server, hci, utils
from bumble.controller import Controller
from bumble.device import Device
from bumble.host import Host

_controller_log = logging.getLogger("bumble.controller")
_host_log = logging.getLogger("bumble.host")
_gatt_server_log = logging.getLogger("bumble.gatt_server")


class QuietController(Controller):
    """A bumble `Controller` that formats HCI packets only when its debug log is on."""

    #: Packets handed to the host with `call_soon` that it has not taken yet.
    _to_host_pending = 0

    def send_hci_packet(self, packet: hci.HCI_Packet) -> None:
        if _controller_log.isEnabledFor(logging.DEBUG):
            super().send_hci_packet(packet)
            return
        host = self.host
        if not host:
            return
        if isinstance(packet, hci.HCI_AclDataPacket) and isinstance(host, QuietHost):
            # ACL data as the object itself, not encoded here and parsed again there (the
            # fields are those `from_bytes` would give); at once when nothing of this
            # controller's waits for the host, else behind it (one FIFO, as on a transport)
            if not self._to_host_pending:
                host.on_hci_packet(packet)
                return
            self._to_host_later(host.on_hci_packet, packet)
        else:
            self._to_host_later(host.on_packet, bytes(packet))

    def _to_host_later(self, deliver: Callable[[Any], None], packet: Any) -> None:
        self._to_host_pending += 1

        def hand_over() -> None:
            self._to_host_pending -= 1
            deliver(packet)

        asyncio.get_running_loop().call_soon(hand_over)

    def on_hci_packet(self, packet: hci.HCI_Packet) -> None:
        if _controller_log.isEnabledFor(logging.DEBUG):
            super().on_hci_packet(packet)
            return
        if isinstance(packet, hci.HCI_Command):
            self.on_hci_command_packet(packet)
        elif isinstance(packet, hci.HCI_AclDataPacket):
            self.on_hci_acl_data_packet(packet)
        elif isinstance(packet, hci.HCI_Event):
            self.on_hci_event_packet(packet)
        else:
            super().on_hci_packet(packet)  # bumble's warning for an unknown packet


class QuietHost(Host):
    """A bumble `Host` that formats HCI packets only when its debug log is on."""

    def send_hci_packet(self, packet: hci.HCI_Packet) -> None:
        if _host_log.isEnabledFor(logging.DEBUG) or self.snooper:
            super().send_hci_packet(packet)
            return
        if isinstance(packet, hci.HCI_AclDataPacket) and isinstance(self.hci_sink, QuietController):
            self.hci_sink.on_hci_packet(packet)  # the object, not encoded and parsed again
        elif self.hci_sink:
            self.hci_sink.on_packet(bytes(packet))

    def on_hci_packet(self, packet: hci.HCI_Packet) -> None:
        if _host_log.isEnabledFor(logging.DEBUG) or self.snooper:
            super().on_hci_packet(packet)
            return
        if isinstance(packet, hci.HCI_Event):
            self.on_hci_event_packet(packet)
        elif isinstance(packet, hci.HCI_AclDataPacket):
            self.on_hci_acl_data_packet(packet)
        else:  # commands, SCO and ISO data: bumble's own handling (rare here)
            super().on_hci_packet(packet)


class QuietGattServer(gatt_server.Server):
    """bumble's GATT server, formatting the ATT PDU for its debug line only when it logs."""

    def on_gatt_pdu(self, bearer: att.Bearer, att_pdu: att.ATT_PDU) -> None:
        if _gatt_server_log.isEnabledFor(logging.DEBUG):
            super().on_gatt_pdu(bearer, att_pdu)
            return
        # bumble's dispatch, with its f-string log line (every write, formatted) left out
        handler = getattr(self, f"on_{att_pdu.name.lower()}", None)
        if handler is None:
            super().on_gatt_pdu(bearer, att_pdu)  # bumble's generic handling and warnings
            return
        try:
            handler(bearer, att_pdu)
        except att.ATT_Error as error:
            self.send_response(
                bearer,
                att.ATT_Error_Response(
                    request_opcode_in_error=att_pdu.op_code,
                    attribute_handle_in_error=error.att_handle,
                    error_code=error.error_code,
                ),
            )
        except Exception:
            _gatt_server_log.exception("!!! Exception in handler:")
            self.send_response(
                bearer,
                att.ATT_Error_Response(
                    request_opcode_in_error=att_pdu.op_code,
                    attribute_handle_in_error=0x0000,
                    error_code=att.ATT_UNLIKELY_ERROR_ERROR,
                ),
            )
            raise

    def on_att_write_command(self, bearer: att.Bearer, request: att.ATT_Write_Command) -> None:
        """bumble's write command (Vol 3, Part F, 3.4.5.3), run at once instead of in a new
        task: the attribute's `write_value` (its permission checks, then the value's write)
        runs until it first waits; only if it waits does a task finish it. Errors are
        ignored with bumble's log line, as bumble's does (a command has no response)."""
        attribute = self.get_attribute(request.attribute_handle)
        if attribute is None or len(request.attribute_value) > gatt.GATT_MAX_ATTRIBUTE_VALUE_SIZE:
            return
        coro = attribute.write_value(bearer, request.attribute_value)
        try:
            waits_for = coro.send(None)
        except StopIteration:
            return
        except Exception:
            _gatt_server_log.exception("!!! ignoring exception")
            return
        utils.AsyncRunner.spawn(_finish(coro, waits_for))  # type: ignore[no-untyped-call]


class _Rest:
    """The rest of a coroutine that already ran until it yielded `first` (what a task awaits):
    `await _Rest(...)` in a task resumes it exactly as `yield from` would."""

    def __init__(self, coro: Coroutine[Any, Any, None], first: Any) -> None:
        self.coro, self.first = coro, first

    def __await__(self) -> Generator[Any, Any, None]:
        waits_for = self.first
        while True:
            try:
                sent = yield waits_for
            except BaseException as e:  # thrown in by the task (a cancellation): passed on
                try:
                    waits_for = self.coro.throw(e)
                except StopIteration:
                    return
            else:
                try:
                    waits_for = self.coro.send(sent)
                except StopIteration:
                    return


async def _finish(coro: Coroutine[Any, Any, None], waits_for: Any) -> None:
    try:
        await _Rest(coro, waits_for)
    except Exception:
        _gatt_server_log.exception("!!! ignoring exception")


def quiet_device(name: str, address: str, controller: Controller) -> Device:
    """`Device.with_hci(name, Address(address), controller, controller)`, on a `QuietHost`,
    with its GATT server a `QuietGattServer` (the instance bumble built, same state)."""
    host: Any = QuietHost(controller_source=controller, controller_sink=controller)
    device = Device(name=name, address=hci.Address(address), host=host)
    device.gatt_server.__class__ = QuietGattServer
    return device
