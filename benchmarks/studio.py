"""The studio server under requests: API latency, and what serving it costs two rooms' ticks.

Two rooms with two simulated clients each run in one Trio program with the
studio app; for `seconds` of wall time the pages' two busiest requests (a
class's live snapshot, the clients list with today's decisions) are sent in a
loop through the real ASGI app, in the same program (the worst case for the
ticks: no network stack in between). The same classes run as long without
requests for the baseline.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import trio

from benchmarks.common import percentiles_ms
from sim.studio_suits import SimulatedRack
from suit_controller.studio.accounts import Accounts
from suit_controller.studio.rooms import Arrival, Studio
from suit_controller.studio.screening import CONTRAINDICATIONS
from suit_controller.studio.site import StudioSite
from suit_controller.studio.store import Store

KEYS = [c.key for c in CONTRAINDICATIONS]


async def _run(tmp: Path, seconds: float, n_clients: int) -> dict[str, Any]:
    store = Store(tmp / "studio.db")
    accounts = Accounts(store)
    accounts.add("Mia", "manager", "bench-password")
    ids = []
    for i in range(n_clients):
        record = store.add_client(f"Client {i:03d}")
        store.add_screening(record.id, "Mia", set(), set(), KEYS)
        ids.append(record.id)
    studio = Studio(store, SimulatedRack(4))
    site = StudioSite(studio, accounts)
    out: dict[str, Any] = {"clients_in_records": n_clients, "rooms": 2, "suits": 4}
    async with trio.open_nursery() as nursery:
        await nursery.start(studio.run)
        rooms = []
        for r in range(2):
            arrivals = [Arrival(ids[2 * r + k], f"SIM-{2 * r + k + 1:02d}") for k in range(2)]
            k = await studio.set_up_class(
                f"Room {r + 1}", "classic_strength", arrivals, ["Mia"], by="bench"
            )
            await studio.send_command(k, {"do": "start"}, "bench")
            rooms.append(k)
        await trio.sleep(seconds)
        base = [x for k in rooms for x in k.session.lateness_s[-int(seconds * 40) :]]
        out["ticks_without_requests"] = percentiles_ms(base)
        marks = [len(k.session.lateness_s) for k in rooms]
        transport = httpx.ASGITransport(app=site.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as c:
            await c.post("/api/v1/login", json={"name": "Mia", "password": "bench-password"})
            latency: dict[str, list[float]] = {"class_snapshot": [], "clients_list": []}
            end = time.monotonic() + seconds
            while time.monotonic() < end:
                for name, url in (
                    ("class_snapshot", f"/api/v1/classes/{rooms[0].id}"),
                    ("clients_list", "/api/v1/clients"),
                ):
                    t = time.perf_counter()
                    response = await c.get(url)
                    latency[name].append(time.perf_counter() - t)
                    assert response.status_code == 200
        loaded = [x for k, m in zip(rooms, marks, strict=True) for x in k.session.lateness_s[m:]]
        out["ticks_with_requests"] = percentiles_ms(loaded)
        out["requests"] = {
            name: {"count": len(v), **percentiles_ms(v)} for name, v in latency.items()
        }
        out["requests_per_s"] = round(sum(len(v) for v in latency.values()) / seconds, 1)
        for k in rooms:
            await studio.send_command(k, {"do": "stop"}, "bench")
            await studio.wait_ended(k)
        nursery.cancel_scope.cancel()
    store.close()
    return out


def run_studio(seconds: float = 5.0, n_clients: int = 100) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        return trio.run(_run, Path(tmp), seconds, n_clients)
