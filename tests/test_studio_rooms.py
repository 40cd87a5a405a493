"""The studio server's rooms: several classes in one Trio program, each failing alone."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio

from sim.faulty_link import FaultyTickSource
from sim.studio_suits import SimulatedRack
from suit_controller.studio.rooms import Arrival, SetUpRefused, Studio
from suit_controller.studio.screening import CONTRAINDICATIONS
from suit_controller.studio.store import Store

from .studio_helpers import eventually

KEYS = [c.key for c in CONTRAINDICATIONS]


def screened(store: Store, *names: str) -> list[str]:
    ids = []
    for name in names:
        c = store.add_client(name)
        store.add_screening(c.id, "Tess", set(), set(), KEYS)
        ids.append(c.id)
    return ids


async def test_an_engine_error_in_one_room_never_touches_the_other(tmp_path: Path) -> None:
    store = Store(tmp_path / "studio.db")
    ana, ben, cem = screened(store, "Ana", "Ben", "Cem")
    rack = SimulatedRack(4)
    studio = Studio(store, rack)
    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            await nursery.start(studio.run)
            one = await studio.set_up_class(
                "Room 1", "classic_strength", [Arrival(ana, "SIM-01")], ["Tess"], by="tess"
            )
            two = await studio.set_up_class(
                "Room 2",
                "classic_strength",
                [Arrival(ben, "SIM-02"), Arrival(cem, "SIM-03")],
                ["Tess"],
                by="tess",
            )
            for k in (one, two):
                assert (await studio.send_command(k, {"do": "start"}, "test")).ok

            # Room 1's engine fails at its next tick.
            ticks = FaultyTickSource()
            ticks.fail_next_tick(RuntimeError("injected engine error"))
            one.session.tick_source = ticks
            await studio.wait_ended(one)
            assert one.state == "interrupted" and "injected engine error" in (one.failure or "")
            assert not rack.suit("SIM-01").firmware.applied_mA.any()
            # Room 2's suits keep receiving frames, at their firmware.
            before = [rack.suit(a).frames_received for a in ("SIM-02", "SIM-03")]
            await eventually(
                lambda: all(
                    rack.suit(a).frames_received > b
                    for a, b in zip(("SIM-02", "SIM-03"), before, strict=True)
                )
            )
            assert two.state == "running" and not two.done.is_set()
            # Room 1 is free again; Ana may not train twice (a second class in Room 1 is refused
            # only for a busy suit, not for the room).
            assert studio.in_room("Room 1") is None
            result = await studio.send_command(two, {"do": "stop"}, "test")
            assert result.ok
            await studio.wait_ended(two)
            assert not rack.suit("SIM-02").firmware.applied_mA.any()
            nursery.cancel_scope.cancel()
    statuses = {r["client_name"]: r["status"] for r in store.session_records()}
    assert statuses == {"Ana": "interrupted", "Ben": "stopped", "Cem": "stopped"}


async def test_set_up_lists_every_refusal_before_start(tmp_path: Path) -> None:
    store = Store(tmp_path / "studio.db")
    (ana,) = screened(store, "Ana")
    ben = store.add_client("Ben").id  # never screened
    studio = Studio(store, SimulatedRack(2))
    async with trio.open_nursery() as nursery:
        await nursery.start(studio.run)
        with pytest.raises(SetUpRefused) as info:
            await studio.set_up_class(
                "Room 1",
                "classic_strength",
                [Arrival(ana, "SIM-01", unwell=True), Arrival(ben, "SIM-02")],
                ["Tess"],
                by="tess",
            )
        text = "\n".join(info.value.reasons)
        assert "Ana feels unwell today" in text
        assert "Ben has no contraindication screening" in text
        with pytest.raises(SetUpRefused) as info:
            await studio.set_up_class(
                "Room 1", "classic_strength", [Arrival(ana, "SIM-09")], ["Tess"], by="tess"
            )
        assert info.value.reasons == ["suit SIM-09 is not in reach: scan again"]
        assert studio.classes == {} and store.session_records() == []
        nursery.cancel_scope.cancel()


async def test_real_suits_are_found_by_a_scan_and_driven_over_ble(tmp_path: Path) -> None:
    """The Bluetooth rack against simulated suits behind bumble (bleak's real client API)."""
    import trio_asyncio

    from sim.ble_world import BleRoom
    from sim.suit import SimulatedSuit
    from suit_controller.studio.ble_rack import BleRack

    store = Store(tmp_path / "studio.db")
    (ana,) = screened(store, "Ana")
    suits = [SimulatedSuit(f"SIM-{i + 1:02d}", seed=i) for i in range(2)]
    with trio.fail_after(60):
        async with trio_asyncio.open_loop(), trio.open_nursery() as nursery:
            for s in suits:
                await nursery.start(s.run)
            room = BleRoom(suits)
            await nursery.start(room.run)
            rack = BleRack(scanner_kwargs=room.scanner_kwargs(), client_kwargs=room.client_kwargs())
            studio = Studio(store, rack)
            await nursery.start(studio.run)
            found = await studio.scan()
            assert sorted(s.address for s in found) == sorted(room.addresses)
            assert all(s.battery_pct == 100 and s.rssi_dbm is not None for s in found)
            klass = await studio.set_up_class(
                "Room 1", "classic_strength", [Arrival(ana, found[0].address)], ["Tess"], by="t"
            )
            assert not klass.simulated
            assert (await studio.send_command(klass, {"do": "start"}, "test")).ok
            index = room.addresses.index(found[0].address)
            before = suits[index].frames_received
            await eventually(lambda: suits[index].frames_received > before)
            # its link health shows the signal the scan measured
            health = klass.snapshot().clients[0].link_health
            assert health.rssi_dbm is not None and health.rssi_dbm == found[0].rssi_dbm
            assert (await studio.send_command(klass, {"do": "estop"}, "test")).ok
            await eventually(lambda: not suits[index].firmware.applied_mA.any())
            assert (await studio.send_command(klass, {"do": "stop"}, "test")).ok
            await studio.wait_ended(klass)
            nursery.cancel_scope.cancel()
    (record,) = store.session_records()
    assert record["simulated"] is False and record["status"] == "estopped"


async def test_two_tablets_setting_up_one_room_at_once_get_one_class(tmp_path: Path) -> None:
    store = Store(tmp_path / "studio.db")
    ana, ben = screened(store, "Ana", "Ben")
    studio = Studio(store, SimulatedRack(2))
    results: list[object] = []

    async def set_up(client: str, suit: str) -> None:
        try:
            results.append(
                await studio.set_up_class(
                    "Room 1", "classic_strength", [Arrival(client, suit)], ["Tess"], by="t"
                )
            )
        except SetUpRefused as e:
            results.append(e.reasons)

    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            await nursery.start(studio.run)
            async with trio.open_nursery() as tablets:
                tablets.start_soon(set_up, ana, "SIM-01")
                tablets.start_soon(set_up, ben, "SIM-02")
            assert sum(isinstance(r, list) for r in results) == 1
            refused = next(r for r in results if isinstance(r, list))
            assert refused == ["a class is already on in Room 1: end it first"]
            nursery.cancel_scope.cancel()
    assert len(store.session_records()) == 1


async def test_only_the_last_ended_class_of_each_room_stays_in_memory(tmp_path: Path) -> None:
    """A controller serving for months keeps one ended class per room; the records keep all."""
    store = Store(tmp_path / "studio.db")
    (ana,) = screened(store, "Ana")
    studio = Studio(store, SimulatedRack(2))
    ended = []
    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            await nursery.start(studio.run)
            other = await studio.set_up_class(
                "Room 2", "classic_strength", [Arrival(ana, "SIM-02")], ["Tess"], by="tess"
            )
            for _ in range(3):
                k = await studio.set_up_class(
                    "Room 1", "classic_strength", [Arrival(ana, "SIM-01")], ["Tess"], by="tess"
                )
                assert (await studio.send_command(k, {"do": "stop"}, "test")).ok
                await studio.wait_ended(k)
                ended.append(k.id)
                assert [c.id for c in studio.classes.values() if c.room == "Room 1"] == [k.id]
            assert studio.classes[other.id] is other  # another room's class is untouched
            await studio.send_command(other, {"do": "stop"}, "test")
            await studio.wait_ended(other)
            assert set(studio.classes) == {ended[-1], other.id}
            nursery.cancel_scope.cancel()
    assert [store.class_record(i)["status"] for i in ended] == ["stopped"] * 3


async def test_a_class_whose_session_cannot_be_built_is_not_left_running(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Set-up fails after the records opened the class: the record goes, the room stays free."""
    store = Store(tmp_path / "studio.db")
    (ana,) = screened(store, "Ana")
    rack = SimulatedRack(2)
    studio = Studio(store, rack)
    prepare = rack.prepare

    def suit_gone(*_: object) -> None:
        raise RuntimeError("the suit went away")

    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            await nursery.start(studio.run)
            monkeypatch.setattr(rack, "prepare", suit_gone)
            with pytest.raises(RuntimeError, match="went away"):
                await studio.set_up_class(
                    "Room 1", "classic_strength", [Arrival(ana, "SIM-01")], ["Tess"], by="tess"
                )
            assert store.session_records() == [] and studio.classes == {}
            monkeypatch.setattr(rack, "prepare", prepare)
            k = await studio.set_up_class(
                "Room 1", "classic_strength", [Arrival(ana, "SIM-01")], ["Tess"], by="tess"
            )
            assert [s["class_id"] for s in store.session_records()] == [k.id]
            assert store.class_record(k.id)["status"] == "running"
            nursery.cancel_scope.cancel()
