"""The trainer's console served by `sim run --web`: the access token on the LAN.

The page itself is driven in Chromium by tests/test_console.py."""

from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from .simclass_helpers import SHORT

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
HERE = Path(__file__).parent
LONG = SHORT.replace("duration: 40s", "duration: 3m")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_class(tmp: Path, web: str, *extra: str) -> tuple[subprocess.Popen[str], str]:
    workout = tmp / "long.yaml"
    workout.write_text(LONG)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "suit_controller",
            "sim",
            "run",
            str(workout),
            "--clients",
            "2",
            "--speed",
            "2",
            "--intensity",
            "20",
            "--web",
            web,
            "--out",
            str(tmp / "out"),
            *extra,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert proc.stdout is not None
    deadline = time.monotonic() + 60
    for line in proc.stdout:
        if m := re.search(r"trainer's console: (\S+)", line):
            return proc, m.group(1)
        if time.monotonic() > deadline:
            break
    proc.kill()
    raise AssertionError("the console did not start")


def stop(proc: subprocess.Popen[str]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()


def test_bound_to_the_lan_the_console_needs_its_token(tmp_path: Path) -> None:
    port = free_port()
    proc, url = start_class(tmp_path, f"0.0.0.0:{port}")
    try:
        token = url.split("token=")[1]
        with pytest.raises(urllib.error.HTTPError) as info:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10)
        assert info.value.code == 403
        with pytest.raises(urllib.error.HTTPError):
            urllib.request.urlopen(f"http://127.0.0.1:{port}/?token=wrong", timeout=10)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/?token={token}", timeout=10) as r:
            assert r.status == 200 and b"Emergency stop" in r.read()
    finally:
        stop(proc)


XSS_NAME = '<img src=x onerror="window.__pwned = 1">'
XSS_SCRIPT = """async () => {
  const until = (check) => new Promise((resolve) => {
    const timer = setInterval(() => { if (check()) { clearInterval(timer); resolve(); } }, 50);
  });
  await until(() => document.getElementById("client-0"));
  const probe = new Image();  // let a broken image's onerror, had one been made, fire first
  await new Promise((resolve) => { probe.onerror = resolve; probe.src = "/nothing-here"; });
  await new Promise((resolve) => setTimeout(resolve, 300));
  // a client named with a lone surrogate, through the console's own WebSocket
  const answer = new Promise((resolve) => ws.addEventListener("message", (ev) => {
    const msg = JSON.parse(ev.data);
    if (msg.type === "result" && msg.id === "s1") { resolve(msg); }
  }));
  ws.send('{"id": "s1", "do": "set_intensity", "client": "\\\\ud800", "mA": 5}');
  const refused = await answer;
  await until(() => state && state.plan_t > 12);
  return {
    refused: refused,
    state_after: state.state,
    pwned: window.__pwned === 1,
    images: document.querySelectorAll("#clients img").length,
    title: document.querySelector("#client-0 h2").textContent,
  };
}"""


@pytest.mark.skipif(
    CHROMIUM is None, reason="Debian's chromium is not installed (make system-deps)"
)
def test_class7_a_client_named_in_html_is_shown_as_text_and_runs_nothing_class1_surrogate(
    tmp_path: Path,
) -> None:
    from suit_controller.studio.screening import CONTRAINDICATIONS
    from suit_controller.studio.store import Store

    db = tmp_path / "studio.db"
    store = Store(db)
    store.add_client(XSS_NAME)
    store.add_screening(XSS_NAME, "Tom", set(), set(), [c.key for c in CONTRAINDICATIONS])
    store.close()
    port = free_port()
    proc, url = start_class(
        tmp_path, f"127.0.0.1:{port}", "--db", str(db), "--client", XSS_NAME, "--trainer", "Tom"
    )
    try:
        out = subprocess.run(
            [sys.executable, str(HERE / "browser.py"), url, XSS_SCRIPT],
            capture_output=True,
            text=True,
            timeout=180,
            cwd=HERE,
        )
        assert out.returncode == 0, out.stdout + out.stderr
        report = json.loads(out.stdout.strip().splitlines()[-1])
    finally:
        stop(proc)
    assert report["pwned"] is False and report["images"] == 0
    assert report["title"].startswith(XSS_NAME)
    assert report["refused"]["ok"] is False
    assert "no client named" in report["refused"]["message"]
    assert report["state_after"] == "running"  # the class went on


async def test_rate_limits_are_per_websocket_a_flooding_page_starves_no_other(
    tmp_path: Path,
) -> None:
    """Issue 12's precision: rate limits are per interface connection (here each WebSocket)."""
    import trio
    from trio_websocket import open_websocket_url

    port = free_port()
    proc, url = await trio.to_thread.run_sync(start_class, tmp_path, f"127.0.0.1:{port}")
    ws_url = url.replace("http://", "ws://").split("?")[0].rstrip("/") + "/ws"
    if "token=" in url:
        ws_url += "?token=" + url.split("token=")[1]
    try:
        async with (
            open_websocket_url(ws_url) as flooder,
            open_websocket_url(ws_url) as other,
        ):

            async def results(ws: Any, ids: set[str]) -> dict[str, Any]:
                got: dict[str, Any] = {}
                with trio.fail_after(60):
                    while not ids <= got.keys():
                        doc = json.loads(await ws.get_message())
                        if doc.get("type") == "result" and doc.get("id") in ids:
                            got[doc["id"]] = doc
                return got

            theirs: dict[str, Any] = {}
            refused_once = trio.Event()

            async def drain() -> None:  # the flooding page reads its answers
                while True:
                    doc = json.loads(await flooder.get_message())
                    if doc.get("type") == "result":
                        theirs[doc["id"]] = doc
                        if not doc["ok"]:
                            refused_once.set()

            async def flood() -> None:  # far above the limit (40 at once, 20 a second), on and on
                for k in range(3000):
                    await flooder.send_message(
                        json.dumps({"id": f"a{k}", "do": "set_intensity", "client": 1, "mA": 10})
                    )
                    if k % 20 == 19:
                        await trio.sleep(0.05)

            async with trio.open_nursery() as nursery:
                nursery.start_soon(drain)
                nursery.start_soon(flood)
                with trio.fail_after(60):
                    await refused_once.wait()
                for k in range(3):  # while the flood goes on, the other page is still heard
                    await other.send_message(
                        json.dumps(
                            {"id": f"b{k}", "do": "set_intensity", "client": 2, "mA": 12 + k}
                        )
                    )
                mine = await results(other, {f"b{k}" for k in range(3)})
                nursery.cancel_scope.cancel()
    finally:
        await trio.to_thread.run_sync(stop, proc)
    assert all(r["ok"] for r in mine.values()), mine  # the other page is not starved
    refused = [r for r in theirs.values() if not r["ok"]]
    assert refused and all("more than 40 commands at once" in r["message"] for r in refused)
