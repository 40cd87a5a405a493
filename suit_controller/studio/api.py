"""The studio's HTTP API under /api/v1: what the tablet's pages use, and what gyms integrate with.

One table (`StudioApi.endpoints`) lists every endpoint with its method, path,
who may call it, its request body and summary; the Starlette routes and the
OpenAPI document are both made from it, so neither can miss one.

Who may call: `none` (log in, the document), `read` (any login, read-only API
tokens too), `change` (a trainer's or manager's login; with a browser's
cookie the `X-CSRF-Token` header must carry the login's CSRF token),
`manager`. Commands reach the engine only through `Studio.send_command`; each
one, and every change to a client's record, is audited with who and when.
"""

from __future__ import annotations

import datetime as dt
import difflib
import functools
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any, TypeVar

import trio
from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from suit_controller.studio.accounts import Accounts, Login
from suit_controller.studio.designer import DesignerApi
from suit_controller.studio.problems import Problem
from suit_controller.studio.requests import (
    CommandBody,
    LoginBody,
    NewAccount,
    NewClass,
    NewClient,
    NewToken,
    ScreeningBody,
)
from suit_controller.studio.rooms import Arrival, SetUpRefused, Studio, StudioClass
from suit_controller.studio.screening import (
    BY_KEY,
    CONTRAINDICATIONS,
    check_client,
    validate_answers,
)
from suit_controller.studio.store import StoreError
from suit_controller.studio.suit_keys_api import SuitKeysApi
from suit_controller.studio.words import RECORD_WORDS, STATE_WORDS, area_label, in_trainer_order
from workouts import WorkoutError
from workouts.library import BUILTIN_PREFIX, load_workout
from workouts.loader import load_workout_text
from workouts.plan import compile_workout

SESSION_COOKIE = "suitctl_session"
CSRF_COOKIE = "suitctl_csrf"
CSRF_HEADER = "x-csrf-token"
#: How long `end` waits for the class's record to be written before answering.
END_WAIT_S = 10.0
#: After this many wrong passwords for one name within LOGIN_WINDOW_S, logins wait.
LOGIN_TRIES = 5
LOGIN_WINDOW_S = 300.0
T = TypeVar("T")


@dataclass
class Call:
    """One request as a handler sees it: who, the validated body, the path's parameters."""

    request: Request
    login: Login | None
    body: Any
    params: dict[str, str]

    @property
    def who(self) -> str:
        return self.login.account.name if self.login else "anonymous"


Handler = Callable[[Call], Awaitable[Response]]


@dataclass(frozen=True)
class Endpoint:
    """One endpoint: what the router and the OpenAPI document both need."""

    method: str
    path: str
    summary: str
    handler: Handler
    tag: str
    auth: str = "read"
    body: type[BaseModel] | None = None
    status: int = 200
    refusals: tuple[int, ...] = field(default=())


def json_ok(data: Any, status: int = 200) -> JSONResponse:
    return JSONResponse(data, status_code=status)


class StudioApi:
    """The API's handlers over one `Studio` and its `Accounts`."""

    def __init__(self, studio: Studio, accounts: Accounts) -> None:
        self.studio = studio
        self.accounts = accounts
        self.store = studio.store
        self._wrong: dict[str, list[float]] = {}
        e = Endpoint
        self.endpoints: list[Endpoint] = [
            e("POST", "/api/v1/login", "Log in (sets the session and CSRF cookies)",
              self.login, "accounts", "none", LoginBody, refusals=(401, 429)),
            e("POST", "/api/v1/logout", "Log out", self.logout, "accounts", "change"),
            e("GET", "/api/v1/me", "Who is logged in", self.me, "accounts"),
            e("POST", "/api/v1/accounts", "Add a trainer or manager account", self.add_account,
              "accounts", "manager", NewAccount, 201, (409,)),
            e("POST", "/api/v1/tokens", "Make a read-only API token (shown once)",
              self.add_token, "accounts", "manager", NewToken, 201),
            e("GET", "/api/v1/audit", "Who did what, when (newest first)", self.audit,
              "accounts", "manager"),
            e("GET", "/api/v1/clients", "Every client, with who may train today and why not",
              self.clients, "clients"),
            e("POST", "/api/v1/clients", "Add a client", self.add_client, "clients", "change",
              NewClient, 201, (409,)),
            e("GET", "/api/v1/clients/{client_id}",
              "A client: screening, today's decision, history, last intensities per body area",
              self.client, "clients", refusals=(404,)),
            e("GET", "/api/v1/screening-questions", "The screening's questions",
              self.questions, "screenings"),
            e("POST", "/api/v1/clients/{client_id}/screenings", "Record a screening",
              self.add_screening, "screenings", "change", ScreeningBody, 201, (404,)),
            e("GET", "/api/v1/workouts",
              "The workouts a class can run (built-in and the studio's own), with timelines",
              self.workouts, "workouts"),
            e("GET", "/api/v1/suits",
              "Suits in reach: battery, signal, in a class or free; when known, the suit's "
              "own state and output", self.suits, "suits"),
            e("GET", "/api/v1/classes", "The classes of this controller, one per room",
              self.classes, "classes"),
            e("POST", "/api/v1/classes",
              "Set up a class: check in every client; refusals are listed before start",
              self.add_class, "classes", "change", NewClass, 201, (409,)),
            e("GET", "/api/v1/classes/{class_id}", "A class now (the live snapshot)",
              self.klass, "classes", refusals=(404,)),
            e("POST", "/api/v1/classes/{class_id}/start", "Start the class", self.start,
              "classes", "change", refusals=(404, 409)),
            e("POST", "/api/v1/classes/{class_id}/commands", "Send the class a command",
              self.command, "classes", "change", CommandBody, refusals=(404, 409)),
            e("POST", "/api/v1/classes/{class_id}/end",
              "End the class (every suit stops) and return the summary per client",
              self.end, "classes", "change", refusals=(404, 409)),
            e("GET", "/api/v1/classes/{class_id}/summary", "The summary per client",
              self.summary, "reports", refusals=(404,)),
            e("GET", "/api/v1/sessions/{session_id}", "One client's session, with its events",
              self.session, "sessions", refusals=(404,)),
            e("GET", "/api/v1/reports/{class_id}",
              "The full report of a class: its record, every session, every event",
              self.report, "reports", refusals=(404,)),
        ]  # fmt: skip
        self.designer = DesignerApi(self)
        self.endpoints += self.designer.endpoints()
        self.suit_keys = SuitKeysApi(self)  # the suits page: enroll, rotate, forget (issue 18)
        self.endpoints += self.suit_keys.endpoints()

    # -- helpers ----------------------------------------------------------------------
    async def db(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run a store call in a worker thread (the engine's ticks never wait for the disk)."""
        return await trio.to_thread.run_sync(partial(fn, *args, **kwargs))

    async def audit(self, call: Call) -> Response:
        return json_ok({"entries": await self.db(self.accounts.audit_trail)})

    async def _note(self, call: Call, action: str, subject: str, detail: dict[str, Any]) -> None:
        await self.db(self.accounts.audit, call.who, action, subject, detail)

    def _class(self, call: Call) -> StudioClass:
        klass = self.studio.classes.get(call.params["class_id"])
        if klass is None:
            raise Problem(404, "No such class", f"no class {call.params['class_id']} here")
        return klass

    async def _client_row(self, ref: str) -> Any:
        try:
            return await self.db(self.store.client, ref)
        except StoreError as e:
            raise Problem(404, "No such client", str(e)) from None

    # -- accounts ---------------------------------------------------------------------
    async def login(self, call: Call) -> Response:
        body: LoginBody = call.body
        # wrong passwords count per account AND per address: a stranger guessing from one
        # device cannot lock a trainer out of every tablet
        where = call.request.client.host if call.request.client else "?"
        key = f"{body.name.strip().casefold()}\n{where}"
        now = time.monotonic()
        if len(self._wrong) > 10_000:  # guesses at many names: forget the stale ones
            stale = [k for k, ts in self._wrong.items() if not ts or now - ts[-1] >= LOGIN_WINDOW_S]
            for k in stale:
                del self._wrong[k]
        recent = [t for t in self._wrong.get(key, []) if now - t < LOGIN_WINDOW_S]
        self._wrong[key] = recent
        if len(recent) >= LOGIN_TRIES:
            wait = int(LOGIN_WINDOW_S - (now - recent[0])) // 60 + 1
            raise Problem(429, "Too many tries", f"too many wrong passwords: wait {wait} min")
        account = await self.db(self.accounts.verify, body.name, body.password)
        if account is None:
            recent.append(now)
            raise Problem(401, "Not logged in", "that name and password do not match")
        self._wrong.pop(key, None)
        new = await self.db(self.accounts.log_in, account)
        response = json_ok({"name": account.name, "role": account.role, "csrf": new.csrf})
        set_login_cookies(response, new.token, new.csrf or "")
        return response

    async def logout(self, call: Call) -> Response:
        token = call.request.cookies.get(SESSION_COOKIE)
        if token:
            await self.db(self.accounts.log_out, token)
        response = json_ok({"ok": True})
        response.delete_cookie(SESSION_COOKIE, path="/")
        response.delete_cookie(CSRF_COOKIE, path="/")
        return response

    async def me(self, call: Call) -> Response:
        assert call.login is not None
        a = call.login.account
        return json_ok(
            {"name": a.name, "role": a.role, "read_only": call.login.read_only,
             "csrf": call.login.csrf}
        )  # fmt: skip

    async def add_account(self, call: Call) -> Response:
        body: NewAccount = call.body
        try:
            a = await self.db(self.accounts.add, body.name, body.role, body.password, by=call.who)
        except StoreError as e:
            raise Problem(409, "Cannot add the account", str(e)) from None
        return json_ok({"id": a.id, "name": a.name, "role": a.role}, 201)

    async def add_token(self, call: Call) -> Response:
        assert call.login is not None
        body: NewToken = call.body
        new = await self.db(self.accounts.api_token, call.login.account, body.label)
        return json_ok({"token": new.token, "label": body.label, "read_only": True}, 201)

    # -- clients and screenings -----------------------------------------------------------
    def _today(self, history: Any) -> dict[str, Any]:
        d = check_client(history, dt.datetime.now(dt.UTC), policy=self.studio.policy)
        return {
            "may_train": d.allowed,
            "why_not": d.reasons,
            "first_session": d.first_session,
            "guidance": d.guidance,
        }

    def _client_list(self) -> list[dict[str, Any]]:
        histories = self.store.histories()
        return [
            {"id": c.id, "name": c.name, "member_id": c.member_id,
             "today": self._today(histories[c.id])}
            for c in self.store.clients()
        ]  # fmt: skip

    async def clients(self, call: Call) -> Response:
        return json_ok({"clients": await self.db(self._client_list)})

    async def add_client(self, call: Call) -> Response:
        body: NewClient = call.body
        try:
            c = await self.db(
                self.store.add_client, body.name, body.birth_date, body.notes, body.member_id
            )
        except StoreError as e:
            raise Problem(409, "Cannot add the client", str(e)) from None
        await self._note(call, "client_added", c.id, {"name": c.name})
        return json_ok({"id": c.id, "name": c.name, "member_id": c.member_id}, 201)

    def _client_page(self, ref: str) -> dict[str, Any]:
        c = self.store.client(ref)
        history = self.store.history(c.id)
        s = history.screening
        sessions = []
        last_levels: dict[str, Any] = {}
        for r in self.store.sessions_of(c.id):
            sessions.append(session_summary(r))
            if not last_levels:
                levels = {
                    ch: v["calibration_mA"]
                    for ch, v in r["channels"].items()
                    if v.get("calibration_mA") is not None
                }
                if levels:
                    last_levels = {
                        "session_id": r["session_id"],
                        "simulated": r["simulated"],
                        "areas": [
                            {"channel": ch, "label": area_label(ch), "mA": levels[ch]}
                            for ch in in_trainer_order(list(levels))
                        ],
                    }
        return {
            "id": c.id,
            "name": c.name,
            "member_id": c.member_id,
            "birth_date": c.birth_date,
            "notes": c.notes,
            "screening": None
            if s is None
            else {
                "taken_at": s.taken_at.isoformat(),
                "taken_by": s.taken_by,
                "yes": [
                    {"key": k, "question": BY_KEY[k].question} for k in sorted(s.yes) if k in BY_KEY
                ],
                "clearances": sorted(s.clearances),
            },
            "today": self._today(history),
            "sessions": sessions,
            "last_intensities": last_levels or None,
        }

    async def client(self, call: Call) -> Response:
        try:
            return json_ok(await self.db(self._client_page, call.params["client_id"]))
        except StoreError as e:
            raise Problem(404, "No such client", str(e)) from None

    async def questions(self, call: Call) -> Response:
        return json_ok(
            {"questions": [
                {"key": c.key, "question": f"Do you have {c.question}?", "absolute": c.absolute}
                for c in CONTRAINDICATIONS
            ]}
        )  # fmt: skip

    async def add_screening(self, call: Call) -> Response:
        body: ScreeningBody = call.body
        c = await self._client_row(call.params["client_id"])
        yes, clearances = set(body.yes), set(body.clearances)
        problems = validate_answers(yes, clearances)
        if problems:
            hints = {}
            for k in sorted((yes | clearances) - set(BY_KEY)):
                close = difflib.get_close_matches(k, list(BY_KEY), n=1)
                if close:
                    hints[k] = close[0]
            detail = "; ".join(problems)
            if hints:
                detail += "; did you mean " + ", ".join(f"'{v}'" for v in hints.values()) + "?"
            raise Problem(422, "Invalid screening", detail, did_you_mean=hints)
        await self.db(self.store.add_screening, c.id, call.who, yes, clearances, list(BY_KEY))
        await self._note(
            call, "screening_added", c.id, {"yes": sorted(yes), "clearances": sorted(clearances)}
        )
        history = await self.db(self.store.history, c.id)
        return json_ok({"client_id": c.id, "today": self._today(history)}, 201)

    # -- workouts and suits ------------------------------------------------------------
    async def workouts(self, call: Call) -> Response:
        def listing() -> list[dict[str, Any]]:
            out = []
            for entry in self.studio.library.entries():
                _, text = self.studio.library.text(entry.id)
                w = load_workout_text(text, source=entry.id)
                plan = compile_workout(w)
                out.append(
                    {
                        "name": entry.id.removeprefix(BUILTIN_PREFIX),
                        "title": w.name,
                        "builtin": entry.builtin,
                        "hash": entry.hash,
                        "description": getattr(w, "description", "") or "",
                        "total_s": plan.total_s,
                        "timeline": [
                            {"kind": s.kind.value, "name": s.name,
                             "start_s": s.start_s, "end_s": s.end_s}
                            for s in plan.segments
                        ],
                    }
                )  # fmt: skip
            return out

        return json_ok({"workouts": await self.db(listing)})

    async def suits(self, call: Call) -> Response:
        found = await self.studio.scan()
        return json_ok(
            {"simulated": self.studio.rack.simulated,
             "suits": [
                 {"address": s.address, "battery_pct": s.battery_pct, "rssi_dbm": s.rssi_dbm,
                  "in_use": s.in_use, "state": s.state, "output_mA": s.output_mA}
                 for s in found
             ]}
        )  # fmt: skip

    # -- classes -----------------------------------------------------------------------
    async def classes(self, call: Call) -> Response:
        return json_ok({"classes": [class_view(k) for k in self.studio.classes.values()]})

    async def add_class(self, call: Call) -> Response:
        body: NewClass = call.body
        arrivals = [Arrival(a.client, a.suit, a.ate_recently, a.unwell) for a in body.clients]
        try:
            klass = await self.studio.set_up_class(
                body.room, body.workout, arrivals, body.trainers, by=call.who
            )
        except SetUpRefused as e:
            raise Problem(
                409, "The class cannot start", "; ".join(e.reasons), reasons=e.reasons
            ) from None
        for client_id, suit in zip(klass.client_ids, klass.suits, strict=True):
            await self._note(call, "checked_in", client_id, {"class_id": klass.id, "suit": suit})
        await self._note(
            call, "class_set_up", klass.id,
            {"room": klass.room, "workout": klass.workout, "suits": list(klass.suits)},
        )  # fmt: skip
        return json_ok(class_view(klass), 201)

    async def klass(self, call: Call) -> Response:
        return json_ok(class_view(self._class(call)))

    async def send_command(self, call: Call, klass: StudioClass, raw: dict[str, Any]) -> Response:
        """A command from the API, through the studio's one command call, audited."""
        result = await self.studio.send_command(klass, raw, source=f"studio:{call.who}")
        await self._note(call, "command", klass.id, {**raw, "ok": result.ok,
                                                      "message": result.message})  # fmt: skip
        if not result.ok:
            raise Problem(409, "Command refused", result.message, command=result.command)
        return json_ok({**result.as_dict(), "class": class_view(klass)})

    async def start(self, call: Call) -> Response:
        return await self.send_command(call, self._class(call), {"do": "start"})

    async def command(self, call: Call) -> Response:
        body: CommandBody = call.body
        raw = body.model_dump(exclude_none=True)
        return await self.send_command(call, self._class(call), raw)

    async def end(self, call: Call) -> Response:
        klass = self._class(call)
        if not klass.done.is_set():
            await self.send_command(call, klass, {"do": "stop"})
            with trio.move_on_after(END_WAIT_S):
                await self.studio.wait_ended(klass)
        return json_ok(await self._summary(klass.id))

    async def _summary(self, class_id: str) -> dict[str, Any]:
        def read() -> dict[str, Any]:
            record = self.store.class_record(class_id)
            sessions = self.store.sessions_of_class(class_id, events=True)
            return {
                "class_id": class_id,
                "workout": record["workout"],
                "workout_title": workout_title(record["workout"]),
                "room": record["room"],
                "status": record["status"],
                "state_words": RECORD_WORDS.get(record["status"], record["status"]),
                "minutes": round(record["class_s"] / 60, 1),
                "report_url": f"/api/v1/reports/{class_id}",
                "clients": [client_summary(s) for s in sessions],
            }

        try:
            return await self.db(read)
        except StoreError as e:
            raise Problem(404, "No such class", str(e)) from None

    async def summary(self, call: Call) -> Response:
        return json_ok(await self._summary(call.params["class_id"]))

    async def session(self, call: Call) -> Response:
        try:
            return json_ok(await self.db(self.store.session, call.params["session_id"]))
        except StoreError as e:
            raise Problem(404, "No such session", str(e)) from None

    async def report(self, call: Call) -> Response:
        class_id = call.params["class_id"]

        def read() -> dict[str, Any]:
            return {
                "class": self.store.class_record(class_id),
                "sessions": self.store.sessions_of_class(class_id),
                "events": self.store.class_events(class_id),
            }

        try:
            return json_ok(await self.db(read))
        except StoreError as e:
            raise Problem(404, "No such class", str(e)) from None


def set_login_cookies(response: Response, token: str, csrf: str) -> None:
    """The login in an HttpOnly SameSite=Strict cookie; the CSRF token readable by the page."""
    response.set_cookie(SESSION_COOKIE, token, httponly=True, samesite="strict", path="/")
    response.set_cookie(CSRF_COOKIE, csrf, httponly=False, samesite="strict", path="/")


def class_view(k: StudioClass) -> dict[str, Any]:
    """A class as the pages show it: who, where, its state in words, and the live snapshot."""
    snap = k.snapshot().as_json()
    channels = list(snap["channels"])
    order = in_trainer_order(channels)
    for c in snap["clients"]:
        c["areas"] = [
            {"channel": ch, "label": area_label(ch),
             "set_mA": c["set_mA"][channels.index(ch)],
             "now_mA": c["levels_mA"][channels.index(ch)]}
            for ch in order
        ]  # fmt: skip
    return {
        "id": k.id,
        "room": k.room,
        "workout": k.workout,
        "workout_title": k.plan.workout.name,
        "state": k.state,
        "state_words": STATE_WORDS.get(k.state, k.state),
        "ended": k.done.is_set(),
        "failure": k.failure,
        "guidance": list(k.guidance),
        "set_up_by": k.set_up_by,
        "simulated": k.simulated,
        "console_url": f"/classes/{k.id}/console?token={k.id}",
        "clients": [
            {"name": n, "client_id": cid, "suit": s, "session_id": sid}
            for n, cid, s, sid in zip(
                k.opened.names, k.client_ids, k.suits, k.opened.sessions, strict=True
            )
        ],
        "snapshot": snap,
    }


@functools.cache
def workout_title(name: str) -> str:
    """A built-in workout's title ("Classic strength"), or its name when it is none of them."""
    try:
        return load_workout(f"builtin:{name}").name
    except (KeyError, OSError, WorkoutError):
        return name


def session_summary(r: dict[str, Any]) -> dict[str, Any]:
    """A session in a client's history: when, what, how it ended, minutes, peak."""
    channels = r["channels"]
    return {
        "session_id": r["session_id"],
        "class_id": r["class_id"],
        "workout": r["workout"],
        "workout_title": workout_title(r["workout"]),
        "started_at": r["started_at"],
        "status": r["status"],
        "state_words": RECORD_WORDS.get(r["status"], r["status"]),
        "simulated": r["simulated"],
        "first_session": r["first_session"],
        "minutes_stimulated": round(
            max((v["stim_s"] for v in channels.values()), default=0.0) / 60, 1
        ),
        "peak_mA": max((v["max_mA"] for v in channels.values()), default=0.0),
    }


def client_summary(r: dict[str, Any]) -> dict[str, Any]:
    """One client at the end of a class: minutes, peak per body area, requests, next time."""
    channels = r["channels"]
    peaks = [
        {"channel": ch, "label": area_label(ch), "peak_mA": channels[ch]["max_mA"]}
        for ch in in_trainer_order(list(channels))
    ]
    events = r.get("events", [])
    asked_less, areas = [], []
    for e in events:
        if e["kind"] != "client_request" or e["client"] != r["client_name"]:
            continue
        channel = e["data"].get("channel")
        if channel is None:
            asked_less.append(e["message"])
            continue
        label = area_label(channel)
        asked_less.append(f"less on {label} (felt {e['data'].get('cr10', '?')} of 10)")
        if label not in areas:
            areas.append(label)
    next_time = []
    if r["first_session"]:
        next_time.append("first session done: keep the next ones light for the first 10 weeks")
    if asked_less:
        named = ", ".join(areas) or "the areas they named"
        next_time.append(f"asked for less: start {named} lower next time")
    if r["abdominal_off"]:
        next_time.append("abs stayed off (ate recently): ask them not to eat 1.5 h before")
    if not next_time:
        next_time.append("raise a little where they felt comfortable")
    return {
        **session_summary(r),
        "client_name": r["client_name"],
        "client_id": r["client_id"],
        "suit": r["suit"],
        "peak_per_area": peaks,
        "asked_for_less": asked_less,
        "next_time": next_time,
    }
