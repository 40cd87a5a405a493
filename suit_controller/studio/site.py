"""The studio app: the API, its OpenAPI document, the trainer's pages and each class's console.

One Starlette app in the studio's Trio program (Hypercorn's Trio worker). The
pages are a small static script that uses the API (`static/`); the live
console of a class is the console app (`suit_controller.web`), mounted at
`/classes/{id}/console` with the class's id as its key, behind the same
login; its commands go through `Studio.send_command` like the API's.
"""

from __future__ import annotations

import contextvars
import hmac
import logging
from collections.abc import Awaitable, Callable
from importlib import resources
from typing import Any, TypeVar
from urllib.parse import urlsplit

import trio
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket

from suit_controller.commands import CommandResult, says_estop
from suit_controller.commands import Request as CommandRequest
from suit_controller.studio.accounts import Accounts, Login
from suit_controller.studio.api import (
    CSRF_HEADER,
    SESSION_COOKIE,
    Call,
    Endpoint,
    StudioApi,
    class_view,
    json_ok,
    set_login_cookies,
)
from suit_controller.studio.health import StudioHealth
from suit_controller.studio.health import describe as describe_operations
from suit_controller.studio.metrics import StudioMetrics
from suit_controller.studio.openapi import PageRoute, openapi_document
from suit_controller.studio.problems import Problem, read_json, read_raw, validate
from suit_controller.studio.requests import CommandBody
from suit_controller.studio.rooms import Studio, StudioClass
from suit_controller.web.app import Console

MAX_PARAM = 80
STATIC_TYPES = {
    "studio.js": "text/javascript",
    "designer.js": "text/javascript",
    "suits.js": "text/javascript",
    "studio.css": "text/css",
}
#: The account behind the console's WebSocket being served (each connection sets its own).
log = logging.getLogger(__name__)
console_user: contextvars.ContextVar[str] = contextvars.ContextVar("console_user", default="?")
console_login: contextvars.ContextVar[str] = contextvars.ContextVar("console_login", default="")
SECURITY_HEADERS = {
    "content-security-policy": "default-src 'self'; connect-src 'self' ws: wss:; "
    "img-src 'self' data:; frame-ancestors 'none'",
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
}


#: Commands that only make things safer: a logged-in page's may come without its CSRF token.
STOPPING = frozenset({"estop", "stop"})
#: How long an e-stop's answer waits for the records (who sent it, the audit line): the
#: e-stop itself is latched before either is asked, so a locked database never delays it.
ESTOP_RECORDS_WAIT_S = 2.0
T = TypeVar("T")


async def in_thread(fn: Callable[..., T], *args: Any) -> T:
    """`fn(*args)` on a worker thread, left behind (not waited for) if the caller is cancelled."""
    return await trio.to_thread.run_sync(fn, *args, abandon_on_cancel=True)


async def ask_the_records(what: str, work: Callable[[], Awaitable[T]], otherwise: T) -> T:
    """`work()`'s answer, or `otherwise` if the records fail or do not answer in time.

    For what only records a command or checks a login around it (who sent an
    e-stop, its audit line): bounded by ESTOP_RECORDS_WAIT_S, and a records
    failure (a locked or broken database) is logged under `what`, never raised,
    so it can never fail or delay the command itself. A cancellation from outside
    still goes through (only `Exception` is caught).
    """
    with trio.move_on_after(ESTOP_RECORDS_WAIT_S):
        try:
            return await work()
        except Exception as e:  # the records' failure, never the command's
            log.warning("%s: %s", what, e)
            return otherwise
    log.warning("%s: the records did not answer in time", what)
    return otherwise


def stops(data: Any, request: Request) -> bool:
    """Whether a command's body asks for an e-stop or a stop (the body as read, or its bytes).

    Such a command needs a login like any other, but not the CSRF token: an
    e-stop is never refused for its form, and a forged one could only stop a
    class, which is what the trainer's e-stop must always be able to do even
    when the page has lost its token (a reloaded tab, an expired cookie copy).
    Every other change keeps the CSRF check.
    """
    if isinstance(data, dict):  # read: its own `do` decides (never a string inside another field)
        return data.get("do") in STOPPING
    raw = getattr(request.state, "raw_body", None)
    return raw is not None and says_estop(raw)


class StudioConsole(Console):
    """The console of one studio class: its commands go through the studio, audited."""

    def __init__(self, studio: Studio, accounts: Accounts, klass: StudioClass) -> None:
        super().__init__(klass.session, klass.id)
        self.studio = studio
        self.accounts = accounts
        self.klass = klass

    def source_of(self, connection: int) -> str:
        return f"console:{console_user.get()}:{connection}"

    async def still_allowed(self) -> bool:
        """The connection's login is still alive (a logout ends the console's steering).

        A records database that does not answer in time does not end a trainer's
        console: the login was checked when the socket opened.
        """
        token = console_login.get()

        async def alive() -> bool:
            login = await in_thread(self.accounts.login, token)
            return login is not None and not login.read_only

        return await ask_the_records("console login check failed", alive, otherwise=True)

    async def on_result(self, request: CommandRequest, result: CommandResult) -> None:
        """Audit the command (bounded: a slow or locked records database never closes the
        console or delays its answer past a moment)."""
        if request.over_limit and not result.ok:
            return  # a flood: the desk counts these refusals; no audit write for each one
        who = console_user.get()
        sent = request.command.model_dump(exclude_none=True) if request.command else {}
        detail = {**sent, "ok": result.ok, "message": result.message}

        async def audit() -> None:
            await in_thread(self.accounts.audit, who, "command", self.klass.id, detail)

        what = f"console command on class {self.klass.id} not audited"
        await ask_the_records(what, audit, otherwise=None)


class StudioSite:
    """The whole app of one studio controller."""

    def __init__(self, studio: Studio, accounts: Accounts) -> None:
        self.studio = studio
        self.accounts = accounts
        self.api = StudioApi(studio, accounts)
        self.consoles: dict[str, StudioConsole] = {}
        self.pages: list[PageRoute] = [
            PageRoute("GET", "/", "The studio's pages (clients, class set-up, summary)", "pages"),
            PageRoute("GET", "/login", "The login page", "pages"),
            PageRoute("GET", "/login/link", "Spend a one-time login link (`?token=`)", "pages"),
            PageRoute("GET", "/static/studio/{name}", "The pages' script and style", "pages"),
            PageRoute("GET", "/classes/{class_id}/console", "A class's live console", "console"),
            PageRoute(
                "GET", "/classes/{class_id}/static/{name}", "The console's script", "console"
            ),
            PageRoute(
                "GET", "/ws", "The live console's WebSocket (`?token=` the class id)", "console"
            ),
            PageRoute(
                "GET",
                "/classes/{class_id}/ws",
                "A class's live console's WebSocket, where its page connects",
                "console",
            ),
        ]
        self.metrics = StudioMetrics(studio)
        self.health = StudioHealth(studio, self.metrics)
        endpoints = [*self.api.endpoints, *self.health.endpoints(), self.metrics.endpoint()]
        self.document = openapi_document(endpoints, self.pages)
        describe_operations(self.document)
        routes: list[Any] = [
            Route(e.path, self._endpoint(e), methods=[e.method]) for e in endpoints
        ]
        routes += [
            Route("/api/v1/openapi.json", self.openapi, methods=["GET"]),
            Route("/", self.shell, methods=["GET"]),
            Route("/login", self.shell, methods=["GET"]),
            Route("/login/link", self.login_link, methods=["GET"]),
            Route("/static/studio/{name}", self.static, methods=["GET"]),
            Route("/classes/{class_id}/console", self.console_page, methods=["GET"]),
            Route("/classes/{class_id}/static/{name}", self.console_static, methods=["GET"]),
            WebSocketRoute("/ws", self.console_ws),
            # the console page asks for `ws` beside itself: /classes/{id}/ws
            WebSocketRoute("/classes/{class_id}/ws", self.console_ws),
        ]
        self.app = Starlette(
            routes=routes,
            exception_handlers={HTTPException: self._http_error, Exception: self._server_error},
        )

    # -- the API's wrapper: who, CSRF, body ------------------------------------------------
    def _endpoint(self, e: Endpoint) -> Callable[[Request], Awaitable[Response]]:
        async def run(request: Request) -> Response:
            try:
                params = {k: str(v) for k, v in request.path_params.items()}
                if any(len(v) > MAX_PARAM for v in params.values()):
                    raise Problem(404, "Not found", "no such thing here")
                data: Any = None
                unread: Problem | None = None
                if e.body is CommandBody:
                    raw = await read_raw(request)
                    if says_estop(raw):
                        first = await self._estop_first(request, params)
                        if first is not None:
                            first.headers.update(SECURITY_HEADERS)
                            return first
                if e.body is not None:
                    try:
                        data = await read_json(request)
                    except Problem as p:
                        unread = p
                stopping = e.body is CommandBody and stops(data, request)
                # a GET changes nothing: it needs the login (a manager's for the audit), no CSRF
                csrf = not stopping and request.method not in ("GET", "HEAD")
                login = await self.authenticate(request, e.auth, csrf=csrf)
                body = None
                if e.body is not None:
                    try:
                        if unread is not None:
                            raise unread
                        body = validate(e.body, data)
                    except Problem:
                        kept = getattr(request.state, "raw_body", None)
                        if e.body is not CommandBody or kept is None or not says_estop(kept):
                            raise
                        body = CommandBody(do="estop")  # an e-stop is never refused for its form
                response = await e.handler(Call(request, login, body, params))
            except Problem as p:
                response = p.response()
            response.headers.update(SECURITY_HEADERS)
            return response

        return run

    async def _estop_first(self, request: Request, params: dict[str, str]) -> Response | None:
        """An e-stop to a class: latched at once, before the login or the records are asked.

        Like a suit's own stop characteristic, it is honoured from whoever can reach the
        studio: it can only stop a class, and a trainer's e-stop must work when the
        records database is locked or slow, the page has lost its login or its token,
        or the body is not quite what the API expects. Who sent it is looked up after,
        for the audit trail, with a bound on the wait (None: no such class, the API
        answers 404 the usual way).
        """
        klass = self.studio.classes.get(params.get("class_id", ""))
        if klass is None:
            return None
        result = await self.studio.send_command(klass, {"do": "estop"}, source="studio:estop")
        detail = {"do": "estop", "ok": result.ok, "message": result.message}
        token = self._token_of(request)

        async def audit() -> None:
            login = await in_thread(self.accounts.login, token) if token else None
            who = login.account.name if login is not None else "not logged in"
            await in_thread(self.accounts.audit, who, "command", klass.id, detail)

        what = f"e-stop of class {klass.id} latched; not audited"
        await ask_the_records(what, audit, otherwise=None)
        if not result.ok:
            refused = Problem(409, "Command refused", result.message, command=result.command)
            return refused.response()
        return json_ok({**result.as_dict(), "class": class_view(klass)})

    @staticmethod
    def _token_of(request: Request) -> str | None:
        """The bearer token or the login cookie of a request (unchecked), if any."""
        scheme, _, value = request.headers.get("authorization", "").partition(" ")
        token = value.strip() if scheme.lower() == "bearer" else request.cookies.get(SESSION_COOKIE)
        return token if token and len(token) <= 200 else None

    async def authenticate(self, request: Request, auth: str, *, csrf: bool = True) -> Login | None:
        """Who sends `request`, checked against what the endpoint needs (Problem if not).

        `csrf=False` (an e-stop or a stop, see `stops`) skips only the CSRF check.
        """
        if auth == "none":
            return None
        if auth == "optional":  # answered to anyone; a valid login (any role) may see more
            try:
                return await self.authenticate(request, "read", csrf=False)
            except Problem:
                return None
        token, by_cookie = None, False
        header = request.headers.get("authorization", "")
        if header:
            scheme, _, value = header.partition(" ")
            if scheme.lower() != "bearer" or not value.strip():
                raise Problem(401, "Not logged in", "use 'Authorization: Bearer TOKEN'")
            token = value.strip()
        else:
            token, by_cookie = request.cookies.get(SESSION_COOKIE), True
        login = None
        if token and len(token) <= 200:
            login = await trio.to_thread.run_sync(self.accounts.login, token)
        if login is None:
            raise Problem(401, "Not logged in", "log in first (or the login has expired)")
        if auth in ("change", "manager"):
            if login.read_only:
                raise Problem(403, "Read-only token", "a read-only API token cannot change things")
            if by_cookie and csrf:
                sent = request.headers.get(CSRF_HEADER, "")
                if not sent or not hmac.compare_digest(sent, login.csrf or ""):
                    raise Problem(
                        403, "Missing CSRF token", f"send the page's CSRF token in {CSRF_HEADER}"
                    )
        if auth == "manager" and login.account.role != "manager":
            raise Problem(403, "Managers only", "only a manager may do this")
        return login

    async def _http_error(self, request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        titles = {404: "Not found", 405: "Method not allowed"}
        return Problem(
            exc.status_code, titles.get(exc.status_code, "Refused"), exc.detail
        ).response()

    async def _server_error(self, request: Request, exc: Exception) -> Response:
        return Problem(500, "Server error", "something went wrong on the controller").response()

    # -- the document and the pages ---------------------------------------------------------
    async def openapi(self, request: Request) -> Response:
        return JSONResponse(self.document)

    async def shell(self, request: Request) -> Response:
        page = resources.files("suit_controller.studio").joinpath("static").joinpath("index.html")
        return HTMLResponse(page.read_text("utf-8"), headers=SECURITY_HEADERS)

    async def static(self, request: Request) -> Response:
        name = request.path_params["name"]
        if name not in STATIC_TYPES:
            return Problem(404, "Not found").response()
        text = (
            resources.files("suit_controller.studio")
            .joinpath("static")
            .joinpath(name)
            .read_text("utf-8")
        )
        return Response(text, media_type=STATIC_TYPES[name], headers=SECURITY_HEADERS)

    async def login_link(self, request: Request) -> Response:
        token = request.query_params.get("token", "")
        new = None
        if token and len(token) <= 200:
            new = await trio.to_thread.run_sync(self.accounts.use_link, token)
        if new is None:
            return RedirectResponse("/login?link=spent", status_code=303)
        response = RedirectResponse("/", status_code=303)
        set_login_cookies(response, new.token, new.csrf or "")
        return response

    # -- the console of a class ------------------------------------------------------------
    def _console(self, class_id: str) -> StudioConsole | None:
        for gone in self.consoles.keys() - self.studio.classes.keys():
            del self.consoles[gone]  # the studio keeps only each room's last ended class
        klass = self.studio.classes.get(class_id)
        if klass is None:
            return None
        console = self.consoles.get(class_id)
        if console is None:
            console = self.consoles[class_id] = StudioConsole(self.studio, self.accounts, klass)
        return console

    async def _page_login(self, request: Request) -> Login | None:
        token = request.cookies.get(SESSION_COOKIE)
        if not token or len(token) > 200:
            return None
        return await trio.to_thread.run_sync(self.accounts.login, token)

    async def console_page(self, request: Request) -> Response:
        if await self._page_login(request) is None:
            return RedirectResponse("/login", status_code=303)
        console = self._console(request.path_params["class_id"])
        if console is None:
            return Problem(404, "No such class").response()
        return await console.index(request)

    async def console_static(self, request: Request) -> Response:
        console = self._console(request.path_params["class_id"])
        if console is None:
            return Problem(404, "No such class").response()
        return await console.static(request)

    async def console_ws(self, ws: WebSocket) -> None:
        token = ws.cookies.get(SESSION_COOKIE)
        login = None
        if token and len(token) <= 200:
            login = await trio.to_thread.run_sync(self.accounts.login, token)
        origin = ws.headers.get("origin")
        same_origin = origin is None or urlsplit(origin).netloc == ws.headers.get("host")
        class_id = ws.path_params.get("class_id") or ws.query_params.get("token", "")
        console = self._console(str(class_id))
        # a read-only API token watches through the API, never steers through a console
        if login is None or login.read_only or not same_origin or console is None:
            await ws.close(code=4403)
            return
        console_user.set(login.account.name)  # this connection's task only
        console_login.set(str(token))
        await console.websocket(ws)
