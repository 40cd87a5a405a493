"""A studio app with simulated suits, in the test's own Trio program, and logged-in clients."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx
import trio

from sim.studio_suits import SimulatedRack
from suit_controller.studio.accounts import Accounts
from suit_controller.studio.api import CSRF_HEADER
from suit_controller.studio.rooms import Studio
from suit_controller.studio.site import StudioSite
from suit_controller.studio.store import Store

BASE = "http://studio.test"
PASSWORDS = {"Mia": "manager-pass", "Tess": "trainer-pass"}


async def eventually(condition: Callable[[], object], within_s: float = 20.0) -> None:
    """Wait until `condition()` holds, polled every 20 ms (a loaded machine may be slow).

    Fails with trio.TooSlowError after `within_s` seconds: a bound on a hang, never a timing claim.
    """
    with trio.fail_after(within_s):
        while True:
            if condition():
                return
            await trio.sleep(0.02)


def make_site(tmp: Path, suits: int = 4) -> tuple[StudioSite, SimulatedRack]:
    store = Store(tmp / "studio.db")
    accounts = Accounts(store)
    accounts.add("Mia", "manager", PASSWORDS["Mia"])
    accounts.add("Tess", "trainer", PASSWORDS["Tess"])
    rack = SimulatedRack(suits)
    return StudioSite(Studio(store, rack), accounts), rack


async def start_site(nursery: trio.Nursery, tmp: Path) -> tuple[StudioSite, SimulatedRack]:
    site, rack = make_site(tmp)
    await nursery.start(site.studio.run)
    return site, rack


def client(site: StudioSite) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=site.app), base_url=BASE)


async def logged_in(site: StudioSite, name: str, *, csrf: bool = True) -> httpx.AsyncClient:
    """A browser-like client logged in as `name` (sending the CSRF header unless told not to)."""
    c = client(site)
    r = await c.post("/api/v1/login", json={"name": name, "password": PASSWORDS[name]})
    assert r.status_code == 200, r.text
    assert "httponly" in r.headers.get_list("set-cookie")[0].lower()
    assert "samesite=strict" in r.headers.get_list("set-cookie")[0].lower()
    if csrf:
        c.headers[CSRF_HEADER] = r.json()["csrf"]
    return c


async def started_class(tess: httpx.AsyncClient, suit: str = "SIM-01") -> str:
    """The id of a started class (classic_strength) of one screened client, Ana, in `suit`."""
    r = await tess.post("/api/v1/clients", json={"name": "Ana"})
    assert r.status_code == 201, r.text
    ana = r.json()["id"]
    assert (await tess.post(f"/api/v1/clients/{ana}/screenings", json={})).status_code == 201
    body = {"workout": "classic_strength", "trainers": ["Tess"],
            "clients": [{"client": ana, "suit": suit}]}  # fmt: skip
    r = await tess.post("/api/v1/classes", json=body)
    assert r.status_code == 201, r.text
    cid: str = r.json()["id"]
    assert (await tess.post(f"/api/v1/classes/{cid}/start")).status_code == 200
    return cid
