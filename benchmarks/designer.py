"""The studio while the designer simulates: a room's tick lateness and a console's push gaps.

One room runs a class of two simulated clients in the studio program; for
`seconds` its tick lateness is the baseline. Then the designer's try-out of
the 35-minute benchmark class for 20 clients is started through the API (it
runs in a separate process) and, until it is done, the room's ticks and the
gaps between the class's console snapshots (built ten times a second, as the
console pushes them) are measured.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import trio

from benchmarks.common import HERE, percentiles_ms
from sim.studio_suits import SimulatedRack
from suit_controller.snapshot import ClassSnapshot
from suit_controller.studio.accounts import Accounts
from suit_controller.studio.rooms import Arrival, Studio
from suit_controller.studio.screening import CONTRAINDICATIONS
from suit_controller.studio.site import StudioSite
from suit_controller.studio.store import Store

KEYS = [c.key for c in CONTRAINDICATIONS]


async def _run(tmp: Path, seconds: float) -> dict[str, Any]:
    store = Store(tmp / "studio.db")
    accounts = Accounts(store)
    accounts.add("Mia", "manager", "bench-password")
    ids = []
    for i in range(2):
        record = store.add_client(f"Client {i}")
        store.add_screening(record.id, "Mia", set(), set(), KEYS)
        ids.append(record.id)
    studio = Studio(store, SimulatedRack(2))
    site = StudioSite(studio, accounts)
    out: dict[str, Any] = {"simulated_clients": 20, "class_min": 35.0}
    async with trio.open_nursery() as nursery:
        await nursery.start(studio.run)
        arrivals = [Arrival(ids[k], f"SIM-{k + 1:02d}") for k in range(2)]
        room = await studio.set_up_class("Room 1", "classic_strength", arrivals, ["Mia"], by="b")
        await studio.send_command(room, {"do": "start"}, "bench")
        await trio.sleep(seconds)
        out["ticks_before"] = percentiles_ms(room.session.lateness_s[-int(seconds * 40) :])
        mark = len(room.session.lateness_s)
        transport = httpx.ASGITransport(app=site.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as c:
            r = await c.post("/api/v1/login", json={"name": "Mia", "password": "bench-password"})
            c.headers["x-csrf-token"] = r.json()["csrf"]
            text = (HERE / "class35.yaml").read_text(encoding="utf-8")
            t0 = time.perf_counter()
            r = await c.post("/api/v1/designer/runs", json={"yaml": text, "clients": 20})
            run = site.api.designer.runs[r.json()["id"]]
            gaps: list[float] = []
            last = time.perf_counter()
            while not run.done.is_set():  # the console's pace: a snapshot every 0.1 s
                await trio.sleep(0.1)
                ClassSnapshot.of(room.session).as_json()
                now = time.perf_counter()
                gaps.append(now - last)
                last = now
            out["run_s"] = round(time.perf_counter() - t0, 2)
            out["run_ok"] = run.result is not None
        out["ticks_during"] = percentiles_ms(room.session.lateness_s[mark:])
        out["console_gap"] = percentiles_ms(gaps)
        out["target_console_gap_max_ms"] = 1000
        await studio.send_command(room, {"do": "stop"}, "bench")
        await studio.wait_ended(room)
        nursery.cancel_scope.cancel()
    store.close()
    return out


def run_designer_responsiveness(seconds: float = 3.0) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        return trio.run(_run, Path(tmp), seconds)
