"""The studio controller's health: `/healthz` (alive) and `/api/v1/health` (ready, and how).

Both answer without a login (a load balancer, systemd or a monitoring probe
asks them) and say nothing about people: class states, suit counts, the
store's reachability and the brokers' connection, never a client's name (nor
a class's id: the API behind a login has those). Without a login the rooms
and brokers are counted, not named (a room's name can say whose studio and
when); with one, each room and broker is named.

`/api/v1/health` answers 200 while the controller can run classes (the
store answers) and 503 when it cannot; `status` says `ok`, `degraded` (a
suit of a class going on is not linked, or a broker is disconnected) or
`failing` (the store does not answer within `STORE_TIMEOUT_S`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import trio
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from starlette.responses import JSONResponse, Response

from suit_controller.driver import LinkState
from suit_controller.studio.store import Store

if TYPE_CHECKING:
    from suit_controller.studio.api import Call, Endpoint
    from suit_controller.studio.metrics import StudioMetrics
    from suit_controller.studio.rooms import Studio

#: How long the readiness check waits for the store to answer, s.
STORE_TIMEOUT_S = 2.0


def store_answers(store: Store) -> bool:
    """True when the store answers a trivial query (blocking: run it in a thread)."""
    with store.engine.connect() as connection:
        return connection.execute(text("SELECT 1")).scalar() == 1


class StudioHealth:
    """The health endpoints of one studio controller."""

    def __init__(self, studio: Studio, metrics: StudioMetrics) -> None:
        self.studio = studio
        self.metrics = metrics

    async def alive(self, call: Call) -> Response:
        """`GET /healthz`: the controller's program answers (nothing else is checked)."""
        return JSONResponse({"status": "alive"})

    async def store_reachable(self) -> bool:
        """Whether the store answers within STORE_TIMEOUT_S (a hung database is not ready)."""
        with trio.move_on_after(STORE_TIMEOUT_S):
            try:
                return await trio.to_thread.run_sync(
                    store_answers, self.studio.store, abandon_on_cancel=True
                )
            except (SQLAlchemyError, OSError):  # the store's failure is what this reports
                return False
        return False

    async def ready(self, call: Call) -> Response:
        """`GET /api/v1/health`: the store, each room's class, the suits linked, the brokers."""
        store_ok = await self.store_reachable()
        rooms: list[dict[str, Any]] = []
        degraded = False
        for k in self.studio.classes.values():
            if k.done.is_set():
                continue
            snap = k.snapshot()
            linked = sum(1 for c in snap.clients if c.link is LinkState.CONNECTED)
            if k.state in ("running", "paused", "estopped") and linked < len(snap.clients):
                degraded = True
            rooms.append(
                {
                    **({"room": k.room} if call.login is not None else {}),
                    "state": k.state,
                    "simulated": k.simulated,
                    "suits": len(snap.clients),
                    "suits_linked": linked,
                }
            )
        brokers = {name: connected() for name, connected in sorted(self.metrics.brokers.items())}
        if not all(brokers.values()):
            degraded = True
        status = "failing" if not store_ok else "degraded" if degraded else "ok"
        body = {
            "status": status,
            "store": {"reachable": store_ok, "backend": self.studio.store.backend},
            "rooms": sorted(rooms, key=lambda r: (r.get("room", ""), r["state"], r["suits"])),
            "brokers": {
                "configured": len(brokers),
                "connected": brokers if call.login is not None else sum(brokers.values()),
            },
        }
        return JSONResponse(body, status_code=200 if store_ok else 503)

    def endpoints(self) -> list[Endpoint]:
        """The health endpoints, for the studio app's routes and its OpenAPI document."""
        from suit_controller.studio.api import Endpoint

        return [
            Endpoint(
                "GET",
                "/healthz",
                "Liveness: the controller's program answers (no login, no personal data)",
                self.alive,
                "operations",
                "none",
            ),
            Endpoint(
                "GET",
                "/api/v1/health",
                "Readiness: the store answers; each room's class state and suits linked; "
                "the MQTT brokers' connection (no login: counts, no names; with a login: each "
                "room and broker named; no personal data; 503 if not ready)",
                self.ready,
                "operations",
                "optional",
                refusals=(503,),
            ),
        ]


def describe(document: dict[str, Any]) -> None:
    """Say in the OpenAPI document what `/metrics` and `/api/v1/health` answer."""
    paths = document["paths"]
    metrics = paths.get("/metrics", {}).get("get")
    if metrics is not None:
        metrics["responses"]["200"] = {
            "description": "the metrics in Prometheus's text format (version 0.0.4)",
            "content": {"text/plain": {"schema": {"type": "string"}}},
        }
    health = paths.get("/api/v1/health", {}).get("get")
    if health is not None:
        health["responses"]["503"] = {
            "description": "not ready: the store does not answer (same body as 200)",
            "content": {"application/json": {"schema": {"type": "object"}}},
        }
