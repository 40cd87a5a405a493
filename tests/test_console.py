"""The live console in Debian's Chromium, against a simulated class in this test's Trio program.

The console is mounted under a room's path, as the studio server mounts it, so the
page's URLs (static files, WebSocket) must all be relative.

The browser runs in a subprocess (tests/browser_console.py) and stops at checkpoints;
here, between them, the simulated suits' firmware is read: a + must raise that area at
that client's suit, and every e-stop (button, Escape, and one asked for while the
controller was unreachable) must leave every suit STOPPED with every output at zero.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import trio
from hypercorn.config import Config
from hypercorn.trio import serve as hypercorn_serve
from starlette.applications import Starlette
from starlette.routing import Mount

from sim.simclass import SimulatedClass
from suit_controller.clients import ClientSpec
from suit_controller.protocol.frames import SuitState
from suit_controller.session import ClassState
from suit_controller.web.app import Console

from .simclass_helpers import QUADS, SHORT, short_plan
from .test_web import free_port

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
HERE = Path(__file__).parent
XSS = "<img src=x onerror=window.__x=1>"
#: The short class with a quick warm-up and long exercises: the suits deliver within seconds.
LONG_SQUAT = SHORT.replace("duration: 40s", "duration: 3m").replace(
    "duration: 10s}", "duration: 2s}", 1
)
GUARD_S = 30.0  # a hang guard around waits for the suits, not a speed check


class Lines:
    """Lines from a process's stdout, read in Trio."""

    def __init__(self, stream: trio.abc.ReceiveStream) -> None:
        self.stream, self.buf = stream, b""

    async def next(self) -> str:
        while b"\n" not in self.buf:
            chunk = await self.stream.receive_some(65536)
            if not chunk:
                raise AssertionError("the browser script ended early")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return line.decode()


@pytest.mark.skipif(
    CHROMIUM is None, reason="Debian's chromium is not installed (make system-deps)"
)
async def test_the_console_in_every_state_at_tablet_and_phone_size(tmp_path: Path) -> None:
    sc = SimulatedClass(
        short_plan(LONG_SQUAT),
        3,
        clients=[ClientSpec(name, intensity_mA=20.0) for name in ("Ana", "Ben", XSS)],
        body=False,
    )
    firmware = [s.firmware for s in sc.suits]
    peak = [np.zeros(len(sc.plan.layout)) for _ in sc.suits]
    frame = [trio.Event()]  # set at every frame a suit handles

    def watch(i: int) -> Any:
        def changed(suit: Any) -> None:
            np.maximum(peak[i], suit.firmware.applied_mA, out=peak[i])
            frame[0].set()

        return changed

    async def until(check: Any) -> None:
        """Wait until `check()` holds at the suits (re-checked at each frame they handle)."""
        with trio.fail_after(GUARD_S):
            while not check():
                frame[0] = trio.Event()
                await frame[0].wait()

    for i, s in enumerate(sc.suits):
        s.on_change = watch(i)

    def all_stopped() -> bool:
        return all(f.state is SuitState.STOPPED and not f.applied_mA.any() for f in firmware)

    def delivering() -> bool:
        return any(f.applied_mA.any() for f in firmware)

    def estop_events() -> int:
        return sum(e.kind == "estop" for e in sc.session.events.events)

    estops: list[int] = []
    port = free_port()
    # SUITCTL_SCREENSHOTS=docs refreshes the README's pictures
    shots = Path(os.environ.get("SUITCTL_SCREENSHOTS", str(tmp_path)))
    checkpoints: list[str] = []
    async with trio.open_nursery() as nursery:
        nursery.start_soon(sc.run)

        async def serve(*, task_status: trio.TaskStatus[trio.CancelScope]) -> None:
            """The console mounted under a room's path, as the studio server mounts it."""
            app = Starlette(routes=[Mount("/rooms/1/console", Console(sc.session, None).app)])
            config = Config()
            config.bind = [f"127.0.0.1:{port}"]
            config.accesslog = config.errorlog = None
            with trio.CancelScope() as scope:
                async with trio.open_nursery() as inner:
                    await inner.start(hypercorn_serve, app, config)
                    task_status.started(scope)

        serving: trio.CancelScope = await nursery.start(serve)
        url = f"http://127.0.0.1:{port}/rooms/1/console/"
        proc = await trio.lowlevel.open_process(
            [
                sys.executable,
                str(HERE / "browser_console.py"),
                url,
                str(shots),
                *filter(None, [os.environ.get("SUITCTL_CONSOLE_STATES")]),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            cwd=HERE,
        )
        assert proc.stdin is not None and proc.stdout is not None
        lines = Lines(proc.stdout)
        try:
            while True:
                try:
                    msg = json.loads(await lines.next())
                except AssertionError as e:
                    raise AssertionError(f"{e}, after checkpoints {checkpoints}") from None
                if "at" not in msg:
                    report = msg
                    break
                at = msg["at"]
                checkpoints.append(at)
                if at == "ready":
                    sc.suits[1].drop_link()
                elif at == "seen-lost":
                    sc.suits[1].restore_link()
                elif at == "plus":  # Ana's Thighs (front) reach 21 mA at her suit, no one else's
                    await until(lambda: firmware[0].applied_mA[QUADS] == 21.0)
                    assert peak[1][QUADS] <= 20.0 and peak[2][QUADS] <= 20.0
                elif at == "delivering":
                    await until(delivering)
                elif at in ("estop-button", "estop-key", "estop-after-reconnect"):
                    await until(all_stopped)
                    assert sc.session.state is ClassState.ESTOPPED
                    estops.append(estop_events())
                elif at == "space":  # the step became 2: 21 -> 23 mA at the suit, no stop
                    assert sc.session.state is ClassState.RUNNING
                    assert estop_events() == 1
                    await until(lambda: firmware[0].applied_mA[QUADS] == 23.0)
                elif at == "before-lost":
                    await until(delivering)
                    serving.cancel()  # the controller's web server is gone; the class runs on
                elif at == "estop-while-lost":
                    assert sc.session.state is ClassState.RUNNING  # nothing reached the engine
                    serving = await nursery.start(serve)  # the controller answers again
                await proc.stdin.send_all(b"go\n")
            await proc.wait()
        finally:
            if proc.returncode is None:
                proc.kill()
            nursery.cancel_scope.cancel()
    assert proc.returncode == 0
    assert checkpoints[-1] == "estop-after-reconnect"
    assert estops == [1, 2, 3]  # each stop reached the engine once; Space sent none
    assert "page_errors" not in report, report.get("page_errors")
    # the client named like HTML shows as text and runs nothing
    assert report["names"] == ["Ana", "Ben", XSS]
    assert report["xss"] == [True, True] and report["img_in_page"] == 0
    # body areas in the trainers' words and order, legs first
    assert report["regions"] == ["Legs", "Trunk (front)", "Trunk (back)", "Shoulders & arms"]
    assert report["areas"][:4] == ["Thighs (front)", "Thighs (back)", "Glutes", "Calves"]
    assert "Chest L" in report["areas"] and "chest_left" not in report["areas"]
    # a dropped suit: lost on its card, a message in words, dismissable
    assert report["lost_card"].endswith("Lost — reconnecting")
    assert report["lost_health"] == "Link: lost"
    # link health: a quiet verdict, the figures (frames a second, round trip) when opened
    health = report["health"]
    assert health["verdict"] in ("Link: good", "Link: weak — bring the suit closer to the tablet")
    assert not health["shown_closed"] and health["shown_open"]
    assert re.fullmatch(r"\d+ frames a second · answers in \d+ ms", health["figures"]), health
    assert any(w.startswith("Warning: Ben's suit lost its connection") for w in report["warnings"])
    assert not any("SIM-" in w or "link_lost" in w for w in report["warnings"])
    assert "Ben's suit lost its connection" in report["announced_lost"]  # aria-live
    assert report["dismissed"][1] == report["dismissed"][0] - 1
    # buttons reflect the state
    assert report["buttons_running"] == ["pause", "skip"]
    assert report["buttons_paused"] == ["resume", "skip"]
    assert report["buttons_estopped"] == ["reset"]
    assert report["set_after_plus"] == "21 mA" and report["set_after_space"] == "23 mA"
    assert report["set_in_percent"] == "19 %"  # 23 mA of 120 mA
    assert report["step_checked"] and report["state_after_space"] == "running"
    assert report["banner_estopped"].startswith("STOPPED")
    assert "Emergency stop" in report["alert_estopped"]  # role=alert, on every device
    assert report["banner_lost"] == "Controller lost"
    assert set(report["lost_cards"]) == {"Unknown — controller lost"}
    assert "being sent again" in report["banner_lost_estop"]
    # axe-core: no violation of any impact, in every state, at both sizes
    assert set(report["axe"]) == {
        f"{state}@{size}"
        for state in ("running", "paused", "estopped", "lost")
        for size in ("tablet", "phone")
    }
    assert {k: v for k, v in report["axe"].items() if v} == {}
    # no sideways scrolling on the phone, in any state
    for key, (scroll_width, inner_width) in report["scroll"].items():
        assert scroll_width <= inner_width, key
    assert (shots / "console-tablet.png").stat().st_size > 20_000
