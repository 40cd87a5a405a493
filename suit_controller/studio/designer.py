"""The workout designer's endpoints: the library, checking a workout, trying it on bodies.

These are rows of the API's one table (`StudioApi.endpoints`), so the router
and the OpenAPI document both have them. Checking a workout runs the same
validator as `suitctl workout validate` (every problem with its line) after
`library.hostile_text`. Trying a workout runs `python -m sim.designer` in a
separate process (the body model holds the GIL; the classes' ticks and the
console's pushes go on), at most `MAX_RUNS` at once; its progress lines are
read as they come and the run is polled by the page.

A workout the rules refuse (its problems, text refused before parsing, a
form change that does not fit) is a 409 with the reasons, as a class the
rules refuse is: 400, 415 and 422 stay for requests that are not what the
OpenAPI document allows.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any

import trio
from ruamel.yaml import YAML
from starlette.responses import Response

from suit_controller.studio.library import (
    Change,
    EditError,
    HostileText,
    LibraryError,
    edit_yaml,
    parse_checked,
)
from suit_controller.studio.problems import Problem
from suit_controller.studio.requests import ArchiveBody, DesignerRun, FormEdit, WorkoutText
from suit_controller.studio.store import StoreError
from suit_controller.studio.words import area_label, in_trainer_order
from workouts.model import PhaseKind, Workout, WorkoutError
from workouts.plan import compile_workout

if TYPE_CHECKING:
    from suit_controller.studio.api import Call, Endpoint, StudioApi

#: Simulations running at once (the controller has few cores; classes come first).
MAX_RUNS = 2
#: Finished runs kept for the pages to read.
KEEP_RUNS = 20
#: The suit block rule (minutes).
SUIT_BLOCK_MIN, SUIT_BLOCK_MAX = 20.0, 25.0


@dataclass
class Run:
    """One simulation: its request, progress, and result or error."""

    id: str
    request: dict[str, Any]
    by: str
    started: float = field(default_factory=time.monotonic)
    progress: float = 0.0
    doing: str = "starting"
    result: dict[str, Any] | None = None
    error: str | None = None
    done: trio.Event = field(default_factory=trio.Event)

    def view(self) -> dict[str, Any]:
        state = "failed" if self.error else "done" if self.result is not None else "running"
        return {"id": self.id, "state": state, "progress": self.progress, "doing": self.doing,
                "error": self.error, "result": self.result,
                "seconds": round(time.monotonic() - self.started, 1)}  # fmt: skip


def check_report(text: str) -> dict[str, Any]:
    """What the editor shows for `text`: problems with lines, timeline, suit block, body map."""
    try:
        workout = parse_checked(text, source="editor")
    except HostileText as e:
        raise Problem(409, "Refused workout text", str(e)) from None
    except WorkoutError as e:
        return {
            "ok": False,
            "problems": [problem(p, "error") for p in e.problems]
            + [problem(p, "warning") for p in e.warnings],
        }
    return {"ok": True, "problems": [problem(p, "warning") for p in workout.warnings],
            **shape(workout), "form": form_data(text)}  # fmt: skip


def form_data(text: str) -> Any:
    """The workout as plain data, for the form (the paths it sends back are into this)."""
    tree = YAML(typ="safe", pure=True).load(text)
    return json.loads(json.dumps(tree, default=str))


def problem(p: Any, severity: str) -> dict[str, Any]:
    return {"severity": severity, "line": p.line, "path": p.path, "message": p.message}


def shape(workout: Workout) -> dict[str, Any]:
    """The timeline, the suit block against the 20–25 minute rule, and each exercise's areas."""
    plan = compile_workout(workout)
    suit_s = sum(s.end_s - s.start_s for s in plan.segments if s.kind is PhaseKind.SUIT)
    minutes = suit_s / 60
    if minutes > SUIT_BLOCK_MAX:
        verdict = f"{minutes:.1f} min of suit block: more than 25 min"
    elif minutes < SUIT_BLOCK_MIN:
        verdict = f"{minutes:.1f} min of suit block: under the 20–25 min a class should have"
    else:
        verdict = f"{minutes:.1f} min of suit block: within 20–25 min"
    exercises = []
    names = list(plan.layout.names)
    for seg in plan.segments:
        if seg.kind is not PhaseKind.SUIT or seg.exercise_index is None:
            continue
        weights = {names[j]: float(w) for j, w in enumerate(seg.weights) if w > 0}
        exercises.append({"name": seg.name, "start_s": seg.start_s, "areas": [
            {"channel": ch, "label": area_label(ch), "weight": round(weights[ch], 2)}
            for ch in in_trainer_order(list(weights))
        ]})  # fmt: skip
    return {
        "title": workout.name,
        "total_s": plan.total_s,
        "suit_block": {"minutes": round(minutes, 2), "says": verdict,
                       "ok": SUIT_BLOCK_MIN <= minutes <= SUIT_BLOCK_MAX,
                       "min": SUIT_BLOCK_MIN, "max": SUIT_BLOCK_MAX},
        "timeline": [
            {"kind": s.kind.value, "name": s.name, "start_s": s.start_s, "end_s": s.end_s,
             "impulse_s": s.program.impulse_s if s.program else None,
             "pause_s": s.program.pause_s if s.program else None}
            for s in plan.segments
        ],
        "exercises": exercises,
    }  # fmt: skip


class DesignerApi:
    """The designer's handlers, over the API's studio and store."""

    def __init__(self, api: StudioApi) -> None:
        self.api = api
        self.library = api.studio.library
        self.runs: dict[str, Run] = {}

    def endpoints(self) -> list[Endpoint]:
        from suit_controller.studio.api import Endpoint as e

        return [
            e("GET", "/api/v1/library",
              "The workout library: built-in and the studio's own (`?q=` searches titles, "
              "`?archived=true` lists archived ones too)", self.listing, "library"),
            e("POST", "/api/v1/library", "Import a workout (YAML); every problem with its line",
              self.add, "library", "change", WorkoutText, 201, (409,)),
            e("GET", "/api/v1/library/{workout_id}",
              "A workout: its YAML, its check, every saved version", self.one, "library",
              refusals=(404,)),
            e("GET", "/api/v1/library/{workout_id}/yaml", "Export a workout as its YAML file",
              self.export, "library", refusals=(404,)),
            e("POST", "/api/v1/library/{workout_id}/versions",
              "Save a new version (YAML); the same text again changes nothing", self.save,
              "library", "change", WorkoutText, 200, (404, 409)),
            e("POST", "/api/v1/library/{workout_id}/duplicate",
              "Duplicate a workout (a built-in too) as the studio's own", self.duplicate,
              "library", "change", status=201, refusals=(404,)),
            e("POST", "/api/v1/library/{workout_id}/archive", "Archive a workout or bring it back",
              self.archive, "library", "change", ArchiveBody, refusals=(404, 409)),
            e("GET", "/api/v1/workout-versions/{hash}",
              "The YAML of one workout version (as a class recorded it)", self.version,
              "library", refusals=(404,)),
            e("POST", "/api/v1/designer/check",
              "Check workout YAML as `suitctl workout validate` does; timeline, suit block, "
              "body areas", self.check, "designer", "read", WorkoutText, refusals=(409,)),
            e("POST", "/api/v1/designer/edit",
              "Apply the form's changes to the YAML, keeping comments and key order; the "
              "result is checked", self.edit, "designer", "read", FormEdit, refusals=(409,)),
            e("POST", "/api/v1/designer/runs",
              "Try a workout on simulated bodies (a separate process); poll the run",
              self.start_run, "designer", "change", DesignerRun, 202, (404, 409, 429)),
            e("GET", "/api/v1/designer/runs/{run_id}",
              "A simulation's progress, then the report's data (words first)", self.run,
              "designer", refusals=(404,)),
        ]  # fmt: skip

    # -- library --------------------------------------------------------------------------
    async def _lib(self, fn: Any, *args: Any) -> Any:
        try:
            return await self.api.db(fn, *args)
        except HostileText as e:
            raise Problem(409, "Refused workout text", str(e)) from None
        except WorkoutError as e:
            problems = [problem(p, "error") for p in e.problems]
            raise Problem(
                409, "The workout has problems",
                "; ".join(f"line {p['line']}: {p['message']}" if p["line"] else p["message"]
                          for p in problems),
                problems=problems,
            ) from None  # fmt: skip
        except LibraryError as e:
            status = 404 if str(e).startswith("no ") else 409
            raise Problem(status, "Not possible", str(e)) from None

    async def listing(self, call: Call) -> Response:
        from suit_controller.studio.api import json_ok

        q = call.request.query_params.get("q", "")[:80]
        archived = call.request.query_params.get("archived", "") == "true"
        entries = await self._lib(partial(self.library.entries, q, archived=archived))
        return json_ok({"workouts": [x.as_json() for x in entries]})

    async def add(self, call: Call) -> Response:
        from suit_controller.studio.api import json_ok

        entry = await self._lib(self.library.add, call.body.yaml, call.who)
        await self.api._note(call, "workout_added", entry.id, {"hash": entry.hash})
        return json_ok(entry.as_json(), 201)

    async def one(self, call: Call) -> Response:
        from suit_controller.studio.api import json_ok

        ref = call.params["workout_id"]
        entry, text = await self._lib(self.library.text, ref)
        versions = await self._lib(self.library.versions, ref)
        check = await trio.to_thread.run_sync(check_report, text)
        return json_ok({**entry.as_json(), "yaml": text, "versions": versions, "check": check})

    async def export(self, call: Call) -> Response:
        entry, text = await self._lib(self.library.text, call.params["workout_id"])
        slug = "".join(c if c.isalnum() else "-" for c in entry.title.lower()).strip("-")
        return Response(
            text, media_type="application/yaml",
            headers={"content-disposition": f'attachment; filename="{slug or "workout"}.yaml"',
                     "x-workout-hash": entry.hash},
        )  # fmt: skip

    async def save(self, call: Call) -> Response:
        from suit_controller.studio.api import json_ok

        entry = await self._lib(
            self.library.save, call.params["workout_id"], call.body.yaml, call.who
        )
        await self.api._note(call, "workout_saved", entry.id, {"hash": entry.hash})
        return json_ok(entry.as_json())

    async def duplicate(self, call: Call) -> Response:
        from suit_controller.studio.api import json_ok

        entry = await self._lib(self.library.duplicate, call.params["workout_id"], call.who)
        await self.api._note(call, "workout_added", entry.id, {"copied_from": entry.copied_from})
        return json_ok(entry.as_json(), 201)

    async def archive(self, call: Call) -> Response:
        from suit_controller.studio.api import json_ok

        body: ArchiveBody = call.body
        entry = await self._lib(self.library.archive, call.params["workout_id"], body.archived)
        await self.api._note(call, "workout_archived", entry.id, {"archived": body.archived})
        return json_ok(entry.as_json())

    async def version(self, call: Call) -> Response:
        text = await self._lib(self.library.version_text, call.params["hash"])
        return Response(text, media_type="application/yaml")

    # -- checking and trying ----------------------------------------------------------------
    async def check(self, call: Call) -> Response:
        from suit_controller.studio.api import json_ok

        return json_ok(await trio.to_thread.run_sync(check_report, call.body.yaml))

    async def edit(self, call: Call) -> Response:
        from suit_controller.studio.api import json_ok

        body: FormEdit = call.body
        changes: list[Change] = [(tuple(c.path), c.value) for c in body.changes]
        try:
            text = await trio.to_thread.run_sync(edit_yaml, body.yaml, changes)
        except HostileText as e:
            raise Problem(409, "Refused workout text", str(e)) from None
        except EditError as e:
            raise Problem(409, "Cannot change the workout", str(e)) from None
        return json_ok({"yaml": text, "check": await trio.to_thread.run_sync(check_report, text)})

    async def start_run(self, call: Call) -> Response:
        from suit_controller.studio.api import json_ok

        body: DesignerRun = call.body
        report = await trio.to_thread.run_sync(check_report, body.yaml)
        if not report["ok"]:
            errors = [p for p in report["problems"] if p["severity"] == "error"]
            raise Problem(409, "The workout has problems", "fix them before trying it",
                          problems=errors)  # fmt: skip
        running = [r for r in self.runs.values() if not r.done.is_set()]
        if len(running) >= MAX_RUNS:
            raise Problem(
                429, "Simulations busy",
                f"{len(running)} simulations are running: try again when one is done",
            )  # fmt: skip
        request = body.model_dump()
        if body.studio_clients:
            request["bodies"] = await self.api.db(self.bodies, body.studio_clients)
            request["clients"] = len(request["bodies"])
        run = Run(uuid.uuid4().hex, request, call.who)
        self.runs[run.id] = run
        for old in sorted(self.runs.values(), key=lambda r: r.started)[:-KEEP_RUNS]:
            if old.done.is_set():
                del self.runs[old.id]
        self.api.studio.spawn(partial(simulate_in_process, run))
        return json_ok(run.view(), 202)

    def bodies(self, refs: list[str]) -> list[dict[str, Any]]:
        """The studio's clients as the simulation takes them: calibration, first session, seed.

        A client's set intensities are those at the end of their last real
        session; a client who never trained is in their first session (as
        the screening rules decide it). Their body's seed comes from their id,
        so a client is the same simulated body in every try-out.
        """
        store = self.api.store
        out: list[dict[str, Any]] = []
        seen: set[str] = set()
        for ref in refs:
            try:
                client = store.client(ref)
            except StoreError as e:
                raise Problem(404, "No such client", str(e)) from None
            if client.id in seen:
                raise Problem(409, "Not possible", f"{client.name} is in the group twice")
            seen.add(client.id)
            digest = hashlib.sha256(client.id.encode("utf-8")).digest()
            out.append({
                "name": client.name,
                "client_id": client.id,
                "first_session": store.history(client.id).sessions == 0,
                "intensity_mA": store.calibration(client.id),
                "seed": int.from_bytes(digest[:4], "big"),
            })  # fmt: skip
        return out

    async def run(self, call: Call) -> Response:
        from suit_controller.studio.api import json_ok

        run = self.runs.get(call.params["run_id"])
        if run is None:
            raise Problem(404, "No such simulation", "no such run (the controller keeps 20)")
        return json_ok(run.view())


async def simulate_in_process(run: Run) -> None:
    """Run `python -m sim.designer` for `run`, reading its progress lines as they come."""
    data = json.dumps(run.request).encode("utf-8")
    try:
        async with trio.open_nursery() as nursery:
            proc: trio.Process = await nursery.start(
                partial(
                    trio.run_process,
                    [sys.executable, "-m", "sim.designer"],
                    stdin=data,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.DEVNULL,
                    check=False,
                )
            )
            assert proc.stdout is not None
            buffer = b""
            async for chunk in proc.stdout:
                buffer += chunk
                *lines, buffer = buffer.split(b"\n")
                for line in lines:
                    _take(run, line)
            _take(run, buffer)
        if run.result is None and run.error is None:
            run.error = f"the simulation stopped (exit code {proc.returncode})"
    except OSError as e:
        run.error = f"cannot start the simulation: {e}"
    finally:
        run.done.set()


def _take(run: Run, line: bytes) -> None:
    if not line.strip():
        return
    try:
        msg = json.loads(line)
    except ValueError:
        return
    if "progress" in msg:
        run.progress, run.doing = float(msg["progress"]), str(msg["doing"])
    elif "result" in msg:
        run.result, run.progress, run.doing = msg["result"], 1.0, "done"
    elif "error" in msg:
        run.error = str(msg["error"])
