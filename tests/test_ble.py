"""Suits over Bluetooth LE: bleak's real client and scanner API, a bumble host stack,
simulated suits as GATT peripherals — in virtual time."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
import trio
import trio.testing
import trio_asyncio

from sim.ble_world import BleRoom
from sim.suit import SimulatedSuit
from suit_controller.backoff import Backoff
from suit_controller.cli.simclass import SimulatedClass
from suit_controller.links.base import ConnectFailed, LinkLost
from suit_controller.links.ble import BleLink, scan_suits
from suit_controller.protocol import (
    ControllerConnection,
    SuitRefused,
    SuitState,
    decode_status,
)

from .simclass_helpers import QUADS, History, short_plan


@asynccontextmanager
async def room_of(n: int) -> AsyncIterator[BleRoom]:
    async with trio_asyncio.open_loop(), trio.open_nursery() as nursery:
        suits = [SimulatedSuit(f"SIM-0{i + 1}") for i in range(n)]
        suits[0].firmware.set_battery(64)
        for s in suits:
            await nursery.start(s.run)
        room = BleRoom(suits)
        await nursery.start(room.run)
        yield room
        nursery.cancel_scope.cancel()


async def test_scan_finds_suits_by_service_uuid(autojump_clock: trio.testing.MockClock) -> None:
    async with room_of(3) as room:
        found = await scan_suits(1.0, **room.scanner_kwargs())
    assert sorted(f.address for f in found) == sorted(room.addresses)
    by_name = {f.name: f for f in found}
    assert set(by_name) == {"SIM-01", "SIM-02", "SIM-03"}
    assert by_name["SIM-01"].battery_pct == 64 and by_name["SIM-02"].battery_pct == 100
    assert all(f.rssi < 0 for f in found)


async def test_connect_uses_the_negotiated_mtu_and_delivers_notifications_into_trio(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with room_of(1) as room:
        link = BleLink(room.addresses[0], **room.client_kwargs())
        await link.connect()
        assert link.att_payload == 244  # MTU 247 negotiated
        with trio.fail_after(1.0):
            frame = await link.receive()
        report = decode_status(frame)
        assert report.first_channel == 0 and len(report.levels_mA) == 12  # one notification
        await link.send(b"\x15\x01\x00" + bytes(2))  # garbage for the suit: dropped, flagged
        await trio.sleep(0.3)
        assert room.suits[0].firmware.bad_frames == 1
        await link.aclose()
        with pytest.raises(LinkLost):
            await link.send(b"x")


async def test_a_suit_link_without_a_large_enough_mtu_is_refused(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with room_of(1) as room:
        link = BleLink(room.addresses[0], **room.client_kwargs(), bumble_mtu=23)
        await link.connect()
        assert link.att_payload == 20  # BLE's default: too small for version 2
        conn = ControllerConnection(12)
        [refused] = conn.connected(link.att_payload)
        assert isinstance(refused, SuitRefused) and "ATT MTU of at least 67" in refused.reason
        assert conn.frames_to_send(bytes(12), 0.0) == [] and conn.stop_frame() is None
        await link.aclose()


async def test_bleak_errors_become_link_errors(autojump_clock: trio.testing.MockClock) -> None:
    async with room_of(1) as room:
        missing = BleLink("F0:5C:0E:00:0F:FF", **room.client_kwargs())
        with pytest.raises(ConnectFailed):
            await missing.connect()
        link = BleLink(room.addresses[0], **room.client_kwargs())
        await link.connect()
        room.nursery_drop = None
        async with trio.open_nursery() as n:
            n.start_soon(room.peripherals[0].drop_link, 1.0)
            with pytest.raises(LinkLost), trio.fail_after(1.0):
                while True:  # the disconnect is noticed at once, not at the next write
                    await link.receive()


async def test_reconnect_backoff(autojump_clock: trio.testing.MockClock) -> None:
    b = Backoff()
    assert [b.next() for _ in range(8)] == [0.25, 0.5, 1, 2, 4, 5, 5, 5]
    b.reset()
    assert b.next() == 0.25
    # the driver: a suit out of reach for 8 s is retried at growing intervals
    sc = SimulatedClass(short_plan(), 1, body=False)
    sc.suits[0].reachable = False
    attempts: list[float] = []
    attach = sc.suits[0].attach

    def counting_attach(*args: object) -> None:
        attempts.append(trio.current_time())
        attach(*args)  # type: ignore[arg-type]

    sc.suits[0].attach = counting_attach  # type: ignore[method-assign]
    with trio.move_on_after(8.0):
        await sc.run()
    gaps = [round(b - a, 3) for a, b in itertools.pairwise(attempts)]
    assert gaps[:5] == [0.25, 0.5, 1.0, 2.0, 4.0]


async def test_a_dropped_ble_suit_is_zeroed_by_its_watchdog_and_the_others_go_on(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with trio_asyncio.open_loop():
        sc = SimulatedClass(short_plan(), 4, intensity_mA=20.0, body=False, link="ble")
        hist = History()
        hist.watch(sc.suits)
        steps: list[tuple[float, float]] = []

        def spy(now: float) -> None:
            steps.append((now, float(sc.session.board.set_mA[1, QUADS])))

        sc.session.tick_observers.append(spy)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(sc.run)
            await trio.sleep(12.0)  # mid-contraction
            assert all(s.firmware.applied_mA[QUADS] == 20.0 for s in sc.suits)
            before = [s.frames_received for s in sc.suits]
            fw = sc.suits[1].firmware
            assert sc.room is not None
            nursery.start_soon(sc.room.peripherals[1].drop_link, 2.0)
            await trio.sleep(0.2)
            last = fw.last_feed
            assert last is not None
            await trio.sleep_until(last + 0.2499)
            assert fw.applied_mA[QUADS] == 20.0
            await trio.sleep_until(last + 0.2501)
            assert not fw.applied_mA.any() and fw.state is SuitState.WATCHDOG
            for i in (0, 2, 3):  # the others go on: armed, fed, stimulating
                s = sc.suits[i]
                assert s.firmware.state is SuitState.ARMED and s.firmware.watchdog_trips == 0
                assert s.frames_received > before[i] + 5
                assert s.firmware.applied_mA[QUADS] == 20.0
            t_back = trio.current_time() + 2.0
            await trio.sleep(20.0)
            nursery.cancel_scope.cancel()
    assert sc.session.drivers[1].drops == 1 and sc.session.drivers[1].reconnects == 1
    after = [v for t, v in steps if t >= t_back and v > 0]
    assert after[0] == 1.0 and max(after) == 20.0  # ramps up again from zero
    assert all(b - a <= 1.0 for a, b in itertools.pairwise(after))
    assert all(s.firmware.watchdog_trips == 0 for i, s in enumerate(sc.suits) if i != 1)


def test_suits_scan_and_sim_run_over_ble_from_the_command_line(tmp_path: object) -> None:
    import json
    from pathlib import Path

    from click.testing import CliRunner

    from suit_controller.cli import suitctl

    from .simclass_helpers import SHORT

    tmp = Path(str(tmp_path))
    r = CliRunner().invoke(suitctl, ["suits", "scan", "--simulated", "2", "--seconds", "1"])
    assert r.exit_code == 0, r.output
    assert "SIM-01" in r.output and "SIM-02" in r.output and "dBm" in r.output
    workout = tmp / "short.yaml"
    workout.write_text(SHORT)
    r = CliRunner().invoke(
        suitctl,
        [
            "sim",
            "run",
            str(workout),
            "--link",
            "ble",
            "--clients",
            "2",
            "--virtual",
            "--faults",
            "drop:client=2,at=12s,for=2s",
            "--out",
            str(tmp / "out"),
        ],
    )
    assert r.exit_code == 0, r.output
    rec = json.loads((tmp / "out" / "session.json").read_text())
    assert rec["ended"] == "finished"
    c2 = rec["clients"][1]
    assert c2["link_drops"] == 1 and c2["reconnects"] == 1 and c2["watchdog_trips"] == 1
    assert rec["clients"][0]["channels"]["quads"]["contractions"] == 5


def test_class_run_usage_errors() -> None:
    from click.testing import CliRunner

    from suit_controller.cli import suitctl

    r = CliRunner().invoke(suitctl, ["class", "run", "builtin:classic_strength"])
    assert r.exit_code == 2 and "--suit ADDRESS" in r.output
    r = CliRunner().invoke(suitctl, ["class", "run", "builtin:classic_strength", "--client", "Ana"])
    assert r.exit_code == 2 and "NAME=ADDRESS" in r.output
    r = CliRunner().invoke(suitctl, ["class", "run", "builtin:classic_strength", "--suit", "AA"])
    assert r.exit_code == 2 and "no screening" in r.output and "S5" in r.output


async def test_a_real_class_runs_through_bleak_on_the_bumble_backend(
    autojump_clock: trio.testing.MockClock,
) -> None:
    from suit_controller.cli.realclass import RealClass
    from suit_controller.clients import ClientSpec

    async with room_of(2) as room:
        klass = RealClass(
            short_plan(),
            [ClientSpec("Ana", 20), ClientSpec("Ben", 20)],
            room.addresses,
            backend_kwargs=room.client_kwargs(),
        )
        assert await klass.run() == "finished"
    rec = klass.record()
    assert [c["suit"] for c in rec["clients"]] == room.addresses
    assert rec["clients"][0]["channels"]["quads"]["contractions"] == 5
    assert all(s.firmware.state is SuitState.STOPPED for s in room.suits)
