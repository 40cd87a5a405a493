"""What makes a class over bumble fast (issue 15) does not change what the radio does:
bumble's packets formatted only for a log that prints them, advertisements heard only
by listening controllers, a central that scans only while it looks for a suit, and
trio-asyncio's ready callbacks run in order, in batches."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
import trio
import trio.testing
import trio_asyncio
from bleak import BleakClient
from bumble import hci
from bumble.att import ATT_CID, ATT_Write_Command
from bumble.controller import Controller
from bumble.l2cap import L2CAP_PDU
from bumble.link import LocalLink

from sim.ble_world import BleRoom
from sim.bleak_bumble import BumbleClient
from sim.quiet_bumble import QuietController, _finish, quiet_device
from sim.radio import Radio, RadioLink
from sim.suit import SimulatedSuit
from suit_controller.links.asyncio_loop import BATCH, batch_callbacks
from suit_controller.links.base import LinkLost
from suit_controller.links.ble import BleLink, scan_suits
from suit_controller.protocol import (
    CONTROL_UUID,
    Arm,
    ControllerConnection,
    StopAll,
    SuitState,
    encode,
)
from suit_controller.protocol.enrollment import STOP_UUID


@asynccontextmanager
async def room_of(n: int, radio: Radio | None = None) -> AsyncIterator[BleRoom]:
    async with trio_asyncio.open_loop(), trio.open_nursery() as nursery:
        suits = [SimulatedSuit(f"SIM-{i + 1:02d}") for i in range(n)]
        for s in suits:
            s.firmware.watchdog_s = 1e6
            await nursery.start(s.run)
        room = BleRoom(suits, radio=radio)
        await nursery.start(room.run)
        yield room
        nursery.cancel_scope.cancel()


async def _ready(link: BleLink) -> ControllerConnection:
    conn = ControllerConnection(12)
    await link.connect()
    conn.connected(link.att_payload)
    while not conn.can_send:
        conn.receive_data(await link.receive(), trio.current_time())
    return conn


def _refuse_formatting(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Make formatting any HCI packet fail the test (and count it)."""
    formatted: list[str] = []

    def fail(self: Any) -> str:
        formatted.append(type(self).__name__)
        raise AssertionError(f"{type(self).__name__} formatted for a log that is off")

    for cls in (hci.HCI_Event, hci.HCI_Command, hci.HCI_AclDataPacket):
        monkeypatch.setattr(cls, "__str__", fail)
    return formatted


async def test_a_connection_and_frames_format_no_packet_while_bumble_does_not_log(
    autojump_clock: trio.testing.MockClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    logging.getLogger("bumble").setLevel(logging.INFO)
    formatted = _refuse_formatting(monkeypatch)
    async with room_of(1, Radio()) as room:
        link = BleLink(room.addresses[0], **room.client_kwargs())
        conn = await _ready(link)
        before = room.suits[0].frames_received
        for _ in range(5):
            for frame in conn.frames_to_send(bytes(12), trio.current_time()):
                await link.send(frame)
            await trio.sleep(0.025)
        await trio.sleep(0.05)
        assert room.suits[0].frames_received - before >= 5  # delivered all the same
        assert isinstance(room.adapters[0].central.host.controller, QuietController)
        await link.aclose()
    assert formatted == []


async def test_with_bumble_debug_logging_on_packets_are_logged_as_bumble_does(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="bumble")
    async with room_of(1, Radio()) as room:
        link = BleLink(room.addresses[0], **room.client_kwargs())
        await _ready(link)
        await link.aclose()
    text = caplog.text
    assert "CONTROLLER -> HOST" in text and "HOST -> CONTROLLER" in text
    assert "HCI_LE_CONNECTION_COMPLETE_EVENT" in text


async def test_only_listening_controllers_hear_advertisements(
    autojump_clock: trio.testing.MockClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    heard: dict[str, int] = {}
    original = Controller.on_ll_advertising_pdu

    def counting(self: Controller, packet: Any) -> None:
        heard[self.name] = heard.get(self.name, 0) + 1
        original(self, packet)

    monkeypatch.setattr(Controller, "on_ll_advertising_pdu", counting)
    async with room_of(3, Radio()) as room:
        await trio.sleep(1.0)  # three suits advertise every 20 ms; nobody scans
        assert heard == {}
        found = await scan_suits(0.5, **room.scanner_kwargs())  # the adapter scans
        assert sorted(f.address for f in found) == sorted(room.addresses)
        adapter = room.adapters[0].central.host.controller.name
        assert set(heard) == {adapter}  # the suits' controllers are not listening
        assert heard[adapter] >= 3 * 0.5 / 0.020 * 0.5


async def test_the_central_scans_only_while_a_connection_looks_for_its_suit(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with room_of(2, Radio()) as room:
        central = room.adapters[0].central
        links = [BleLink(a, **room.client_kwargs()) for a in room.addresses]
        for link in links:
            await _ready(link)
        assert not central.is_scanning  # connected: not listening to advertisements
        # a suit drops and comes back: the link finds it again (the central scans again)
        await room.peripherals[0].drop_link(0.5)
        await trio.sleep(0.1)
        with pytest.raises(LinkLost):  # the statuses before the drop, then the drop
            while True:
                await links[0].receive()
        await _ready(links[0])
        assert not central.is_scanning
        found = await scan_suits(0.3, **room.scanner_kwargs())  # a scan while connected
        assert len(found) == 2
        assert not central.is_scanning
        for link in links:
            await link.aclose()


async def test_ready_callbacks_run_in_order_in_batches_of_at_most_batch() -> None:
    async with trio_asyncio.open_loop() as loop:
        assert batch_callbacks(loop)
        assert batch_callbacks(loop)  # once
        rounds = 0
        seen: list[tuple[int, int]] = []
        n = 2 * BATCH + 5
        for i in range(n):
            loop.call_soon(lambda i=i: seen.append((i, rounds)))
        for _ in range(5 * n):  # a Trio task going round the scheduler meanwhile
            if len(seen) == n:
                break
            rounds += 1
            await trio.lowlevel.checkpoint()
        assert [i for i, _ in seen] == list(range(n))  # FIFO kept
        per_round: dict[int, int] = {}
        for _, r in seen:
            per_round[r] = per_round.get(r, 0) + 1
        # batches, bounded: the loop's task runs at most twice between two of this task's
        # checkpoints (Trio's scheduler may run it last in one round, first in the next)
        assert BATCH <= max(per_round.values()) <= 2 * BATCH
        assert len(per_round) <= 5  # 69 callbacks in a few rounds, not 69 rounds


async def test_timers_keep_their_order_with_batches(autojump_clock: trio.testing.MockClock) -> None:
    async with trio_asyncio.open_loop() as loop:
        batch_callbacks(loop)
        order: list[str] = []
        loop.call_later(0.02, order.append, "late")
        loop.call_later(0.01, order.append, "early")
        loop.call_soon(order.append, "soon")
        await trio.sleep(0.05)
        assert order == ["soon", "early", "late"]

        async def aio() -> str:
            await asyncio.sleep(0.01)
            return "asyncio ran"

        assert await trio_asyncio.aio_as_trio(aio)() == "asyncio ran"


def test_a_loop_that_is_not_trio_asyncios_is_left_alone() -> None:
    loop = asyncio.SelectorEventLoop()
    try:
        assert not batch_callbacks(loop)
    finally:
        loop.close()


async def test_a_coroutine_function_is_still_refused_as_a_callback() -> None:
    async with trio_asyncio.open_loop() as loop:
        batch_callbacks(loop)

        async def coroutine_function() -> None:
            pass

        def plain() -> None:
            pass

        loop.call_soon(plain)
        loop.call_soon(plain)  # remembered
        with pytest.raises(TypeError, match="coroutines cannot be used"):
            loop.call_soon(coroutine_function)
        with pytest.raises(TypeError, match="coroutines cannot be used"):
            loop.call_soon(coroutine_function)  # refused every time, not remembered


def _on_air(monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """Record what every controller hands the radio model as LE ACL data (L2CAP PDUs)."""
    sent: list[bytes] = []
    original = RadioLink.send_acl_data

    def recording(self: RadioLink, sender: Any, to: Any, transport: Any, data: bytes) -> None:
        sent.append(bytes(data))
        original(self, sender, to, transport, data)

    monkeypatch.setattr(RadioLink, "send_acl_data", recording)
    return sent


async def test_a_write_without_response_on_the_air_model_is_bumbles_write_command(
    autojump_clock: trio.testing.MockClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The short path: the same L2CAP bytes as bumble's GATT client would send, not through
    the central host's ACL queue, delivered to the suit's firmware at connection events."""
    sent = _on_air(monkeypatch)
    async with room_of(1, Radio()) as room:
        link = BleLink(room.addresses[0], **room.client_kwargs())
        conn = await _ready(link)
        host = room.adapters[0].central.host
        queued, before = host.le_acl_packet_queue.queued, room.suits[0].frames_received
        handle = link._control.handle
        frames = [f for _ in range(3) for f in conn.frames_to_send(bytes(12), trio.current_time())]
        sent.clear()
        for frame in frames:
            await link.send(frame)
        assert host.le_acl_packet_queue.queued == queued  # not through the host's queue
        assert room.suits[0].frames_received == before  # not yet: the next connection event
        await trio.sleep(0.05)
        assert room.suits[0].frames_received - before == len(frames)
        bumbles = [
            bytes(
                L2CAP_PDU(
                    ATT_CID, bytes(ATT_Write_Command(attribute_handle=handle, attribute_value=f))
                )
            )
            for f in frames
        ]
        assert sent[: len(frames)] == bumbles
        await link.aclose()


async def test_the_short_path_keeps_the_suits_permissions(
    autojump_clock: trio.testing.MockClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A phone that did not bond writes the control characteristic without response over the
    air model: the suit's GATT server refuses it (encryption required), as on bumble's path;
    its STOP_ALL on the stop characteristic (no permission needed) is heard."""
    sent = _on_air(monkeypatch)
    async with room_of(1, Radio()) as room:
        central = await room.phone("F0:5C:0E:BA:D0:01")
        client = BleakClient(
            room.addresses[0], backend=BumbleClient, bumble_central=central, timeout=5.0
        )
        await trio_asyncio.aio_as_trio(client.connect)()
        suit = room.peripherals[0]
        writes, fw = suit.writes, room.suits[0].firmware
        sent.clear()
        arm = encode(Arm(100), None, 0)
        await trio_asyncio.aio_as_trio(client.write_gatt_char)(CONTROL_UUID, arm, response=False)
        await trio.sleep(0.05)
        assert sent and sent[-1].endswith(arm)  # it went on air by the short path
        assert suit.writes == writes and fw.state is not SuitState.ARMED  # refused
        stop = encode(StopAll(101), None, 0)
        await trio_asyncio.aio_as_trio(client.write_gatt_char)(STOP_UUID, stop, response=False)
        await trio.sleep(0.05)
        assert suit.writes == writes + 1  # the stop characteristic heard it
        await trio_asyncio.aio_as_trio(client.disconnect)()


def test_a_write_command_whose_write_waits_is_finished_by_a_task() -> None:
    """`QuietGattServer` runs a write at once; one that waits is finished in a task, with the
    values and exceptions of what it awaited passed in as `await` would."""
    done: list[Any] = []

    async def write() -> None:
        fut = asyncio.get_running_loop().create_future()
        asyncio.get_running_loop().call_later(0.001, fut.set_result, "ok")
        done.append(await fut)
        await asyncio.sleep(0)
        done.append("after")

    async def main() -> None:
        coro = write()
        first = coro.send(None)  # ran until it waited, as on_att_write_command does
        assert done == []
        await _finish(coro, first)

    asyncio.run(main())
    assert done == ["ok", "after"]


def test_acl_data_to_the_host_waits_behind_what_the_controller_queued_before_it() -> None:
    """A controller hands ACL data to its host at once only when nothing of its own waits
    for the host; else behind it (an event first, then the data, as on one transport)."""
    seen: list[str] = []

    async def main() -> None:
        controller = QuietController("c", link=LocalLink(), public_address="F0:5C:0E:00:00:AA")
        host = quiet_device("d", "F0:5C:0E:00:00:AA", controller).host
        host.on_hci_packet = lambda p: seen.append(type(p).__name__)  # type: ignore[method-assign]
        host.on_packet = lambda b: seen.append(f"event {b[1]:#04x}")  # type: ignore[method-assign]
        acl = hci.HCI_AclDataPacket(1, 2, 0, 3, b"abc")
        controller.send_hci_packet(hci.HCI_Disconnection_Complete_Event(0, 1, 0x13))
        controller.send_hci_packet(acl)
        assert seen == []  # both wait: the event was queued first
        await asyncio.sleep(0)
        assert seen == ["event 0x05", "HCI_AclDataPacket"]  # 0x05: disconnection complete
        controller.send_hci_packet(acl)
        assert seen[-1] == "HCI_AclDataPacket" and len(seen) == 3  # nothing waited: at once

    asyncio.run(main())
