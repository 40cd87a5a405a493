"""A console that only watches, as a trainer sees it in Debian's Chromium (issue 12).

The studio's live console (`suitctl serve`, a running class), in this test's Trio program:
the test holds the class's `MAX_STEERING` steering connections open through real
WebSockets, so the page opened next only watches. It must say so in its banner from the
server's first message, keep every button off but STOP, and its STOP must stop the class.
Then every watching place is taken too: the page must say why it shows nothing, and its STOP
must still stop the class. The browser runs in tests/browser_watching.py, with checkpoints.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import trio
from hypercorn.config import Config
from hypercorn.trio import serve as hypercorn_serve

from suit_controller.session import ClassState
from suit_controller.web.app import MAX_STEERING, MAX_WATCHING

from .studio_helpers import eventually, logged_in, start_site, started_class
from .test_console import CHROMIUM, HERE, Lines
from .test_console_connections import _open, class_message, results

GUARD_S = 60.0  # a hang guard, not a speed check


@pytest.mark.skipif(
    CHROMIUM is None, reason="Debian's chromium is not installed (make system-deps)"
)
async def test_a_watching_console_says_so_keeps_only_stop_and_its_stop_is_obeyed(
    tmp_path: Path,
) -> None:
    checkpoints: list[str] = []
    states: dict[str, ClassState] = {}
    async with trio.open_nursery() as nursery:
        site, _rack = await start_site(nursery, tmp_path)
        config = Config()
        config.bind = ["127.0.0.1:0"]
        config.accesslog = config.errorlog = None
        binds = await nursery.start(hypercorn_serve, site.app, config)
        base = binds[0]
        tess = await logged_in(site, "Tess")
        cid = await started_class(tess)
        session = site.studio.classes[cid].session
        cookie = tess.cookies["suitctl_session"]
        url = base.replace("http", "ws") + f"/classes/{cid}/ws?token={cid}"
        headers = [("cookie", "suitctl_session=" + cookie)]
        async with trio.open_nursery() as conns:
            steering = []
            for _ in range(MAX_STEERING):
                ws = await conns.start(_open, url, headers)
                assert (await class_message(ws))["steering"] is True
                steering.append(ws)
            console = site.consoles[cid]  # made at the first connection
            proc = await trio.lowlevel.open_process(
                [sys.executable, str(HERE / "browser_watching.py"), base,
                 f"/classes/{cid}/console?token={cid}", cookie],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                cwd=HERE,
            )  # fmt: skip
            assert proc.stdin is not None and proc.stdout is not None
            lines = Lines(proc.stdout)
            try:
                while True:
                    try:
                        msg = json.loads(await lines.next())
                    except AssertionError as e:
                        raise AssertionError(f"{e}, after checkpoints {checkpoints}") from None
                    if "at" not in msg:
                        report: dict[str, Any] = msg
                        break
                    at = msg["at"]
                    checkpoints.append(at)
                    with trio.fail_after(GUARD_S):
                        if at == "watching-estop":
                            states[at] = session.state
                            for do in ("reset", "resume"):  # from a steering console
                                await steering[0].send_message(json.dumps({"do": do}))
                                [answer] = await results(steering[0], 1)
                                assert answer["ok"], answer
                            await eventually(lambda: session.state is ClassState.RUNNING)
                        elif at == "closed":  # every watching place taken by the test
                            await eventually(lambda: console.watching == 0)
                            for _ in range(MAX_WATCHING):
                                ws = await conns.start(_open, url, headers)
                                assert (await class_message(ws))["steering"] is False
                            states["running-before-full"] = session.state
                        elif at == "full-estop":
                            await eventually(lambda: session.state is ClassState.ESTOPPED)
                            states[at] = session.state
                            assert console.watching == MAX_WATCHING  # it took no place
                    await proc.stdin.send_all(b"go\n")
                await proc.wait()
            finally:
                if proc.returncode is None:
                    proc.kill()
                conns.cancel_scope.cancel()
        await tess.aclose()
        nursery.cancel_scope.cancel()
    assert proc.returncode == 0
    assert checkpoints == ["watching-estop", "closed", "full-estop"]
    assert "page_errors" not in report, report.get("page_errors")
    # the server's first message told the page its role; the page says it from across the room
    assert report["role"] == [
        f"Watching only — {MAX_STEERING} consoles already steer this class",
        "The buttons here are off; STOP still stops every suit. "
        "To steer from here, close another console, then reload this page.",
    ]
    assert report["enabled_watching"] == ["estop"]  # every other button is off
    assert states["watching-estop"] is ClassState.ESTOPPED  # a watching STOP is obeyed
    # past every place: the page says why, and its STOP still stops the class
    assert states["running-before-full"] is ClassState.RUNNING
    assert report["full"][0] == "Not shown on this screen"
    assert report["full"][1] == console.full() + " STOP here still stops every suit."
    assert report["full_role_hidden"] is True
    assert console.full() in report["full_alert"]  # role=alert: read out on every device
    assert states["full-estop"] is ClassState.ESTOPPED
    audit = site.accounts.audit_trail(subject=cid)
    assert [e["detail"]["do"] for e in audit if e["detail"].get("do") == "estop"] == ["estop"] * 2
    # axe-core: no violation of any impact, at tablet and phone size; no sideways scroll
    assert {k: v for k, v in report["axe"].items() if v} == {}
    assert len(report["axe"]) == 4
    for key, (scroll_width, inner_width) in report["scroll"].items():
        assert scroll_width <= inner_width, key
