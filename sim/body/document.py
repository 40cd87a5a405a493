"""The body's results as plain JSON-able data, for `session.json` and the report."""

from __future__ import annotations

from typing import Any

from sim.body.simulate import BodyResult
from workouts.plan import Plan


def plan_segments(plan: Plan) -> list[dict[str, Any]]:
    return [
        {"start_s": s.start_s, "end_s": s.end_s, "kind": s.kind.value, "name": s.name}
        for s in plan.segments
    ]


def body_document(result: BodyResult) -> dict[str, Any]:
    return {
        "clients": result.per_client(),
        "warnings": result.warnings,
        "requests": result.requests,
        "timeline": result.timelines(),
    }
