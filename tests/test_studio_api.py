"""The studio's HTTP API, through its real ASGI app, against simulated suits.

Every documented operation is exercised (checked against the OpenAPI document,
which must validate and list every route of the app); every change is refused
without a login (401), with a read-only token (403) and without the CSRF
token (403); hostile bodies are refused as problems, never 500s.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio
from openapi_spec_validator import validate as validate_openapi
from starlette.routing import Route, WebSocketRoute

from suit_controller.studio.screening import CONTRAINDICATIONS

from .studio_helpers import client, logged_in, make_site, start_site, started_class

NO_ID = "00000000-0000-0000-0000-000000000000"


def operations(doc: dict[str, Any]) -> set[tuple[str, str]]:
    return {(m.upper(), p) for p, ops in doc["paths"].items() for m in ops}


def template_of(doc: dict[str, Any], method: str, path: str) -> tuple[str, str] | None:
    for p, ops in doc["paths"].items():
        pattern = "^" + re.sub(r"{\w+}", "[^/]+", p) + "$"
        if method.lower() in ops and re.match(pattern, path):
            return (method.upper(), p)
    return None


class Recorder:
    """Notes every operation a client's requests exercised."""

    def __init__(self, doc: dict[str, Any]) -> None:
        self.doc = doc
        self.seen: set[tuple[str, str]] = set()

    async def __call__(self, request: httpx.Request) -> None:
        op = template_of(self.doc, request.method, request.url.path)
        if op is not None:
            self.seen.add(op)

    def watch(self, c: httpx.AsyncClient) -> httpx.AsyncClient:
        c.event_hooks["request"].append(self)
        return c


def is_problem(r: httpx.Response, status: int) -> bool:
    return (
        r.status_code == status
        and r.headers["content-type"].startswith("application/problem+json")
        and r.json()["status"] == status
        and bool(r.json()["detail"])
    )


async def test_the_document_validates_and_lists_every_route(tmp_path: Path) -> None:
    async with trio.open_nursery() as nursery:
        site, _ = await start_site(nursery, tmp_path)
        async with client(site) as c:
            doc = (await c.get("/api/v1/openapi.json")).json()
        nursery.cancel_scope.cancel()
    validate_openapi(doc)
    documented = operations(doc)
    for route in site.app.routes:
        assert isinstance(route, Route | WebSocketRoute)
        methods = getattr(route, "methods", None) or {"GET"}
        for m in methods - {"HEAD"}:
            assert (m, route.path) in documented, f"{m} {route.path} is not in the document"


async def test_a_trainers_day_through_the_api_exercises_every_operation(tmp_path: Path) -> None:
    with trio.fail_after(120):
        async with trio.open_nursery() as nursery:
            site, rack = await start_site(nursery, tmp_path)
            doc = site.document
            rec = Recorder(doc)
            tess = rec.watch(await logged_in(site, "Tess"))
            mia = rec.watch(await logged_in(site, "Mia"))
            assert (await tess.get("/api/v1/me")).json()["role"] == "trainer"

            # clients: add two, one refused for a duplicate member id
            r = await tess.post("/api/v1/clients", json={"name": "Ana", "member_id": "M-1"})
            assert r.status_code == 201
            ana = r.json()["id"]
            r = await tess.post("/api/v1/clients", json={"name": "Ben", "member_id": "M-1"})
            assert is_problem(r, 409) and "already belongs to Ana" in r.json()["detail"]
            ben = (await tess.post("/api/v1/clients", json={"name": "Ben"})).json()["id"]
            listing = (await tess.get("/api/v1/clients")).json()["clients"]
            today = {c["name"]: c["today"] for c in listing}
            assert not today["Ana"]["may_train"]
            assert "no contraindication screening" in today["Ana"]["why_not"][0]

            # screening: questions for people; a typo gets a "did you mean"
            qs = (await tess.get("/api/v1/screening-questions")).json()["questions"]
            assert qs[0]["question"].startswith("Do you have ")
            assert len(qs) == len(CONTRAINDICATIONS)
            r = await tess.post(f"/api/v1/clients/{ana}/screenings", json={"yes": ["pregnacy"]})
            assert is_problem(r, 422) and r.json()["did_you_mean"] == {"pregnacy": "pregnancy"}
            r = await tess.post(
                f"/api/v1/clients/{ana}/screenings",
                json={"yes": ["hypertension"], "clearances": ["hypertension"]},
            )
            assert r.status_code == 201 and r.json()["today"]["may_train"]
            r = await tess.post(f"/api/v1/clients/{ben}/screenings", json={"yes": ["epilepsy"]})
            assert r.status_code == 201 and not r.json()["today"]["may_train"]
            assert is_problem(await tess.post(f"/api/v1/clients/{NO_ID}/screenings", json={}), 404)

            # workouts and suits
            workouts = (await tess.get("/api/v1/workouts")).json()["workouts"]
            strength = next(w for w in workouts if w["name"] == "classic_strength")
            assert strength["timeline"][0]["kind"] == "warmup" and strength["total_s"] > 600
            suits = (await tess.get("/api/v1/suits")).json()["suits"]
            assert [s["address"] for s in suits] == ["SIM-01", "SIM-02", "SIM-03", "SIM-04"]
            assert all(s["battery_pct"] == 100 and s["rssi_dbm"] < 0 for s in suits)

            # a class: Ben is refused before start, with the reason in words
            body = {
                "room": "Room 1",
                "workout": "classic_strength",
                "trainers": ["Tess"],
                "clients": [
                    {"client": ana, "suit": "SIM-01", "ate_recently": True},
                    {"client": ben, "suit": "SIM-02"},
                ],
            }
            r = await tess.post("/api/v1/classes", json=body)
            assert is_problem(r, 409)
            assert any("Ben: epilepsy" in x for x in r.json()["reasons"])
            body["clients"] = body["clients"][:1]
            r = await tess.post("/api/v1/classes", json=body)
            assert r.status_code == 201, r.text
            klass = r.json()
            cid = klass["id"]
            assert klass["state"] == "ready" and any("abdominal" in g for g in klass["guidance"])
            assert [a["label"] for a in klass["snapshot"]["clients"][0]["areas"]][:2] == [
                "Thighs (front)",
                "Thighs (back)",
            ]
            assert (await tess.get("/api/v1/classes")).json()["classes"][0]["id"] == cid
            assert (await tess.get("/api/v1/suits")).json()["suits"][0]["in_use"]

            r = await tess.post(f"/api/v1/classes/{cid}/start")
            assert r.status_code == 200 and r.json()["class"]["state"] == "running"
            r = await tess.post(f"/api/v1/classes/{cid}/start")
            assert is_problem(r, 409) and "already running" in r.json()["detail"]
            r = await tess.post(
                f"/api/v1/classes/{cid}/commands",
                json={"do": "set_intensity", "client": 1, "channel": "quads", "mA": 12},
            )
            assert r.status_code == 200, r.text
            # an e-stop is never refused for its form (an id, a field the schema does not know)
            r = await tess.post(
                f"/api/v1/classes/{cid}/commands", json={"do": "estop", "id": 5, "from": "wall"}
            )
            assert r.status_code == 200, r.text
            await trio.sleep(0.1)
            assert not rack.suit("SIM-01").firmware.applied_mA.any()  # at the suit itself
            assert (await tess.get(f"/api/v1/classes/{cid}")).json()["state"] == "estopped"
            for cmd in ("reset", "resume"):
                r = await tess.post(f"/api/v1/classes/{cid}/commands", json={"do": cmd})
                assert r.status_code == 200, r.text
            r = await tess.get(f"/api/v1/classes/{cid}/summary")
            assert r.status_code == 200 and r.json()["status"] == "running"

            r = await tess.post(f"/api/v1/classes/{cid}/end")
            assert r.status_code == 200, r.text
            summary = r.json()
            assert summary["status"] == "stopped"
            (one,) = summary["clients"]
            assert one["client_name"] == "Ana" and one["first_session"] is True
            assert one["peak_per_area"][0]["label"] == "Thighs (front)"
            assert any("abs stayed off" in n for n in one["next_time"])
            assert not rack.suit("SIM-01").firmware.applied_mA.any()
            r = await tess.post(f"/api/v1/classes/{cid}/commands", json={"do": "resume"})
            assert is_problem(r, 409) and "ended" in r.json()["detail"]

            # history, session, report
            page = (await tess.get(f"/api/v1/clients/{ana}")).json()
            assert page["screening"]["yes"][0]["key"] == "hypertension"
            (hist,) = page["sessions"]
            assert hist["class_id"] == cid and hist["status"] == "stopped"
            assert page["last_intensities"]["areas"][0]["label"] == "Thighs (front)"
            session = (await tess.get(f"/api/v1/sessions/{hist['session_id']}")).json()
            assert session["client_name"] == "Ana" and session["events"]
            report = (await tess.get(f"/api/v1/reports/{cid}")).json()
            assert report["class"]["status"] == "stopped" and len(report["sessions"]) == 1
            for path in (f"/api/v1/clients/{NO_ID}", f"/api/v1/sessions/{NO_ID}",
                         f"/api/v1/reports/{NO_ID}", f"/api/v1/classes/{NO_ID}",
                         f"/api/v1/classes/{NO_ID}/summary"):  # fmt: skip
                assert is_problem(await tess.get(path), 404), path
            for path in ("start", "end"):
                assert is_problem(await tess.post(f"/api/v1/classes/{NO_ID}/{path}"), 404)

            # the workout library and the designer
            await designer_calls(tess, mia, site)

            # the suits page: enroll, list, rotate, forget (tests/test_studio_suit_keys.py)
            code = rack.suit("SIM-04").setup_code
            r = await mia.post("/api/v1/suit-keys", json={"address": "SIM-04", "setup_code": code})
            assert r.status_code == 201
            assert (await mia.get("/api/v1/suit-keys")).json()["suits"][0]["address"] == "SIM-04"
            assert (await mia.post("/api/v1/suit-keys/SIM-04/rotate")).json()["key_id"] == 2
            assert (await mia.post("/api/v1/suit-keys/SIM-04/forget", json={})).status_code == 200

            # managers: accounts, tokens, the audit trail
            r = await mia.post(
                "/api/v1/accounts", json={"name": "Ugo", "role": "trainer", "password": "x" * 10}
            )
            assert r.status_code == 201
            r = await mia.post(
                "/api/v1/accounts", json={"name": "Ugo", "role": "trainer", "password": "x" * 10}
            )
            assert is_problem(r, 409)
            token = (await mia.post("/api/v1/tokens", json={"label": "gym CRM"})).json()["token"]
            reader = rec.watch(client(site))
            reader.headers["authorization"] = f"Bearer {token}"
            assert (await reader.get("/api/v1/clients")).status_code == 200
            audit = (await mia.get("/api/v1/audit")).json()["entries"]
            actions = [(e["who"], e["action"]) for e in audit]
            assert ("Tess", "client_added") in actions and ("Tess", "screening_added") in actions
            assert ("Tess", "checked_in") in actions
            about_ana = [e["action"] for e in audit if e["subject"] == ana]
            assert about_ana == ["checked_in", "checked_in", "screening_added", "client_added"]
            commands = [e["detail"]["do"] for e in audit if e["action"] == "command"]
            assert {"start", "set_intensity", "estop", "reset", "resume", "stop"} <= set(commands)
            assert (await tess.get("/api/v1/audit")).status_code == 403

            # the pages and the console (a page, its script, its WebSocket's refusal)
            plain = rec.watch(client(site))
            assert (await plain.get("/")).status_code == 200
            r = await plain.post("/api/v1/login", json={"name": "Tess", "password": "not-hers"})
            assert is_problem(r, 401)
            assert (await plain.get("/login")).status_code == 200
            assert (await plain.get("/static/studio/studio.js")).status_code == 200
            r = await plain.get("/login/link", params={"token": "nope"})
            assert r.status_code == 303 and "spent" in r.headers["location"]
            assert (await plain.get(f"/classes/{cid}/console")).status_code == 303  # log in
            r = await tess.get(f"/classes/{cid}/console", params={"token": cid})
            assert r.status_code == 200 and "<html" in r.text.lower()
            assert (await tess.get(f"/classes/{cid}/static/app.js")).status_code == 200
            assert (await plain.get("/ws")).status_code in (400, 403, 404)
            assert (await plain.get(f"/classes/{cid}/ws")).status_code in (400, 403, 404)
            assert (await plain.get("/api/v1/openapi.json")).status_code == 200
            # operations (tests/test_operations.py checks what they say)
            assert (await plain.get("/healthz")).status_code == 200
            assert (await plain.get("/api/v1/health")).status_code == 200
            assert is_problem(await plain.get("/metrics"), 401)
            assert (await reader.get("/metrics")).status_code == 200

            assert (await tess.post("/api/v1/logout")).status_code == 200
            assert is_problem(await tess.get("/api/v1/me"), 401)
            for c in (tess, mia, reader, plain):
                await c.aclose()
            nursery.cancel_scope.cancel()
    assert operations(doc) - rec.seen == set()


async def test_changes_are_refused_without_login_token_or_csrf(tmp_path: Path) -> None:
    async with trio.open_nursery() as nursery:
        site, _ = await start_site(nursery, tmp_path)
        doc = site.document
        mia = await logged_in(site, "Mia")
        token = (await mia.post("/api/v1/tokens", json={"label": "crm"})).json()["token"]
        no_csrf = await logged_in(site, "Tess", csrf=False)
        anonymous = client(site)
        reader = client(site)
        reader.headers["authorization"] = f"Bearer {token}"
        checked = 0
        for path, ops in doc["paths"].items():
            url = re.sub(r"{\w+}", NO_ID, path)
            for method, op in ops.items():
                if op.get("security") == []:
                    continue
                r = await anonymous.request(method, url, json={})
                assert is_problem(r, 401), (method, path, r.text)
                if "403" in op["responses"]:  # a change
                    r = await reader.request(method, url, json={})
                    assert is_problem(r, 403) and "read-only" in r.json()["detail"], path
                    r = await no_csrf.request(method, url, json={})
                    assert is_problem(r, 403), (method, path, r.text)
                    checked += 1
        assert checked >= 10
        for _ in range(5):
            r = await anonymous.post("/api/v1/login", json={"name": "Tess", "password": "wrong!!"})
            assert is_problem(r, 401)
        r = await anonymous.post("/api/v1/login", json={"name": "Tess", "password": "trainer-pass"})
        assert is_problem(r, 429) and "wait" in r.json()["detail"]  # even the right one, now
        r = await anonymous.post("/api/v1/login", json={"name": "Mia", "password": "manager-pass"})
        assert r.status_code == 200  # another account is not held up
        elsewhere = httpx.AsyncClient(  # Tess's own tablet: a stranger cannot lock her out
            transport=httpx.ASGITransport(app=site.app, client=("10.0.0.9", 50000)),
            base_url="http://studio.test",
        )
        r = await elsewhere.post("/api/v1/login", json={"name": "Tess", "password": "trainer-pass"})
        assert r.status_code == 200, r.text
        await elsewhere.aclose()
        for c in (mia, no_csrf, anonymous, reader):
            await c.aclose()
        nursery.cancel_scope.cancel()


async def test_hostile_bodies_are_refused_as_problems(tmp_path: Path) -> None:
    async with trio.open_nursery() as nursery:
        site, _ = await start_site(nursery, tmp_path)
        tess = await logged_in(site, "Tess")
        json_type = {"content-type": "application/json"}

        async def post(raw: bytes, headers: dict[str, str] = json_type) -> httpx.Response:
            return await tess.post("/api/v1/clients", content=raw, headers=headers)

        assert is_problem(await post(b"[" * 5000 + b"]" * 5000), 400)
        assert is_problem(await post(b'{"name": "' + b"a" * 100_000 + b'"}'), 413)
        assert is_problem(await post(b'{"name": "\\ud800"}'), 400)
        assert is_problem(await post(b'{"name": "\xff\xfe"}'), 400)
        assert is_problem(await post(b'{"name": NaN}'), 400)
        assert is_problem(await post(b'{"name": "Ana"', json_type), 400)
        assert is_problem(await post(b'{"name": "Ana"}', {"content-type": "text/plain"}), 415)
        assert is_problem(await post(json.dumps({"name": True}).encode()), 422)
        assert is_problem(await post(json.dumps({"name": "A", "admin": 1}).encode()), 422)
        assert is_problem(await post(json.dumps([1, 2]).encode()), 422)
        r = await tess.post(f"/api/v1/clients/{NO_ID}/screenings", json={"yes": [1]})
        assert is_problem(r, 422)
        r = await tess.post(
            "/api/v1/classes",
            json={"workout": "classic_strength", "trainers": ["Tess"],
                  "clients": [{"client": "x", "suit": "SIM-01", "ate_recently": 1}]},
        )  # fmt: skip
        assert is_problem(r, 422) and "ate_recently" in r.json()["detail"]
        r = await tess.post(
            f"/api/v1/classes/{NO_ID}/commands", json={"do": "set_intensity", "mA": True}
        )
        assert is_problem(r, 422)
        assert is_problem(await tess.get("/api/v1/clients/" + "x" * 500), 404)
        assert is_problem(await tess.delete("/api/v1/clients"), 405)
        assert is_problem(await tess.get("/api/v1/nothing"), 404)
        assert (await tess.get("/api/v1/clients")).json()["clients"] == []  # nothing was added
        await tess.aclose()
        nursery.cancel_scope.cancel()


async def test_the_console_of_a_class_steers_it_as_the_logged_in_trainer(tmp_path: Path) -> None:
    """The console's WebSocket behind the studio's login: commands audited with who."""
    from hypercorn.config import Config
    from hypercorn.trio import serve
    from trio_websocket import ConnectionRejected, open_websocket_url

    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            site, rack = await start_site(nursery, tmp_path)
            config = Config()
            config.bind = ["127.0.0.1:0"]
            config.accesslog = config.errorlog = None
            binds = await nursery.start(serve, site.app, config)
            base = binds[0]
            tess = await logged_in(site, "Tess")
            ana = (await tess.post("/api/v1/clients", json={"name": "Ana"})).json()["id"]
            await tess.post(f"/api/v1/clients/{ana}/screenings", json={})
            klass = (
                await tess.post(
                    "/api/v1/classes",
                    json={
                        "workout": "classic_strength",
                        "trainers": ["Tess"],
                        "clients": [{"client": ana, "suit": "SIM-03"}],
                    },
                )
            ).json()
            cid = klass["id"]
            ws_url = base.replace("http", "ws") + f"/classes/{cid}/ws?token={cid}"  # the page's
            cookie = "suitctl_session=" + tess.cookies["suitctl_session"]
            with pytest.raises(ConnectionRejected):  # no login
                async with open_websocket_url(ws_url):
                    pass
            mia = await logged_in(site, "Mia")
            token = (await mia.post("/api/v1/tokens", json={"label": "crm"})).json()["token"]
            with pytest.raises(ConnectionRejected):  # a read-only API token never steers
                async with open_websocket_url(
                    ws_url, extra_headers=[("cookie", f"suitctl_session={token}")]
                ):
                    pass
            await mia.aclose()
            with pytest.raises(ConnectionRejected):  # another site's page
                async with open_websocket_url(
                    ws_url, extra_headers=[("cookie", cookie), ("origin", "http://evil.test")]
                ):
                    pass
            async with open_websocket_url(ws_url, extra_headers=[("cookie", cookie)]) as ws:
                for do in ("start", "estop"):
                    await ws.send_message(json.dumps({"id": do, "do": do}))
                    while True:
                        msg = json.loads(await ws.get_message())
                        if msg["type"] == "result":
                            assert msg["id"] == do and msg["ok"], msg
                            break
            await trio.sleep(0.1)
            assert not rack.suit("SIM-03").firmware.applied_mA.any()
            audit = site.accounts.audit_trail(subject=cid)
            assert [(e["who"], e["detail"]["do"]) for e in audit if e["action"] == "command"] == [
                ("Tess", "estop"),
                ("Tess", "start"),
            ]
            # a logout ends the console's steering: the next command closes the socket
            from trio_websocket import ConnectionClosed

            async with open_websocket_url(ws_url, extra_headers=[("cookie", cookie)]) as ws:
                await ws.send_message(json.dumps({"id": "r1", "do": "reset"}))
                while json.loads(await ws.get_message())["type"] != "result":
                    pass
                assert (await tess.post("/api/v1/logout")).status_code == 200
                await ws.send_message(json.dumps({"id": "p1", "do": "pause"}))
                with pytest.raises(ConnectionClosed):
                    while True:
                        msg = json.loads(await ws.get_message())
                        assert msg["type"] != "result", msg  # never carried out
            audit = site.accounts.audit_trail(subject=cid)
            assert "pause" not in [e["detail"]["do"] for e in audit if e["action"] == "command"]
            await tess.aclose()
            nursery.cancel_scope.cancel()


async def test_a_console_flooding_pauses_is_rate_limited_and_not_audited_past_its_limit(
    tmp_path: Path,
) -> None:
    """Issue 12: the console's pause goes through its connection's rate limit like any
    command; refusals past the limit are counted by the desk, never one audit write each;
    the e-stop from the same page is still obeyed."""
    from hypercorn.config import Config
    from hypercorn.trio import serve
    from trio_websocket import open_websocket_url

    from suit_controller.commands import RateLimit

    with trio.fail_after(90):
        async with trio.open_nursery() as nursery:
            site, rack = await start_site(nursery, tmp_path)
            config = Config()
            config.bind = ["127.0.0.1:0"]
            config.accesslog = config.errorlog = None
            binds = await nursery.start(serve, site.app, config)
            tess = await logged_in(site, "Tess")
            ana = (await tess.post("/api/v1/clients", json={"name": "Ana"})).json()["id"]
            await tess.post(f"/api/v1/clients/{ana}/screenings", json={})
            klass = (
                await tess.post(
                    "/api/v1/classes",
                    json={
                        "workout": "classic_strength",
                        "trainers": ["Tess"],
                        "clients": [{"client": ana, "suit": "SIM-03"}],
                    },
                )
            ).json()
            cid = klass["id"]
            ws_url = binds[0].replace("http", "ws") + f"/classes/{cid}/ws?token={cid}"
            cookie = "suitctl_session=" + tess.cookies["suitctl_session"]
            n = 120
            async with open_websocket_url(ws_url, extra_headers=[("cookie", cookie)]) as ws:
                await ws.send_message(json.dumps({"id": "go", "do": "start"}))
                results: dict[str, Any] = {}
                while "go" not in results:
                    msg = json.loads(await ws.get_message())
                    if msg["type"] == "result":
                        results[msg["id"]] = msg
                desk = site.consoles[cid].session.desk
                desk.limit = RateLimit(per_s=0.001, burst=10)  # no refill during the test
                for k in range(n):
                    await ws.send_message(json.dumps({"id": f"p{k}", "do": "pause"}))
                await ws.send_message(json.dumps({"id": "stop-now", "do": "estop"}))
                while len(results) < n + 2:
                    msg = json.loads(await ws.get_message())
                    if msg["type"] == "result":
                        results[msg["id"]] = msg
            limited = [r for r in results.values() if "more than 10 commands" in r["message"]]
            assert len(limited) == n - 10, len(limited)
            assert results["stop-now"]["ok"], results["stop-now"]
            await trio.sleep(0.2)
            assert not rack.suit("SIM-03").firmware.applied_mA.any()
            audit = site.accounts.audit_trail(subject=cid)
            pauses = [e for e in audit if e["action"] == "command" and e["detail"]["do"] == "pause"]
            assert len(pauses) == 10, len(pauses)  # the ones within the limit, and no more
            assert [e for e in audit if e["action"] == "command" and e["detail"]["do"] == "estop"]
            await tess.aclose()
            nursery.cancel_scope.cancel()


def test_the_summary_says_who_asked_for_less_in_body_area_words() -> None:
    from suit_controller.studio.api import client_summary

    record = {
        "session_id": "s", "class_id": "c", "workout": "classic_strength",
        "started_at": "2026-12-01T10:00:00.000+00:00", "status": "finished",
        "simulated": True, "first_session": False, "abdominal_off": False,
        "client_name": "Ana", "client_id": "a", "suit": "SIM-01",
        "channels": {
            "quads": {"stim_s": 600.0, "max_mA": 31.0},
            "abs": {"stim_s": 300.0, "max_mA": 20.0},
        },
        "events": [
            {"kind": "client_request", "client": "Ana", "message": "Ana asks for less on quads",
             "data": {"channel": "quads", "cr10": 8.2}},
            {"kind": "client_request", "client": "Ben", "message": "Ben asks for less on abs",
             "data": {"channel": "abs", "cr10": 9.0}},
        ],
    }  # fmt: skip
    s = client_summary(record)
    assert s["minutes_stimulated"] == 10.0 and s["peak_mA"] == 31.0
    assert [p["label"] for p in s["peak_per_area"]] == ["Thighs (front)", "Abs"]
    assert s["asked_for_less"] == ["less on Thighs (front) (felt 8.2 of 10)"]
    assert s["next_time"] == ["asked for less: start Thighs (front) lower next time"]


MY_WORKOUT = """\
# a short class for the API test
name: API class
programs:
  p: {frequency_hz: 85, pulse_width_us: 350, impulse_s: 4, pause_s: 4}
phases:
  - kind: warmup
    duration: 5m
  - kind: suit
    exercises:
      - {name: Squat, duration: 21m, program: p, channels: {quads: 0.8, lower_back: 0.3}}
  - kind: stretch
    duration: 5m
"""


async def designer_calls(tess: httpx.AsyncClient, mia: httpx.AsyncClient, site: Any) -> None:
    """Every library and designer operation, as a trainer uses them."""
    lib = (await tess.get("/api/v1/library")).json()["workouts"]
    assert {"builtin:classic_strength", "builtin:first_session"} <= {w["id"] for w in lib}
    r = await tess.post("/api/v1/library", json={"yaml": MY_WORKOUT.replace("quads", "neck")})
    assert is_problem(r, 409) and r.json()["problems"][0]["line"] == 10
    r = await tess.post("/api/v1/library", json={"yaml": MY_WORKOUT})
    assert r.status_code == 201, r.text
    mine = r.json()
    assert (await tess.get("/api/v1/library", params={"q": "api"})).json()["workouts"] == [mine]
    one = (await tess.get(f"/api/v1/library/{mine['id']}")).json()
    assert one["yaml"] == MY_WORKOUT and one["check"]["ok"]
    assert one["check"]["suit_block"]["minutes"] == 21.0
    r = await tess.get(f"/api/v1/library/{mine['id']}/yaml")
    assert r.text == MY_WORKOUT and r.headers["x-workout-hash"] == mine["hash"]
    assert "api-class.yaml" in r.headers["content-disposition"]
    longer = MY_WORKOUT.replace("duration: 21m", "duration: 24m")
    r = await tess.post(f"/api/v1/library/{mine['id']}/versions", json={"yaml": longer})
    assert r.status_code == 200 and r.json()["hash"] != mine["hash"]
    saved = r.json()
    r = await tess.get(f"/api/v1/workout-versions/{mine['hash']}")
    assert r.status_code == 200 and r.text == MY_WORKOUT
    r = await tess.post("/api/v1/library/builtin:classic_strength/versions", json={"yaml": longer})
    assert is_problem(r, 409) and "duplicate it first" in r.json()["detail"]
    r = await tess.post("/api/v1/library/builtin:first_session/duplicate")
    assert r.status_code == 201 and r.json()["title"] == "First session (copy)"
    copy = r.json()["id"]
    r = await tess.post(f"/api/v1/library/{copy}/archive", json={"archived": True})
    assert r.status_code == 200 and r.json()["archived"]
    assert copy not in [w["id"] for w in (await tess.get("/api/v1/library")).json()["workouts"]]
    for path in (f"/api/v1/library/{NO_ID}", f"/api/v1/workout-versions/{'0' * 64}"):
        assert is_problem(await tess.get(path), 404), path

    # checking: every problem with its line; hostile text refused before parsing
    r = await tess.post("/api/v1/designer/check", json={"yaml": MY_WORKOUT.replace("21m", "26m")})
    report = r.json()
    assert not report["ok"]
    assert any(p["line"] == 8 and "25m" in p["message"] for p in report["problems"])
    for hostile in ("a: &x [1]\nb: *x\n", "a: " + "[" * 50 + "]" * 50, "name: \x00\x01",
                    "name: x\n" + "#" * 40_000):  # fmt: skip
        r = await tess.post("/api/v1/designer/check", json={"yaml": hostile})
        assert is_problem(r, 409), hostile[:20]
        r = await tess.post("/api/v1/library", json={"yaml": hostile})
        assert is_problem(r, 409), hostile[:20]
    r = await tess.post("/api/v1/designer/check", content=b'{"yaml": "\\ud800"}',
                        headers={"content-type": "application/json"})  # fmt: skip
    assert is_problem(r, 400) and "surrogate" in r.json()["detail"]

    # the form: changes keep the trainer's comments and key order (ruamel round-trip)
    r = await tess.post("/api/v1/designer/edit", json={"yaml": MY_WORKOUT, "changes": [
        {"path": ["phases", 1, "exercises", 0, "channels", "glutes"], "value": 0.5},
        {"path": ["phases", 1, "exercises", 0, "channels", "lower_back"], "value": None},
        {"path": ["phases", 0, "duration"], "value": "6m"}]})  # fmt: skip
    assert r.status_code == 200, r.text
    edited = r.json()["yaml"]
    assert edited.startswith("# a short class for the API test\nname: API class\n")
    assert "channels: {quads: 0.8, glutes: 0.5}" in edited and "duration: 6m" in edited
    assert r.json()["check"]["ok"]
    r = await tess.post("/api/v1/designer/edit", json={"yaml": MY_WORKOUT, "changes": [
        {"path": ["phases", 9, "duration"], "value": "6m"}]})  # fmt: skip
    assert is_problem(r, 409) and "no phases.9.duration" in r.json()["detail"]

    # trying it on two simulated bodies, in a separate process
    r = await tess.post("/api/v1/designer/runs", json={"yaml": longer, "clients": 2})
    assert r.status_code == 202, r.text
    run_id = r.json()["id"]
    run = await poll_run(tess, run_id)
    assert run["state"] == "done", run
    assert [c["client"] for c in run["result"]["clients"]] == ["Client 1", "Client 2"]
    assert is_problem(await tess.get(f"/api/v1/designer/runs/{NO_ID}"), 404)
    r = await tess.post("/api/v1/designer/runs", json={"yaml": longer.replace("quads", "neck")})
    assert is_problem(r, 409) and r.json()["problems"][0]["line"] == 10

    # a class of the saved version records its hash
    listing = (await tess.get("/api/v1/clients")).json()["clients"]
    ana = next(c["id"] for c in listing if c["name"] == "Ana")
    r = await tess.post("/api/v1/classes", json={
        "room": "Room 2", "workout": mine["id"], "trainers": ["Tess"],
        "clients": [{"client": ana, "suit": "SIM-03"}]})  # fmt: skip
    assert r.status_code == 201, r.text
    klass = r.json()
    assert klass["workout_title"] == "API class"
    await tess.post(f"/api/v1/classes/{klass['id']}/end")
    record = (await tess.get(f"/api/v1/reports/{klass['id']}")).json()["class"]
    assert record["workout_hash"] == saved["hash"]


async def poll_run(c: httpx.AsyncClient, run_id: str) -> dict[str, Any]:
    """Poll a simulation as the page does, until it is done or failed."""
    with trio.fail_after(120):
        while True:
            run: dict[str, Any] = (await c.get(f"/api/v1/designer/runs/{run_id}")).json()
            if run["state"] != "running":
                return run
            await trio.sleep(0.2)  # polling over HTTP, as the page does


async def test_a_logged_in_pages_estop_and_stop_need_no_csrf_token(tmp_path: Path) -> None:
    """An e-stop is never refused for its form: a page that lost its CSRF token still stops.

    Every other change keeps the CSRF check; a read-only token and no login stay refused
    for everything but the e-stop.
    """
    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            site, rack = await start_site(nursery, tmp_path)
            tess = await logged_in(site, "Tess")
            no_csrf = await logged_in(site, "Mia", csrf=False)
            token = (await no_csrf.post("/api/v1/tokens", json={"label": "x"})).status_code
            assert token == 403  # a manager's change without the token: refused
            ana = (await tess.post("/api/v1/clients", json={"name": "Ana"})).json()["id"]
            r = await tess.post(f"/api/v1/clients/{ana}/screenings", json={})
            assert r.status_code == 201
            body = {"workout": "classic_strength", "trainers": ["Tess"],
                    "clients": [{"client": ana, "suit": "SIM-01"}]}  # fmt: skip
            cid = (await tess.post("/api/v1/classes", json=body)).json()["id"]
            url = f"/api/v1/classes/{cid}/commands"
            assert is_problem(await no_csrf.post(f"/api/v1/classes/{cid}/start"), 403)
            assert (await tess.post(f"/api/v1/classes/{cid}/start")).status_code == 200
            suit = rack.suit("SIM-01").firmware
            for cmd in ({"do": "set_intensity", "mA": 30}, {"do": "pause"}, {"do": "reset"}):
                assert is_problem(await no_csrf.post(url, json=cmd), 403), cmd
            # a duplicate key: the bytes say "estop", so it is an e-stop and only that (never
            # a set_intensity without the token)
            sneaky = b'{"do": "estop", "do": "set_intensity", "mA": 30}'
            r = await no_csrf.post(
                url, content=sneaky, headers={"content-type": "application/json"}
            )
            assert r.status_code == 200 and r.json()["command"] == "estop", r.text
            assert suit.state.name == "STOPPED" and not suit.applied_mA.any()
            for cmd in ("reset", "resume"):
                assert (await tess.post(url, json={"do": cmd})).status_code == 200
            # anything else without a login stays refused; an e-stop is honoured from anyone
            # who reaches the studio (like the suits' own stop characteristic), audited
            assert is_problem(await client(site).post(url, json={"do": "pause"}), 401)
            r = await client(site).post(url, json={"do": "estop"})
            assert r.status_code == 200 and r.json()["command"] == "estop", r.text
            assert suit.state.name == "STOPPED" and not suit.applied_mA.any()
            trail = site.accounts.audit_trail(subject=cid)
            assert ("not logged in", "estop") in [
                (e["who"], e["detail"]["do"]) for e in trail if e["action"] == "command"
            ]
            for cmd in ("reset", "resume"):
                assert (await tess.post(url, json={"do": cmd})).status_code == 200

            r = await no_csrf.post(url, json={"do": "estop"})
            assert r.status_code == 200, r.text
            await trio.sleep(0.1)
            assert suit.state.name == "STOPPED" and not suit.applied_mA.any()
            seen = {s["address"]: s for s in (await tess.get("/api/v1/suits")).json()["suits"]}
            assert seen["SIM-01"]["state"] == "stopped" and seen["SIM-01"]["output_mA"] == 0
            assert seen["SIM-02"]["state"] == "idle"  # never in a class
            assert is_problem(await no_csrf.post(url, json={"do": "reset"}), 403)
            for cmd in ("reset", "resume"):
                assert (await tess.post(url, json={"do": cmd})).status_code == 200
            r = await no_csrf.post(url, content=b'{"do": "estop", "x": [[[[[1]]]]]}',
                                   headers={"content-type": "application/json"})  # fmt: skip
            assert r.status_code == 200, r.text  # malformed and without the token: still stops
            for cmd in ("reset", "resume"):
                assert (await tess.post(url, json={"do": cmd})).status_code == 200
            r = await no_csrf.post(url, json={"do": "stop"})
            assert r.status_code == 200, r.text
            await site.studio.wait_ended(site.studio.classes[cid])
            assert not suit.applied_mA.any()
            audit = (await tess.get("/api/v1/audit")).status_code  # a trainer: managers only
            assert audit == 403
            for c in (tess, no_csrf):
                await c.aclose()
            nursery.cancel_scope.cancel()


async def test_the_documents_intensity_bounds_are_the_engines(tmp_path: Path) -> None:
    """The API allows exactly the intensities the engine takes (DEVICE_MAX_MA), no more."""
    from channels.limits import DEVICE_MAX_MA
    from suit_controller.commands import SetIntensity

    site, _ = make_site(tmp_path)
    schemas = site.document["components"]["schemas"]
    engine = SetIntensity.model_json_schema()["properties"]
    for field_name in ("mA", "delta_mA"):
        ours = next(x for x in schemas["CommandBody"]["properties"][field_name]["anyOf"]
                    if x.get("type") == "number")  # fmt: skip
        theirs = next(x for x in engine[field_name]["anyOf"] if x.get("type") == "number")
        assert (ours["minimum"], ours["maximum"]) == (theirs["minimum"], theirs["maximum"])
    assert schemas["CommandBody"]["properties"]["mA"]["anyOf"][0]["maximum"] == DEVICE_MAX_MA
    async with trio.open_nursery() as nursery:
        await nursery.start(site.studio.run)
        tess = await logged_in(site, "Tess")
        url = f"/api/v1/classes/{NO_ID}/commands"
        over = {"do": "set_intensity", "mA": DEVICE_MAX_MA + 1}
        r = await tess.post(url, json=over)
        assert is_problem(r, 422) and "mA" in r.text  # refused by the document's schema
        r = await tess.post(url, json={**over, "mA": DEVICE_MAX_MA})
        assert is_problem(r, 404)  # allowed by the schema; there is no such class
        await tess.aclose()
        nursery.cancel_scope.cancel()


async def test_an_estop_is_latched_before_the_records_are_asked_and_whatever_its_form(
    tmp_path: Path,
) -> None:
    """The API's e-stop stops the suits with the records database locked by another
    program, and with a body the API would otherwise refuse (not JSON, too big)."""
    import sqlite3

    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            site, rack = await start_site(nursery, tmp_path)
            tess = await logged_in(site, "Tess")
            cid = await started_class(tess)
            url = f"/api/v1/classes/{cid}/commands"
            suit = rack.suit("SIM-01").firmware

            async def armed(reset: bool = True) -> None:
                for cmd in ("reset", "resume") if reset else ():
                    assert (await tess.post(url, json={"do": cmd})).status_code == 200
                while True:  # the class drives the suit again
                    if suit.state.name == "ARMED":
                        return
                    await trio.sleep(0.01)

            await armed(reset=False)
            forms: list[tuple[bytes, dict[str, str]]] = [
                (b'{"do": "estop"}', {"content-type": "text/plain"}),
                (b'{"do": "estop"}', {}),
                (b'x=1 {"do":"estop"}', {"content-type": "application/x-www-form-urlencoded"}),
                (b'{"do": "estop", "pad": "' + b"x" * 70_000 + b'"}', {}),
            ]  # fmt: skip
            for content, headers in forms:
                r = await tess.post(url, content=content, headers=headers)
                assert r.status_code == 200 and r.json()["command"] == "estop", (headers, r.text)
                assert suit.state.name == "STOPPED" and not suit.applied_mA.any(), headers
                await armed()

            # another program holds the records database's write lock
            holder = sqlite3.connect(tmp_path / "studio.db", timeout=0, check_same_thread=False)
            holder.execute("BEGIN IMMEDIATE")
            try:
                with trio.fail_after(15):  # well before the store's own lock timeout
                    r = await tess.post(url, json={"do": "estop"})
                assert r.status_code == 200, r.text
                assert suit.state.name == "STOPPED" and not suit.applied_mA.any()
            finally:
                holder.rollback()
                holder.close()
            await tess.aclose()
            nursery.cancel_scope.cancel()


async def test_reading_needs_no_csrf_token_even_for_a_manager_only_page(tmp_path: Path) -> None:
    """A GET changes nothing: the audit trail reads with a manager's login alone."""
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            site, _ = await start_site(nursery, tmp_path)
            mia = await logged_in(site, "Mia", csrf=False)
            r = await mia.get("/api/v1/audit")
            assert r.status_code == 200, r.text
            assert is_problem(await mia.post("/api/v1/tokens", json={"label": "x"}), 403)
            await mia.aclose()
            nursery.cancel_scope.cancel()
