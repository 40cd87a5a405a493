"""The trainer's console: a Starlette app served by Hypercorn's Trio worker, in the engine's
own Trio program (no second event loop, no separate server).

The page is plain HTML, CSS and a small script (`static/`). State is pushed
over a WebSocket ten times a second; every button sends a command that goes
through the session's one command path, and the result comes back to the
button. Bound to anything but loopback, every request needs the access token.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import secrets
from importlib import resources
from typing import Any

import trio
from hypercorn.config import Config
from hypercorn.trio import serve
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from suit_controller.commands import Request as CommandRequest
from suit_controller.commands import submit
from suit_controller.records import SessionEvent
from suit_controller.session import ClassSession

PUSH_HZ = 10.0
#: Events the page shows as warnings.
WARNING_KINDS = {
    "client_request",
    "link_lost",
    "suit_safe_state",
    "limit",
    "estop",
    "command_refused",
    "fault",
    "bad_notification",
}


def is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


class Console:
    """The web console of one class."""

    def __init__(self, session: ClassSession, token: str | None) -> None:
        self.session = session
        self.token = token
        self.events: list[dict[str, Any]] = []
        self.connections = 0
        session.events.subscribe(self._on_event)
        self.app = Starlette(
            routes=[
                Route("/", self.index),
                Route("/static/{name}", self.static),
                WebSocketRoute("/ws", self.websocket),
            ]
        )

    def _on_event(self, e: SessionEvent) -> None:
        if e.kind in WARNING_KINDS:
            self.events.append(e.as_dict())
            del self.events[:-50]

    def _allowed(self, token: str | None) -> bool:
        return self.token is None or (token is not None and hmac.compare_digest(token, self.token))

    async def index(self, request: Request) -> Response:
        if not self._allowed(request.query_params.get("token")):
            return PlainTextResponse("access token required", status_code=403)
        page = resources.files("suit_controller.web").joinpath("static", "index.html")
        return HTMLResponse(page.read_text("utf-8"))

    async def static(self, request: Request) -> Response:
        name = request.path_params["name"]
        types = {"app.js": "text/javascript", "style.css": "text/css"}
        if name not in types:
            return PlainTextResponse("not found", status_code=404)
        text = resources.files("suit_controller.web").joinpath("static", name).read_text("utf-8")
        return Response(text, media_type=types[name])

    def state(self) -> dict[str, Any]:
        snap = self.session.snapshot()
        for i, c in enumerate(snap["clients"]):
            view = self.session.drivers[i].endpoint.view
            c["suit_levels_mA"] = list(view.levels_mA)
        seg = self.session.plan.segment_at(snap["plan_t"])
        snap["next"] = None
        if seg is not None:
            i = self.session.plan.segments.index(seg)
            if i + 1 < len(self.session.plan.segments):
                nxt = self.session.plan.segments[i + 1]
                snap["next"] = nxt.name if nxt.exercise_index is not None else nxt.kind.value
        snap["warnings"] = self.events[-8:]
        return {"type": "state", **snap}

    async def websocket(self, ws: WebSocket) -> None:
        if not self._allowed(ws.query_params.get("token")):
            await ws.close(code=4403)
            return
        await ws.accept()
        self.connections += 1
        source = f"web:{self.connections}"  # rate limits are per WebSocket connection
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._push, ws)
                while True:
                    text = await ws.receive_text()
                    # taken at once (an e-stop is latched here); answered when carried out
                    nursery.start_soon(self._reply, ws, self.session.desk.take(text, source))
        except WebSocketDisconnect:
            pass

    async def _reply(self, ws: WebSocket, request: CommandRequest) -> None:
        result = await request.wait()
        await ws.send_text(json.dumps({"type": "result", **result.as_dict()}))

    async def _push(self, ws: WebSocket) -> None:
        while True:
            await ws.send_text(json.dumps(self.state(), default=str))
            await trio.sleep(1.0 / PUSH_HZ)

    async def command(self, text: str, source: str = "web") -> dict[str, Any]:
        """One command's text through the one entry (`commands.submit`), answered as a result."""
        return {"type": "result", **(await submit(self.session, text, source)).as_dict()}


def new_token() -> str:
    return secrets.token_urlsafe(16)


async def serve_console(
    session: ClassSession,
    host: str,
    port: int,
    token: str | None,
    *,
    task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve the console until cancelled; reports the URL (with the token) when listening."""
    console = Console(session, token)
    config = Config()
    config.bind = [f"{host}:{port}"]
    config.accesslog = None
    config.errorlog = None
    async with trio.open_nursery() as nursery:
        binds: list[str] = await nursery.start(serve, console.app, config)
        url = binds[0].replace("0.0.0.0", host)
        task_status.started(url + "/" + (f"?token={token}" if token else ""))
