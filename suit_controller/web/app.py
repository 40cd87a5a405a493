"""The trainer's console: a Starlette app served by Hypercorn's Trio worker, in the engine's
own Trio program (no second event loop, no separate server).

The page is plain HTML, CSS and a small script (`static/`). On connecting, the
page gets the class's fixed facts once (a `class` message: body areas in the
trainer's words and order, the plan's timeline); then the state is pushed over
the WebSocket ten times a second (a `state` message: the snapshot, what each
suit reports delivering, and warnings written for trainers by `web.words`).
Every button sends a command that goes through the session's one command
path, and the result comes back to the button. Bound to anything but
loopback, every request needs the access token.

Every URL the page uses is relative to the page, so the app can be mounted
under any path (e.g. `Mount("/rooms/1/console", console.app)`).
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

from channels.limits import DEVICE_MAX_MA
from suit_controller.commands import CommandResult, says_estop, submit
from suit_controller.commands import Request as CommandRequest
from suit_controller.records import SessionEvent
from suit_controller.session import ClassSession
from suit_controller.web.words import areas, regions, suit_fault_words, trainer_message

PUSH_HZ = 10.0
#: Warnings kept for a page that connects late, and sent in each state (newest first).
KEEP_WARNINGS = 50
SEND_WARNINGS = 20
#: Console connections that may steer one class at once. A room has one or two trainers'
#: tablets; eight leaves room for a phone, a spare and tabs reloaded before their old socket
#: has closed. Further connections watch: the state is pushed to them and their e-stop is
#: obeyed (from anyone who reaches the console), every other command is refused.
MAX_STEERING = 8
#: Console connections that may watch one class at once (past the steering ones). Every
#: watching connection is pushed the state ten times a second by the class's own process, so
#: without a cap one browser opening thousands of WebSockets could load it. A room's watchers
#: are a wall screen, the trainers' spare tablets and phones, a manager's laptop: a dozen at
#: the most; 32 is more than a gym ever opens, and small enough that 8 steering + 32 watching
#: connections' pushes stay a small share of the class's one core (a push of the state of 12
#: clients takes about 0.4 ms of CPU: 40 x 10 a second is some 17 % of a core, 2026-12-02;
#: a thousand connections would need several cores). Past it a connection is
#: closed at once with `CLOSE_FULL` and a reason the page shows (its e-stop, if it asked for
#: one on connecting, is carried out first).
MAX_WATCHING = 32
#: The close code of a connection refused because the class has `MAX_WATCHING` watchers.
CLOSE_FULL = 4429
#: The one rate limit every steering connection of a class shares (`CommandDesk.ceiling_limit`,
#: two connections' worth), on top of each connection's own: more connections, no more rate.
CONSOLES = "the class's consoles"


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
        #: Trainer messages (`web.words`), oldest first, each with an `id` the page dismisses by.
        self.warnings: list[dict[str, Any]] = []
        self._next_warning = 1
        # ids unique across restarts of the server, so a page's dismissals never hide news
        self._epoch = secrets.token_hex(4)
        self._lost: set[str | None] = set()  # clients whose suit was lost: "connected" is news
        self.connections = 0
        self.steering = 0  # connections open now that may steer (at most MAX_STEERING)
        self._state_text: str | None = None  # the latest `state` message, shared by every page
        self._state_at = 0.0
        self.watching = 0  # connections open now that only watch (at most MAX_WATCHING)
        self._closed_sources: list[str] = []  # closed, their rate limit not yet rested
        session.events.subscribe(self._on_event)
        self.app = Starlette(
            routes=[
                Route("/", self.index),
                Route("/static/{name}", self.static),
                WebSocketRoute("/ws", self.websocket),
            ]
        )

    def _on_event(self, e: SessionEvent) -> None:
        if e.kind == "link_lost":
            self._lost.add(e.client)
        elif e.kind == "link_up":
            if e.client not in self._lost:
                return  # a first connection, or a re-arm after a safe state, is no news
            self._lost.discard(e.client)
        message = trainer_message(e)
        if message is None:
            return
        doc = message.as_json()
        # the same message again (a suit that keeps dropping) is one message with a count,
        # moved to the top under a new id: news again on a page that dismissed it
        same = (doc["kind"], doc["client"], doc["text"])
        count = 1
        for i, w in enumerate(self.warnings):
            if (w["kind"], w["client"], w["text"]) == same:
                count += int(w["count"])
                del self.warnings[i]
                break
        self.warnings.append({"id": f"{self._epoch}-{self._next_warning}", "count": count, **doc})
        self._next_warning += 1
        del self.warnings[:-KEEP_WARNINGS]

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

    def class_facts(self) -> dict[str, Any]:
        """What does not change during a class: the `class` message sent on connecting."""
        snap = self.session.class_snapshot()
        return {
            "type": "class",
            "workout": snap.workout,
            "total_s": snap.total_s,
            "channels": list(snap.channels),
            "areas": [a.as_json() for a in areas(snap.channels)],
            "regions": regions(snap.channels),
            "timeline": [s.as_json() for s in snap.timeline],
            "device_max_mA": DEVICE_MAX_MA,
        }

    def state(self) -> dict[str, Any]:
        """The `state` message: the snapshot's JSON form, plus what the page needs."""
        snap = self.session.class_snapshot()
        doc = snap.as_json()
        for c, client in zip(doc["clients"], snap.clients, strict=True):
            c["suit_levels_mA"] = list(client.suit_levels_mA)
            c["drops"] = client.drops
            c["fault_words"] = suit_fault_words(client.faults)
        doc["next"] = snap.next
        doc["warnings"] = self.warnings[::-1][:SEND_WARNINGS]
        return {"type": "state", **doc}

    async def websocket(self, ws: WebSocket) -> None:
        if not self._allowed(ws.query_params.get("token")):
            await ws.close(code=4403)
            return
        await ws.accept()
        self.connections += 1
        source = self.source_of(self.connections)  # rate limits are per WebSocket connection
        steers = self.steering < MAX_STEERING
        watches = not steers and self.watching < MAX_WATCHING
        if not steers and not watches:
            await self._refuse_full(ws, source)
            return
        self.steering += steers
        self.watching += watches
        self._forget_closed()
        desk = self.session.desk
        try:
            await ws.send_text(
                json.dumps({**self.class_facts(), "steering": steers, "max_steering": MAX_STEERING})
            )
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._push, ws)
                while True:
                    text = await ws.receive_text()
                    if not says_estop(text) and not await self.still_allowed():
                        await ws.close(code=4401)  # logged out: an e-stop alone still goes in
                        nursery.cancel_scope.cancel()
                        break
                    if steers:
                        # taken at once (an e-stop is latched here); answered when carried out
                        request = desk.take(text, source, ceiling=CONSOLES)
                    elif says_estop(text):  # an e-stop is obeyed from every connection
                        request = desk.take(text, source)
                    else:  # refusals logged by the desk (bounded), not audited one by one
                        request = desk.refuse(text, source, self.watching_only())
                        nursery.start_soon(self._reply, ws, request, False)
                        continue
                    nursery.start_soon(self._reply, ws, request)
        except WebSocketDisconnect:
            pass
        finally:
            self.steering -= steers
            self.watching -= watches
            self._closed_sources.append(source)
            self._forget_closed()

    async def _refuse_full(self, ws: WebSocket, source: str) -> None:
        """Close a connection past `MAX_WATCHING` watchers with words the page shows.

        A page that is sending an e-stop says so in its URL (`?estop=1`): the e-stop is
        carried out and answered before the close, so a screen that cannot watch still stops
        the class. The connection is never pushed the state, and holds no place."""
        try:
            if ws.query_params.get("estop") == "1":
                request = self.session.desk.take(json.dumps({"id": "estop", "do": "estop"}), source)
                await self._reply(ws, request)
            await ws.close(code=CLOSE_FULL, reason=self.full())
        except WebSocketDisconnect:
            pass
        finally:
            self._closed_sources.append(source)
            self._forget_closed()

    def full(self) -> str:
        """The close reason past `MAX_WATCHING` (a WebSocket close reason: at most 123 bytes)."""
        return (
            f"Not shown here: {MAX_STEERING + MAX_WATCHING} screens already show this class. "
            "Close one, or use a trainer's tablet."
        )

    def watching_only(self) -> str:
        return (
            f"this console only watches: {MAX_STEERING} consoles already steer this class "
            "(close one to steer from here); an e-stop from here is still obeyed"
        )

    def _forget_closed(self) -> None:
        """Drop the rate limits of closed connections once rested (memory stays bounded)."""
        desk = self.session.desk
        waiting = []
        for source in self._closed_sources:
            if desk.rested(source):
                desk.forget(source)
            else:  # spent within the last seconds: forgotten at a later open or close
                waiting.append(source)
        self._closed_sources = waiting

    async def _reply(self, ws: WebSocket, request: CommandRequest, audit: bool = True) -> None:
        result = await request.wait()
        if audit:
            await self.on_result(request, result)
        await ws.send_text(json.dumps({"type": "result", **result.as_dict()}))

    async def still_allowed(self) -> bool:
        """Whether this connection may still command (the studio checks its login is alive)."""
        return True

    def source_of(self, connection: int) -> str:
        """The source id of the page's `connection`-th WebSocket (rate limits are per source)."""
        return f"web:{connection}"

    async def on_result(self, request: CommandRequest, result: CommandResult) -> None:
        """Called with every command's result before the page is told (the studio audits here)."""

    def state_text(self) -> str:
        """The `state` message encoded, built at most once per push period for every page.

        Each open console used to build and encode its own copy ten times a second
        (0.2–0.4 ms each): forty pages cost a sixth of a core. Now they share one, so a
        page costs only its socket write (an outside review delayed an e-stop with
        hundreds of watching pages).
        """
        now = trio.current_time()
        if self._state_text is None or now - self._state_at >= 0.5 / PUSH_HZ:
            self._state_text = json.dumps(self.state(), default=str)
            self._state_at = now
        return self._state_text

    async def _push(self, ws: WebSocket) -> None:
        while True:
            await ws.send_text(self.state_text())
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
