"""The studio's records of its suits' keys, and the `suitctl suits` commands (issue 18)."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio
import trio.testing
from click.testing import CliRunner

from sim.bleak_bumble import BumbleClient
from suit_controller.cli import suitctl
from suit_controller.cli.security import (
    RecordsRefused,
    enroll_into_records,
    forget_in_records,
    keys_for_class,
    rotate_in_records,
)
from suit_controller.enrollment import EnrollmentRefused
from suit_controller.protocol.enrollment import SuitKey
from suit_controller.studio.store import Store, StoreError
from suit_controller.studio.suit_keys import (
    all_suit_keys,
    enrolled_suits,
    forget_suit_key,
    save_suit_key,
    studio_id,
    suit_key,
)

from .test_security import room_of
from .test_store import db, postgres  # noqa: F401  (fixtures: SQLite and PostgreSQL)


@pytest.fixture(autouse=True)
def _key_files_in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A PostgreSQL studio's key file goes under $XDG_DATA_HOME: keep it in the test's dir."""
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("SUITCTL_KEY_FILE", raising=False)


def test_keys_are_sealed_at_rest_under_a_key_file_outside_the_database(
    db: str,  # noqa: F811
) -> None:
    import stat

    from sqlalchemy import select, update

    from suit_controller.studio.schema import suit_keys
    from suit_controller.studio.suit_keys import SEALED, key_file_path

    store = Store(db)
    path = key_file_path(store)
    assert not path.exists()  # made on first use
    k1 = SuitKey(1, bytes(range(32)))
    save_suit_key(store, "F0:5C:0E:00:00:01", k1)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    with store.engine.begin() as c:
        rows = c.execute(select(suit_keys.c.address, suit_keys.c.key)).all()
    [(_, text)] = rows
    assert text.startswith(SEALED) and k1.key.hex() not in text  # never in the clear
    assert suit_key(store, "F0:5C:0E:00:00:01") == k1
    # a sealed key copied to another suit's row does not open there
    save_suit_key(store, "F0:5C:0E:00:00:02", SuitKey(1, bytes(32)))
    with store.engine.begin() as c:
        c.execute(
            update(suit_keys).where(suit_keys.c.address == "F0:5C:0E:00:00:02").values(key=text)
        )
    with pytest.raises(StoreError, match="F0:5C:0E:00:00:02 does not open"):
        suit_key(store, "F0:5C:0E:00:00:02")
    forget_suit_key(store, "F0:5C:0E:00:00:02")
    # a key recorded in the clear by the version before is still read
    with store.engine.begin() as c:
        c.execute(
            suit_keys.insert().values(
                address="F0:5C:0E:00:00:03",
                key_id=4,
                key=bytes(range(1, 33)).hex(),
                enrolled_at="x",
            )
        )
    assert suit_key(store, "f0:5c:0e:00:00:03") == SuitKey(4, bytes(range(1, 33)))
    forget_suit_key(store, "F0:5C:0E:00:00:03")
    # the key file readable by others: refused, with the fix
    path.chmod(0o644)
    with pytest.raises(StoreError, match=r"can be read by others.*chmod 600"):
        suit_key(store, "F0:5C:0E:00:00:01")
    path.chmod(0o600)
    # another key file: the keys do not open; no key file: the way out is said
    original = path.read_text()
    path.write_text(bytes(range(32)).hex())
    with pytest.raises(StoreError, match="not the one it was sealed with"):
        all_suit_keys(store)
    path.unlink()
    with pytest.raises(StoreError, match="missing: restore it from the backup"):
        suit_key(store, "F0:5C:0E:00:00:01")
    assert not path.exists()  # reading never makes a new one
    path.write_text(original)
    path.chmod(0o600)
    assert all_suit_keys(store) == {"F0:5C:0E:00:00:01": k1}
    store.close()


def test_suit_keys_are_kept_rotated_and_forgotten(db: str) -> None:  # noqa: F811
    store = Store(db)
    sid = studio_id(store)
    assert len(sid) == 16 and studio_id(store) == sid  # made once
    k1 = SuitKey(1, bytes(range(32)))
    save_suit_key(store, "f0:5c:0e:00:00:01", k1)
    assert suit_key(store, "F0:5C:0E:00:00:01") == k1
    k2 = SuitKey(2, bytes(range(1, 33)))
    save_suit_key(store, "F0:5C:0E:00:00:01", k2, rotated=True)
    assert all_suit_keys(store) == {"F0:5C:0E:00:00:01": k2}
    [(address, key_id, _, rotated)] = enrolled_suits(store)
    assert (address, key_id) == ("F0:5C:0E:00:00:01", 2) and rotated is not None
    with pytest.raises(StoreError, match="not enrolled"):
        save_suit_key(store, "F0:5C:0E:00:00:02", k2, rotated=True)
    assert (
        forget_suit_key(store, "F0:5C:0E:00:00:01") and suit_key(store, "F0:5C:0E:00:00:01") is None
    )
    assert not forget_suit_key(store, "F0:5C:0E:00:00:01")
    store.close()
    assert Store(db).engine is not None and studio_id(Store(db)) == sid  # kept across opens


async def test_enroll_rotate_and_forget_keep_the_records_and_the_suit_in_step(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    store = Store(tmp_path / "studio.db")
    async with room_of() as room:
        address, fw = room.addresses[0], room.suits[0].firmware
        kw = room.client_kwargs()
        assert await enroll_into_records(store, address, room.suits[0].setup_code, **kw) == 1
        assert fw.auth.key == suit_key(store, address) and fw.auth.studio_id == studio_id(store)
        assert keys_for_class(str(tmp_path / "studio.db")) == {address: fw.auth.key}
        with pytest.raises(RecordsRefused, match="already enrolled in this studio"):
            await enroll_into_records(store, address, room.suits[0].setup_code, **kw)
        assert await rotate_in_records(store, address, **kw) == 2
        assert fw.auth.key == suit_key(store, address)
        # another studio's records: refused by the suit, with the reason
        other = Store(tmp_path / "other.db")
        phone = await room.phone("F0:5C:0E:0A:00:02")
        with pytest.raises(EnrollmentRefused, match="enrolled in another studio"):
            await enroll_into_records(
                other,
                address,
                room.suits[0].setup_code,
                backend=BumbleClient,
                bumble_central=phone,
            )
        assert suit_key(other, address) is None
        note = await forget_in_records(store, address, **kw)
        assert "forgotten" in note and not fw.auth.enrolled and suit_key(store, address) is None
        # the suit is free: the other studio enrolls it now
        await enroll_into_records(
            other, address, room.suits[0].setup_code, backend=BumbleClient, bumble_central=phone
        )
        assert fw.auth.studio_id == studio_id(other)


def test_suits_commands_say_what_is_wrong(tmp_path: Path) -> None:
    dbf = str(tmp_path / "studio.db")
    r = CliRunner().invoke(suitctl, ["suits", "enroll", "F0:5C:0E:00:00:01", "--setup-code", "12"])
    assert r.exit_code == 2 and "6 digits" in r.output
    r = CliRunner().invoke(suitctl, ["suits", "rotate-key", "F0:5C:0E:00:00:01", "--db", dbf])
    assert r.exit_code == 1 and "not enrolled in this studio" in r.output
    save_suit_key(Store(dbf), "F0:5C:0E:00:00:01", SuitKey(3, bytes(32)))
    r = CliRunner().invoke(suitctl, ["suits", "enrolled", "--db", dbf])
    assert r.exit_code == 0 and "F0:5C:0E:00:00:01" in r.output and bytes(32).hex() not in r.output
    r = CliRunner().invoke(
        suitctl, ["suits", "forget", "F0:5C:0E:00:00:01", "--records-only", "--db", dbf]
    )
    assert r.exit_code == 0 and "factory reset" in r.output
    assert all_suit_keys(Store(dbf)) == {}


def test_suits_enroll_from_the_command_line_over_bumble(tmp_path: Path) -> None:
    from sim.ble_suit import suit_address
    from sim.suit import SimulatedSuit

    dbf = str(tmp_path / "studio.db")
    address, code = suit_address(1), SimulatedSuit("SIM-02").setup_code
    wrong = f"{(int(code) + 1) % 10**6:06d}"
    args = ["suits", "enroll", address, "--simulated", "2", "--db", dbf, "--setup-code"]
    r = CliRunner().invoke(suitctl, [*args, wrong])
    assert r.exit_code == 1 and "pairing failed" in r.output, r.output
    assert all_suit_keys(Store(dbf)) == {}
    r = CliRunner().invoke(suitctl, [*args, code])
    assert r.exit_code == 0 and f"suit {address} enrolled (key 1)" in r.output, r.output
    assert list(all_suit_keys(Store(dbf))) == [address]
    r = CliRunner().invoke(suitctl, [*args, code])  # the records already hold a key
    assert r.exit_code == 1 and "already enrolled in this studio" in r.output


async def test_a_studio_class_signs_with_the_key_from_the_records(tmp_path: Path) -> None:
    """`suitctl serve`: a class on an enrolled suit is driven with its recorded key."""
    from sim.studio_suits import SimulatedRack
    from suit_controller.protocol.enrollment import encode_enroll, new_suit_key
    from suit_controller.studio.rooms import Arrival, Studio

    from .test_studio_rooms import screened

    store = Store(tmp_path / "studio.db")
    (ana,) = screened(store, "Ana")
    rack = SimulatedRack(2)
    key = new_suit_key()
    fw = rack.suit("SIM-01").firmware
    assert fw.auth.handle(encode_enroll(studio_id(store), key)) is None
    save_suit_key(store, "SIM-01", key)
    studio = Studio(store, rack)
    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            await nursery.start(studio.run)
            klass = await studio.set_up_class(
                "Room 1", "classic_strength", [Arrival(ana, "SIM-01")], ["Tess"], by="tess"
            )
            assert (await studio.send_command(klass, {"do": "start"}, "test")).ok
            await trio.sleep(1.0)
            assert fw.state.name == "ARMED" and fw.last_counter > 10
            assert fw.auth.refused_frames == 0 and fw.bad_frames == 0  # every frame signed
            assert (await studio.send_command(klass, {"do": "stop"}, "test")).ok
            await studio.wait_ended(klass)
            assert not fw.applied_mA.any()
            nursery.cancel_scope.cancel()
    store.close()


def test_the_cli_refuses_a_new_key_or_none_for_a_suit_in_an_open_class(tmp_path: Path) -> None:
    """M4: the records know the open classes; a key changed mid-class drops the client."""
    from sqlalchemy import update

    from suit_controller.studio.schema import classes
    from suit_controller.studio.store import RosterEntry

    dbf = str(tmp_path / "studio.db")
    store = Store(dbf)
    key = SuitKey(3, bytes(32))
    save_suit_key(store, "F0:5C:0E:00:00:01", key)
    entry = RosterEntry(None, "Ana", "f0:5c:0e:00:00:01", None, False, False)
    store.open_class("classic_strength", [entry], simulated=False, room="Room 1")
    for args in (["rotate-key"], ["forget"], ["forget", "--records-only"]):
        cmd = ["suits", args[0], "F0:5C:0E:00:00:01", *args[1:], "--db", dbf]
        r = CliRunner().invoke(suitctl, cmd)
        assert r.exit_code == 1, r.output
        assert "is in Room 1's class now; end the class first" in r.output
        assert "Traceback" not in r.output
    assert all_suit_keys(Store(dbf)) == {"F0:5C:0E:00:00:01": key}  # nothing changed
    with store.engine.begin() as c:
        c.execute(update(classes).values(status="finished", ended_at="2026-01-01T00:00:00Z"))
    r = CliRunner().invoke(
        suitctl, ["suits", "forget", "F0:5C:0E:00:00:01", "--records-only", "--db", dbf]
    )
    assert r.exit_code == 0 and all_suit_keys(Store(dbf)) == {}
