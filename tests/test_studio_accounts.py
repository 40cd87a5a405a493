"""Accounts: scrypt hashes, logins, read-only tokens, one-time links, `suitctl users add`,
the first start without accounts, and the schema-4 migration."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import inspect

from suit_controller.cli.main import suitctl
from suit_controller.studio.accounts import Accounts, check_password, hash_password
from suit_controller.studio.migrations import current_version, migrate
from suit_controller.studio.schema import SCHEMA_VERSION
from suit_controller.studio.store import Store, StoreError, open_engine


def test_passwords_are_salted_scrypt_hashes() -> None:
    a, b = hash_password("correct horse"), hash_password("correct horse")
    assert a != b and a.startswith("scrypt$") and "correct" not in a
    assert check_password("correct horse", a) and not check_password("wrong horse", a)
    assert not check_password("x", "md5$abc") and not check_password("x", "garbage")


def test_logins_tokens_and_links(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.db")
    accounts = Accounts(store)
    mia = accounts.add("Mia", "manager", "long enough")
    for bad in (("Mia", "trainer", "long enough"), ("Zoe", "boss", "long enough"),
                ("Zoe", "trainer", "short"), ("", "trainer", "long enough")):  # fmt: skip
        try:
            accounts.add(*bad)
        except StoreError:
            continue
        raise AssertionError(f"{bad} was accepted")
    assert accounts.verify("Mia", "long enough") == mia
    assert accounts.verify("Mia", "wrong") is None and accounts.verify("Nobody", "x") is None
    browser = accounts.log_in(mia)
    login = accounts.login(browser.token)
    assert login is not None and not login.read_only and login.csrf == browser.csrf
    token = accounts.api_token(mia, "crm")
    reader = accounts.login(token.token)
    assert reader is not None and reader.read_only and reader.csrf is None
    link = accounts.login_link(mia)
    assert accounts.login(link) is None  # a link is no login until spent
    spent = accounts.use_link(link)
    assert spent is not None and accounts.login(spent.token) is not None
    assert accounts.use_link(link) is None  # once only
    accounts.log_out(browser.token)
    assert accounts.login(browser.token) is None
    with store.engine.begin() as c:  # only hashes are kept
        stored = " ".join(str(r) for r in c.exec_driver_sql("SELECT * FROM logins").all())
    assert token.token not in stored and spent.token not in stored
    trail = accounts.audit_trail()
    assert [e["action"] for e in trail] == ["api_token_added", "account_added"]


def test_users_add_reads_the_password_file(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    pw = tmp_path / "pw"
    pw.write_text("a fine password\n")
    runner = CliRunner()
    args = ["users", "add", "--role", "manager", "Mia", "--password-file", str(pw), "--db", str(db)]
    r = runner.invoke(suitctl, args)
    assert r.exit_code == 0 and "added manager Mia" in r.output
    r = runner.invoke(suitctl, args)
    assert r.exit_code == 1 and "already an account named 'Mia'" in r.output
    pw.write_text("short\n")
    r = runner.invoke(suitctl, [*args[:4], "Zoe", *args[5:]])
    assert r.exit_code == 1 and "at least 8 characters" in r.output
    r = runner.invoke(suitctl, ["users", "list", "--db", str(db)])
    assert "Mia\tmanager" in r.output
    store = Store(db)
    assert Accounts(store).verify("Mia", "a fine password") is not None


def test_first_start_without_accounts_asks_for_a_manager(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "suit_controller", "serve", "--db", str(tmp_path / "s.db")],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 1
    assert "suitctl users add --role manager" in out.stderr


def test_a_version_3_database_gains_the_accounts_and_keeps_its_records(tmp_path: Path) -> None:
    path = tmp_path / "v3.db"
    engine = open_engine(path)
    migrate(engine, target=3)
    engine.dispose()
    with open_engine(path).begin() as c:
        assert current_version(c) == 3
        assert "users" not in inspect(c).get_table_names()
        c.exec_driver_sql(  # a client, as version 3 stores one
            "INSERT INTO clients (uuid, name, notes, created_at) "
            "VALUES ('11111111-1111-1111-1111-111111111111', 'Ana', '', '2026-01-01')"
        )
    store = Store(path)
    with store.engine.begin() as c:
        assert current_version(c) == SCHEMA_VERSION == 6
        assert {"users", "logins", "audit_log"} <= set(inspect(c).get_table_names())
    assert store.client("Ana").id == "11111111-1111-1111-1111-111111111111"
    Accounts(store).add("Mia", "manager", "long enough")
    assert Accounts(store).count() == 1


def test_every_clients_history_in_one_read_matches_each_one_read(tmp_path: Path) -> None:
    """`Store.histories` (the clients list) agrees with `Store.history` client by client."""
    import datetime as dt

    from suit_controller.studio.recorder import RosterEntry
    from suit_controller.studio.screening import CONTRAINDICATIONS
    from suit_controller.studio.store import ChannelTotals

    keys = [c.key for c in CONTRAINDICATIONS]
    store = Store(tmp_path / "s.db")
    ana, ben, cem = (store.add_client(n) for n in ("Ana", "Ben", "Cem"))
    then = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
    store.add_screening(ana.id, "Tess", {"pregnancy"}, set(), keys, taken_at=then)
    store.add_screening(ana.id, "Tess", set(), set(), keys)  # the latest one counts
    store.add_screening(ben.id, "Tess", {"hypertension"}, {"hypertension"}, keys)
    for simulated, stim, when in ((False, 60.0, then), (False, 0.0, None), (True, 30.0, None)):
        roster = [RosterEntry(ana.id, "Ana", "S1", "Tess", False, False),
                  RosterEntry(ben.id, "Ben", "S2", "Tess", False, False)]  # fmt: skip
        opened = store.open_class("w", roster, simulated=simulated, now=when)
        totals = [
            {"quads": ChannelTotals(0.0, stim, 20.0, 1)},
            {"quads": ChannelTotals(0, 0, 0, 0)},
        ]
        store.record_progress(opened, totals, [], 1.0, ended="stopped")
    together = store.histories()
    assert set(together) == {ana.id, ben.id, cem.id}
    for c in (ana, ben, cem):
        assert together[c.id] == store.history(c.id), c.name
    assert together[ana.id].sessions == 1 and together[ben.id].sessions == 0
    assert together[cem.id].screening is None and together[cem.id].last_session_at is None


def test_first_start_asks_for_the_manager_at_the_terminal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from suit_controller.cli.serve import first_manager

    store = Store(tmp_path / "s.db")
    with CliRunner().isolation(input="Mia\nlong enough\nlong enough\n"):
        monkeypatch.setattr(sys.stdin, "isatty", lambda: True)
        assert first_manager(store, 0, "127.0.0.1", 8080) is None
    assert Accounts(store).verify("Mia", "long enough") is not None
    assert [a.role for a in Accounts(store).accounts()] == ["manager"]
    assert first_manager(store, 4, "127.0.0.1", 8080) is None  # accounts exist: no demo link
