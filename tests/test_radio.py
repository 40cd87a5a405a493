"""The simulated radio (connection events, bytes per event, adapter capacity) and several
adapters for one class: bleak's API on bumble, in virtual time."""

from __future__ import annotations

import itertools
import json
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import trio
import trio.testing
import trio_asyncio

from sim.ble_world import BleRoom
from sim.radio import Radio, RadioLink
from sim.suit import SimulatedSuit
from suit_controller.links.adapters import Adapter, AdapterError, AdapterPool
from suit_controller.links.base import ConnectFailed
from suit_controller.links.ble import BleLink
from suit_controller.protocol import ControllerConnection


@asynccontextmanager
async def room_of(
    n: int, radio: Radio | None, adapters: Sequence[str] = ("sim-hci0",)
) -> AsyncIterator[BleRoom]:
    async with trio_asyncio.open_loop(), trio.open_nursery() as nursery:
        suits = [SimulatedSuit(f"SIM-{i + 1:02d}") for i in range(n)]
        for s in suits:
            s.firmware.watchdog_s = 1e6  # these tests look at the radio, not the watchdog
            await nursery.start(s.run)
        room = BleRoom(suits, adapter_names=adapters, radio=radio)
        await nursery.start(room.run)
        yield room
        nursery.cancel_scope.cancel()


async def _ready(link: BleLink) -> ControllerConnection:
    """Connect and wait for the suit's first status (ARM may go out after it)."""
    conn = ControllerConnection(12)
    await link.connect()
    conn.connected(link.att_payload)
    while not conn.can_send:
        conn.receive_data(await link.receive(), trio.current_time())
    return conn


def test_radio_budget_arithmetic() -> None:
    r = Radio()
    # 1M PHY: (27 + 14) bytes × 8 µs + 150 + empty 80 + 150
    assert r.pair_us == pytest.approx(708.0)
    assert r.bytes_per_event() == 108
    assert r.capacity() == 10  # 7.5 ms / 708 µs = 10.6, and the adapter's limit 10
    assert Radio(max_connections=20).capacity() == 10  # the air, not the firmware, limits
    assert Radio(max_connections=20).capacity(15.0) == 20
    assert Radio(max_connections=4).capacity() == 4
    with pytest.raises(ValueError, match=r"7\.5"):
        Radio(interval_ms=5.0)


async def _write_delay(radio: Radio | None) -> tuple[float, float | None]:
    """Virtual seconds from a control write to the suit's firmware seeing it."""
    async with room_of(1, radio) as room:
        link = BleLink(room.addresses[0], **room.client_kwargs())
        conn = await _ready(link)
        suit = room.suits[0]
        before = suit.frames_received
        frames = conn.frames_to_send(bytes(12), trio.current_time())
        await trio.sleep(0.0031)  # somewhere between two connection events
        t0 = trio.current_time()
        for f in frames:
            await link.send(f)
        while suit.frames_received == before:  # noqa: ASYNC110 (virtual time, 0.1 ms steps)
            await trio.sleep(0.0001)
        assert link.adapter is None
        interval = getattr(link._client, "_backend", None)
        ms = getattr(interval, "connection_interval_ms", None)
        await link.aclose()
        return trio.current_time() - t0, ms


async def test_a_frame_waits_for_the_next_connection_event(
    autojump_clock: trio.testing.MockClock,
) -> None:
    instant, _ = await _write_delay(None)
    on_air, interval_ms = await _write_delay(Radio())
    assert interval_ms == 7.5  # the short interval was asked for and granted
    assert instant < 0.0002  # bumble's LocalLink: at once
    assert 0.0005 < on_air <= 0.0075 + 0.0008  # after air time, at most one interval later


async def test_bytes_per_event_spread_a_burst_over_events(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # one PDU per event: 6 frames written at once arrive two connection events apart
    radio = Radio(pdus_per_event=1)
    async with room_of(1, radio) as room:
        link = BleLink(room.addresses[0], **room.client_kwargs())
        conn = await _ready(link)
        suit = room.suits[0]
        frame = conn.frames_to_send(bytes(12), trio.current_time())[-1]
        assert radio.pdus_for(len(frame)) == 2  # a level frame is 2 PDUs of 27 bytes (no DLE)
        arrivals: list[float] = []
        original = suit.deliver

        def deliver(frame: bytes) -> None:
            arrivals.append(trio.current_time())
            original(frame)

        suit.deliver = deliver  # type: ignore[method-assign]
        for _ in range(6):
            for f in conn.frames_to_send(bytes(12), trio.current_time()):
                await link.send(f)
        await trio.sleep(0.2)
        gaps = [b - a for a, b in itertools.pairwise(arrivals)]
        assert len(arrivals) >= 6
        assert all(g == pytest.approx(0.015, abs=1e-6) for g in gaps[-5:])  # 2 events
        assert isinstance(room._link, RadioLink) and room._link.delivered > 6
        await link.aclose()


async def test_an_adapter_refuses_connections_past_its_capacity(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with room_of(3, Radio(max_connections=2)) as room:
        links = [BleLink(a, **room.client_kwargs()) for a in room.addresses]
        await links[0].connect()
        await links[1].connect()
        with pytest.raises(ConnectFailed, match=r"(?i)limit"):
            await links[2].connect()
        assert room.adapters[0].connections == 2


async def test_suits_spread_over_adapters_and_move_when_one_is_unplugged(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with room_of(4, Radio(max_connections=3), ("sim-hci0", "sim-hci1")) as room:
        pool = room.adapter_pool()
        links = [BleLink(a, adapters=pool, **room.client_kwargs()) for a in room.addresses]
        for link in links:
            await _ready(link)
        assert pool.spread() == {"sim-hci0": 2, "sim-hci1": 2}
        assert [a.connections for a in room.adapters] == [2, 2]
        on_first = [link for link in links if link.adapter is pool.adapters[0]]
        await room.adapters[0].unplug()
        await trio.sleep(0.1)
        assert pool.spread() == {"sim-hci0": 0, "sim-hci1": 2}
        # the two dropped suits reconnect: one fits on hci1 (capacity 3), the other is refused
        await _ready(on_first[0])
        assert on_first[0].adapter is pool.adapters[1]
        with pytest.raises(ConnectFailed, match="sim-hci"):
            await on_first[1].connect()
        room.adapters[0].plug_in()
        await _ready(on_first[1])
        assert pool.spread() == {"sim-hci0": 1, "sim-hci1": 3}
        assert [a.connections_made for a in pool.adapters] == [3, 3]
        assert (on_first[0].address, "sim-hci0", "sim-hci1") in pool.moves


def test_adapter_pool_rules() -> None:
    a, b = Adapter("a", {}), Adapter("b", {}, capacity=1)
    pool = AdapterPool([a, b])
    assert pool.pick("s1", 0.0) is a
    assert pool.pick("s2", 0.0) is b  # s1 holds a while it connects: b is the least loaded
    pool.connected("s1", a)
    pool.connected("s2", b)
    assert pool.pick("s3", 0.0) is a  # b is full
    pool.failed("s3", a, 10.0)
    assert pool.spread() == {"a": 1, "b": 1}
    assert pool.pick("s3", 10.5) is a  # a failing a still beats a full b
    pool.failed("s3", a, 10.5)
    b.capacity = 5
    assert pool.pick("s3", 10.5) is b  # a failed just now
    pool.released("s3")
    assert pool.pick("s3", 20.0) is a  # the cooldown is over: the least loaded again
    dead = Adapter("c", {}, alive=lambda: False)
    assert AdapterPool([dead, a]).pick("s9", 0.0) is a
    with pytest.raises(AdapterError, match="twice"):
        AdapterPool([Adapter("x", {}), Adapter("x", {})])
    with pytest.raises(AdapterError, match="hci0"):
        AdapterPool.bluez(["usb-dongle"])


def test_sim_run_over_two_adapters_moves_suits_when_one_is_unplugged(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from suit_controller.cli import suitctl

    from .simclass_helpers import SHORT

    workout = tmp_path / "short.yaml"
    workout.write_text(SHORT)
    args = ["sim", "run", str(workout), "--link", "ble", "--clients", "4", "--virtual"]
    r = CliRunner().invoke(
        suitctl,
        [
            *args,
            "--adapter",
            "hci-a",
            "--adapter",
            "hci-b",
            "--faults",
            "unplug:adapter=hci-a,at=10s",
            "--out",
            str(tmp_path / "out"),
        ],
    )
    assert r.exit_code == 0, r.output
    rec = json.loads((tmp_path / "out" / "session.json").read_text())
    assert rec["ended"] == "finished"
    # two suits on each adapter, then hci-a's two reconnect through hci-b
    assert rec["adapter_connections"] == {"hci-a": 2, "hci-b": 4}
    moved = {m[0] for m in rec["adapter_moves"]}
    assert len(moved) == 2 and all(m[1:] == ["hci-a", "hci-b"] for m in rec["adapter_moves"])
    assert sum(c["link_drops"] for c in rec["clients"]) == 2
    assert all(c["outputs_zero_at_end"] for c in rec["clients"])
    r = CliRunner().invoke(suitctl, [*args[:3], "--adapter", "x", "--out", str(tmp_path / "o2")])
    assert r.exit_code == 2 and "--adapter needs --link ble" in r.output


def test_class_run_refuses_an_adapter_that_is_not_a_bluez_name(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from suit_controller.cli import suitctl

    from .simclass_helpers import SHORT

    workout = tmp_path / "short.yaml"
    workout.write_text(SHORT)
    r = CliRunner().invoke(
        suitctl,
        [
            "class",
            "run",
            str(workout),
            "--suit",
            "AA:BB:CC:DD:EE:FF",
            "--screened-on-paper",
            "--adapter",
            "usb-dongle",
        ],
    )
    assert r.exit_code == 2, r.output
    assert "hci0" in r.output and "Traceback" not in r.output
