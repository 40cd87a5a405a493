"""What only records a command (who sent it, its audit line) never fails or holds up the command."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import pytest
import trio
import trio.testing

from suit_controller.studio.site import ask_the_records, in_thread

from .studio_helpers import client, eventually, logged_in, start_site, started_class


async def test_the_records_answer_is_passed_on() -> None:
    async def answer() -> int:
        return await in_thread(lambda: 7)

    assert await ask_the_records("look-up", answer, otherwise=0) == 7


async def test_a_records_failure_is_logged_and_never_raised(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def broken() -> int:
        def locked() -> int:
            raise RuntimeError("database is locked")

        return await in_thread(locked)

    with caplog.at_level(logging.WARNING):
        assert await ask_the_records("audit of class C", broken, otherwise=-1) == -1
    assert "audit of class C: database is locked" in caplog.text


async def test_records_that_do_not_answer_are_left_behind(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    """A records call that hangs is abandoned at the bound (virtual time: nothing is timed)."""
    release = threading.Event()

    async def hung() -> int:
        return await in_thread(release.wait)  # a thread that never returns by itself

    try:
        with caplog.at_level(logging.WARNING):
            started = trio.current_time()
            assert await ask_the_records("login check", hung, otherwise=5) == 5
            assert trio.current_time() - started == pytest.approx(2.0)
        assert "login check: the records did not answer in time" in caplog.text
    finally:
        release.set()


async def test_a_cancellation_from_outside_still_goes_through() -> None:
    """Only the records' own failures are caught: the caller's cancel is never swallowed."""
    reached_after = False
    with trio.move_on_after(0) as scope:  # cancelled at its first checkpoint

        async def slow() -> None:
            await trio.sleep_forever()

        await ask_the_records("audit", slow, otherwise=None)
        reached_after = True
    assert scope.cancelled_caught and not reached_after


async def test_an_estop_is_audited_with_who_sent_it_and_answered_when_auditing_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Through the API: the e-stop's audit line names the login (or 'not logged in'); an
    audit that raises changes nothing for the e-stop (200, the suit stopped)."""
    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            site, rack = await start_site(nursery, tmp_path)
            tess = await logged_in(site, "Tess")
            mia = await logged_in(site, "Mia")
            cid = await started_class(tess)
            url = f"/api/v1/classes/{cid}/commands"
            suit = rack.suit("SIM-01").firmware

            async def rearmed() -> None:
                for cmd in ("reset", "resume"):
                    assert (await tess.post(url, json={"do": cmd})).status_code == 200
                await eventually(lambda: suit.state.name == "ARMED")

            await eventually(lambda: suit.state.name == "ARMED")
            assert (await tess.post(url, json={"do": "estop"})).status_code == 200
            anyone = client(site)
            await rearmed()
            assert (await anyone.post(url, json={"do": "estop"})).status_code == 200
            entries = (await mia.get("/api/v1/audit")).json()["entries"]
            estops = [e["who"] for e in entries
                      if e["subject"] == cid and e["detail"].get("do") == "estop"]  # fmt: skip
            assert estops[:2] == ["not logged in", "Tess"]  # newest first

            await rearmed()

            def refuse(*_: object) -> None:
                raise RuntimeError("disk full")

            monkeypatch.setattr(site.accounts, "audit", refuse)
            r = await tess.post(url, json={"do": "estop"})
            assert r.status_code == 200 and r.json()["command"] == "estop", r.text
            assert suit.state.name == "STOPPED" and not suit.applied_mA.any()
            for c in (tess, mia, anyone):
                await c.aclose()
            nursery.cancel_scope.cancel()
