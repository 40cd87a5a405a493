"""MQTT payloads: JSON documents with a JSON Schema each, and the command parser."""

from __future__ import annotations

from typing import Any

from suit_controller.commands import (
    COMMAND_NAMES,
    MAX_COMMAND_BYTES,
    Command,
    CommandRefused,
    decode,
    parse_command,
)

__all__ = ["MAX_COMMAND_BYTES", "SCHEMAS", "parse_command_payload"]

COMMAND_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "command",
    "type": "object",
    "required": ["do"],
    "properties": {
        "id": {"type": "string", "maxLength": 100, "description": "echoed in the result"},
        "do": {"enum": list(COMMAND_NAMES)},
        "client": {"type": ["integer", "string"], "description": "1-based number or name"},
        "channel": {"type": "string", "description": "a channel or muscle group"},
        "mA": {"type": "number", "minimum": 0, "maximum": 120},
        "delta_mA": {"type": "number", "minimum": -120, "maximum": 120},
    },
    "additionalProperties": False,
}
RESULT_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "command result",
    "type": "object",
    "required": ["ok", "command", "message"],
    "properties": {
        "id": {"type": ["string", "null"]},
        "ok": {"type": "boolean"},
        "command": {"type": ["string", "null"]},
        "message": {"type": "string"},
    },
}
EVENT_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "event",
    "type": "object",
    "required": ["t", "kind", "message", "seq", "session_id"],
    "properties": {
        "t": {"type": "number", "description": "seconds since the class started"},
        "session_id": {"type": "string", "description": "the class this event belongs to"},
        "kind": {"type": "string"},
        "message": {"type": "string"},
        "client": {"type": "string"},
        "data": {"type": "object"},
        "seq": {"type": "integer", "description": "event number in this class, from 1"},
    },
}
STATE_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "class state",
    "type": "object",
    "required": ["session_id", "state", "workout", "plan_t", "remaining_s", "clients"],
    "properties": {
        "session_id": {"type": "string", "description": "the class, new for every class"},
        "state": {"enum": ["ready", "running", "paused", "estopped", "finished", "stopped"]},
        "workout": {"type": "string"},
        "phase": {"type": ["string", "null"]},
        "exercise": {"type": ["string", "null"]},
        "cues": {"type": "array", "items": {"type": "string"}},
        "plan_t": {"type": "number"},
        "remaining_s": {"type": "number"},
        "segment_remaining_s": {"type": "number"},
        "clients": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["name", "suit", "link"],
                "properties": {
                    "name": {"type": "string"},
                    "suit": {"type": "string"},
                    "link": {"type": "string"},
                },
            },
        },
    },
}
TELEMETRY_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "client telemetry",
    "type": "object",
    "required": ["client", "t", "levels_mA", "link"],
    "properties": {
        "client": {"type": "string"},
        "t": {"type": "number"},
        "link": {"type": "string"},
        "battery_pct": {"type": ["integer", "null"]},
        "levels_mA": {"type": "object", "additionalProperties": {"type": "number"}},
        "contact": {"type": "object", "additionalProperties": {"type": "boolean"}},
    },
}
SCHEMAS = {
    "command": COMMAND_SCHEMA,
    "result": RESULT_SCHEMA,
    "event": EVENT_SCHEMA,
    "state": STATE_SCHEMA,
    "telemetry": TELEMETRY_SCHEMA,
}


def parse_command_payload(payload: bytes) -> tuple[str | None, Command]:
    """(id, command) from an MQTT payload. Raises CommandRefused with the reason.

    The id is returned whenever it could be read, so even a refusal can be
    matched to its request; it is attached to the exception as `.request_id`.
    """
    data = decode(payload)
    request_id = data.pop("id", None)
    if request_id is not None and (not isinstance(request_id, str) or len(request_id) > 100):
        raise CommandRefused("'id' must be a string of at most 100 characters")
    try:
        return request_id, parse_command(data)
    except CommandRefused as e:
        e.request_id = request_id  # type: ignore[attr-defined]
        raise


def state_payload(snapshot: dict[str, Any]) -> dict[str, Any]:
    keep = (
        "state",
        "workout",
        "phase",
        "exercise",
        "cues",
        "plan_t",
        "total_s",
        "remaining_s",
        "segment_remaining_s",
        "contracting",
    )
    doc = {k: snapshot[k] for k in keep}
    doc["clients"] = [
        {
            "name": c["name"],
            "suit": c["suit"],
            "link": c["link"],
            "battery_pct": c["battery_pct"],
            "suit_state": c["suit_state"],
        }
        for c in snapshot["clients"]
    ]
    return doc


def telemetry_payloads(snapshot: dict[str, Any], t: float) -> list[tuple[str, dict[str, Any]]]:
    channels = snapshot["channels"]
    out = []
    for c in snapshot["clients"]:
        out.append(
            (
                c["name"],
                {
                    "client": c["name"],
                    "t": round(t, 3),
                    "link": c["link"],
                    "battery_pct": c["battery_pct"],
                    "levels_mA": dict(zip(channels, c["levels_mA"], strict=True)),
                    "set_mA": dict(zip(channels, c["set_mA"], strict=True)),
                    "contact": dict(zip(channels, c["contact"], strict=True)),
                    "faults": c["faults"],
                },
            )
        )
    return out
