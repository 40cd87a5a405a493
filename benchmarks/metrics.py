"""What the studio's metrics cost: the tick observer per tick, and one scrape of `/metrics`.

One class of 12 clients in 12 simulated suits runs in the studio (real
clock). The metrics' tick observer is what the engine pays at every tick; it
is timed inside the running class (the engine's own calls, through a timing
wrapper) and in a loop. Then `/metrics` is scraped back to back through the
real app for as long, and the ticks' lateness is compared with and without
(Prometheus scrapes every 15 s or so: this is far worse than real use).
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
from suit_controller.studio.metrics import ClassWatch
from suit_controller.studio.rooms import Arrival, Studio
from suit_controller.studio.screening import CONTRAINDICATIONS
from suit_controller.studio.site import StudioSite
from suit_controller.studio.store import Store

SUITS = 12
KEYS = [c.key for c in CONTRAINDICATIONS]


async def _run(tmp: Path, seconds: float) -> dict[str, Any]:
    store = Store(tmp / "studio.db")
    accounts = Accounts(store)
    ids = []
    for i in range(SUITS):
        record = store.add_client(f"Client {i:02d}")
        store.add_screening(record.id, "Mia", set(), set(), KEYS)
        ids.append(record.id)
    studio = Studio(store, SimulatedRack(SUITS))
    site = StudioSite(studio, accounts)
    out: dict[str, Any] = {"suits": SUITS}
    async with trio.open_nursery() as nursery:
        await nursery.start(studio.run)
        arrivals = [Arrival(ids[i], f"SIM-{i + 1:02d}") for i in range(SUITS)]
        klass = await studio.set_up_class(
            "Room 1", "classic_strength", arrivals, ["Mia", "Tom", "Ute", "Vic", "Wim", "Xia"],
            by="bench",
        )  # fmt: skip
        session = klass.session
        (position,) = [
            i
            for i, o in enumerate(session.tick_observers)
            if isinstance(getattr(o, "__self__", None), ClassWatch)
        ]
        observer = session.tick_observers[position]
        inside: list[float] = []

        def timed(now: float) -> None:
            t = time.perf_counter()
            observer(now)
            inside.append(time.perf_counter() - t)

        session.tick_observers[position] = timed
        await studio.send_command(klass, {"do": "start"}, "bench")
        await trio.sleep(seconds)
        out["observer_in_class"] = {"ticks": len(inside), **percentiles_ms(inside)}
        out["ticks_without_scrapes"] = percentiles_ms(session.lateness_s[-int(seconds * 40) :])
        mark = len(session.lateness_s)
        token = accounts.api_token(accounts.add("Mia", "manager", "bench-password"), "bench").token
        transport = httpx.ASGITransport(app=site.app)
        scrapes = []
        async with httpx.AsyncClient(
            transport=transport,
            base_url="http://bench",
            headers={"authorization": f"Bearer {token}"},
        ) as c:
            end = time.monotonic() + seconds
            while time.monotonic() < end:  # back to back: a scrape every 15 s is the usual
                t = time.perf_counter()
                r = await c.get("/metrics")
                scrapes.append(time.perf_counter() - t)
                assert r.status_code == 200
        out["ticks_while_scraping"] = percentiles_ms(session.lateness_s[mark:])
        out["scrape"] = {"count": len(scrapes), "bytes": len(r.content), **percentiles_ms(scrapes)}
        looped = []
        for _ in range(5000):
            t = time.perf_counter()
            observer(trio.current_time())
            looped.append(time.perf_counter() - t)
        out["observer_looped"] = percentiles_ms(looped)
        await studio.send_command(klass, {"do": "stop"}, "bench")
        await studio.wait_ended(klass)
        nursery.cancel_scope.cancel()
    store.close()
    return out


def run_metrics(seconds: float = 5.0) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-metrics-") as tmp:
        return trio.run(_run, Path(tmp), seconds)

