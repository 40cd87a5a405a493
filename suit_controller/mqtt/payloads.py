"""MQTT payloads: JSON documents, each with a JSON Schema, and the ids they carry.

Ids, never names: a class is named by its `class_id`, a client by its
`client_id` (the studio's client UUID) and a client's part in a class by its
`session_id` (the records' session UUID), so a gym system can join what it
reads here with the exports (docs/records.md). Names appear only in
`message` texts, which are written for people.

Every published payload's schema lists every field the controller sends
(`additionalProperties: false`), each with a description; docs/mqtt.md's
schema section is generated from `SCHEMAS` (`python -m suit_controller.mqtt.payloads`)
and a test keeps the two equal.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from suit_controller.commands import (
    COMMAND_NAMES,
    MAX_COMMAND_BYTES,
    Command,
    CommandRefused,
    decode,
    parse_command,
)
from suit_controller.event_kinds import EVENT_KINDS
from suit_controller.records import SessionEvent

__all__ = ["MAX_COMMAND_BYTES", "SCHEMAS", "ClassIds", "parse_command_payload"]

DRAFT = "https://json-schema.org/draft/2020-12/schema"
#: Most events one replay answer carries (the next answer follows at once).
REPLAY_BATCH = 200
#: Replay requests waiting to be answered; past that a request is refused (busy).
REPLAY_QUEUE = 16
MAX_REPLAY_BYTES = 1024


@dataclass(frozen=True)
class ClassIds:
    """The ids of one class and of its clients, in roster order.

    `client_ids[i]` is the studio's client UUID (None for a client the records
    do not know); `session_ids[i]` the records' session UUID. A class nobody
    records (a simulation without `--client`) gets one-off ids.
    """

    class_id: str
    client_ids: tuple[str | None, ...]
    session_ids: tuple[str | None, ...]

    @classmethod
    def one_off(cls, n_clients: int, class_id: str | None = None) -> ClassIds:
        """Fresh ids for a class that is not recorded."""
        return cls(
            class_id or str(uuid.uuid4()),
            tuple(str(uuid.uuid4()) for _ in range(n_clients)),
            tuple(str(uuid.uuid4()) for _ in range(n_clients)),
        )

    @classmethod
    def from_records(cls, class_id: str, sessions: Sequence[dict[str, Any]]) -> ClassIds:
        """From `Store.sessions_of_class` (roster order)."""
        return cls(
            class_id,
            tuple(s.get("client_id") for s in sessions),
            tuple(s.get("session_id") for s in sessions),
        )

    def client_key(self, i: int) -> str:
        """The id a client's topics use: its client id, else its session id."""
        return self.client_ids[i] or self.session_ids[i] or f"client-{i + 1}"


def _desc(kind: str | list[str], description: str, **more: Any) -> dict[str, Any]:
    return {"type": kind, "description": description, **more}


_UUID = {"type": "string", "minLength": 32, "maxLength": 36}


def _uuid(description: str, nullable: bool = False) -> dict[str, Any]:
    if nullable:
        return {"type": ["string", "null"], "maxLength": 36, "description": description}
    return {**_UUID, "description": description}


ONLINE_SCHEMA: dict[str, Any] = {
    "$schema": DRAFT,
    "title": "online",
    "description": "retained: `true` while the controller is connected, `false` when it left "
    "(said on a clean exit, and by the broker as its last will). The bare JSON literal.",
    "type": "boolean",
}
COMMAND_SCHEMA: dict[str, Any] = {
    "$schema": DRAFT,
    "title": "command",
    "description": "a trainer's command (in)",
    "type": "object",
    "required": ["do"],
    "properties": {
        "id": _desc("string", "echoed in the result", maxLength=100),
        "do": {"enum": list(COMMAND_NAMES), "description": "what to do"},
        "client": _desc(
            ["integer", "string"],
            "for set_intensity: the client's 1-based number in the class, its client_id or "
            "its name",
        ),
        "channel": _desc("string", "a channel or muscle group (set_intensity)"),
        "mA": _desc("number", "the new intensity (set_intensity)", minimum=0, maximum=120),
        "delta_mA": _desc(
            "number", "a change of intensity (set_intensity)", minimum=-120, maximum=120
        ),
    },
    "additionalProperties": False,
}
RESULT_SCHEMA: dict[str, Any] = {
    "$schema": DRAFT,
    "title": "command result",
    "description": "one per command (out), on `…/commands/result` and, for an MQTT v5 "
    "request with a response topic, on that topic with the request's correlation data",
    "type": "object",
    "required": ["id", "ok", "command", "message"],
    "properties": {
        "id": _desc(["string", "null"], "the command's id, when it had one that could be read"),
        "ok": _desc("boolean", "true: carried out; false: refused, nothing changed"),
        "command": _desc(["string", "null"], "the command's `do`, when it could be read"),
        "message": _desc("string", "what was done, or why not (for people)"),
    },
    "additionalProperties": False,
}
EVENT_SCHEMA: dict[str, Any] = {
    "$schema": DRAFT,
    "title": "event",
    "description": "one event of a class (out, QoS 1, at least once: drop repeats by "
    "(`class_id`, `seq`))",
    "type": "object",
    "required": ["class_id", "seq", "t", "kind", "message"],
    "properties": {
        "class_id": _uuid("the class this event belongs to (the records' class id)"),
        "seq": _desc("integer", "the event's number in its class: 1, 2, … without gaps", minimum=1),
        "t": _desc("number", "seconds since the class started"),
        "kind": {
            "enum": list(EVENT_KINDS),
            "description": "what happened (see the table of event kinds)",
        },
        "message": _desc("string", "what happened, for people (may name a client)"),
        "client_id": _uuid("the client the event is about (absent: the whole class)", True),
        "session_id": _uuid("that client's session in this class (the records' id)", True),
        "data": _desc("object", "details by kind (see the table of event kinds)"),
    },
    "additionalProperties": False,
}
_CLIENT_STATE = {
    "type": "object",
    "required": ["client_id", "session_id", "suit", "link"],
    "properties": {
        "client_id": _uuid("the client (the studio's client id)", True),
        "session_id": _uuid("the client's session in this class", True),
        "suit": _desc("string", "the suit's address"),
        "link": _desc("string", "the suit link: connecting, connected, lost, …"),
        "battery_pct": _desc(["integer", "null"], "the suit's battery, when it said"),
        "suit_state": _desc(["string", "null"], "the state the suit reports"),
    },
    "additionalProperties": False,
}
STATE_SCHEMA: dict[str, Any] = {
    "$schema": DRAFT,
    "title": "class state",
    "description": "the class (out, retained): every second and at once on a change",
    "type": "object",
    "required": ["class_id", "state", "workout", "plan_t", "remaining_s", "clients", "last_seq"],
    "properties": {
        "class_id": _uuid("the class, new for every class (the records' class id)"),
        "state": {
            "enum": ["ready", "running", "paused", "estopped", "finished", "stopped"],
            "description": "where the class is",
        },
        "workout": _desc("string", "the workout's name"),
        "phase": _desc(["string", "null"], "warmup, suit or stretch; null outside the plan"),
        "exercise": _desc(["string", "null"], "the current exercise"),
        "cues": {"type": "array", "items": {"type": "string"}, "description": "its cues"},
        "plan_t": _desc("number", "position in the workout, s (advances only while running)"),
        "total_s": _desc("number", "the workout's length, s"),
        "remaining_s": _desc("number", "time left in the workout, s"),
        "segment_remaining_s": _desc("number", "time left in the current segment, s"),
        "contracting": _desc("boolean", "true while the program stimulates"),
        "last_seq": _desc(
            "integer", "the seq of the class's last event so far (0: none): what to replay up to"
        ),
        "clients": {
            "type": "array",
            "items": _CLIENT_STATE,
            "description": "every client, in roster order",
        },
    },
    "additionalProperties": False,
}
TELEMETRY_SCHEMA: dict[str, Any] = {
    "$schema": DRAFT,
    "title": "client telemetry",
    "description": "one client, 4 times a second (out, QoS 0)",
    "type": "object",
    "required": ["class_id", "client_id", "session_id", "t", "levels_mA", "link"],
    "properties": {
        "class_id": _uuid("the class"),
        "client_id": _uuid("the client (as in the topic)", True),
        "session_id": _uuid("the client's session in this class", True),
        "t": _desc("number", "seconds since the class started"),
        "link": _desc("string", "the suit link"),
        "battery_pct": _desc(["integer", "null"], "the suit's battery"),
        "levels_mA": {
            "type": "object",
            "additionalProperties": {"type": "number"},
            "description": "output now per channel, mA",
        },
        "set_mA": {
            "type": "object",
            "additionalProperties": {"type": "number"},
            "description": "set intensity per channel, mA",
        },
        "contact": {
            "type": "object",
            "additionalProperties": {"type": "boolean"},
            "description": "electrode contact per channel",
        },
        "faults": {
            "type": "array",
            "items": {"type": "string"},
            "description": "faults the suit reports",
        },
    },
    "additionalProperties": False,
}
REPLAY_REQUEST_SCHEMA: dict[str, Any] = {
    "$schema": DRAFT,
    "title": "replay request",
    "description": "ask for a class's events after a seq (in, on `…/events/replay`)",
    "type": "object",
    "required": ["after_seq"],
    "properties": {
        "id": _desc("string", "echoed in every answer", maxLength=100),
        "class_id": _uuid("the class (default: the class running now)"),
        "after_seq": _desc(
            "integer", "the last seq the consumer has (0: from the start)", minimum=0
        ),
    },
    "additionalProperties": False,
}
REPLAY_SCHEMA: dict[str, Any] = {
    "$schema": DRAFT,
    "title": "replay answer",
    "description": f"events after `after_seq`, at most {REPLAY_BATCH} and 64 KiB per message "
    "(out, on "
    "`…/events/replay/result`, or the request's MQTT v5 response topic)",
    "type": "object",
    "required": ["id", "ok", "class_id", "after_seq", "events", "more", "message"],
    "properties": {
        "id": _desc(["string", "null"], "the request's id"),
        "ok": _desc("boolean", "false: the request was refused (message says why)"),
        "class_id": _uuid("the class", True),
        "after_seq": _desc("integer", "the first event here is after_seq + 1"),
        "events": {
            "type": "array",
            "items": {"$ref": "#/$defs/event"},
            "description": "the events, in seq order",
        },
        "more": _desc("boolean", "true: another answer with the next events follows"),
        "message": _desc("string", "for people"),
    },
    "additionalProperties": False,
    "$defs": {"event": {k: v for k, v in EVENT_SCHEMA.items() if k != "$schema"}},
}
SCHEMAS: dict[str, dict[str, Any]] = {
    "online": ONLINE_SCHEMA,
    "state": STATE_SCHEMA,
    "telemetry": TELEMETRY_SCHEMA,
    "event": EVENT_SCHEMA,
    "command": COMMAND_SCHEMA,
    "result": RESULT_SCHEMA,
    "replay_request": REPLAY_REQUEST_SCHEMA,
    "replay": REPLAY_SCHEMA,
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
        e.request_id = request_id
        raise


class ReplayRefused(ValueError):
    """A replay request that cannot be answered; the message says why."""

    def __init__(self, message: str, request_id: str | None = None) -> None:
        super().__init__(message)
        self.request_id = request_id


def parse_replay_request(raw: bytes) -> tuple[str | None, str | None, int]:
    """(id, class_id or None for the class running now, after_seq) of a replay request."""
    if len(raw) > MAX_REPLAY_BYTES:
        raise ReplayRefused(f"a replay request is at most {MAX_REPLAY_BYTES} bytes")
    try:
        doc = json.loads(raw.decode("utf-8"))
    except (ValueError, RecursionError):
        raise ReplayRefused("a replay request is not JSON") from None
    if not isinstance(doc, dict):
        raise ReplayRefused('a replay request is a JSON object: {"after_seq": N}')
    rid = doc.get("id")
    request_id = rid if isinstance(rid, str) and len(rid) <= 100 else None
    if rid is not None and request_id is None:
        raise ReplayRefused("'id' must be a string of at most 100 characters")
    if doc.get("retained") is True:
        raise ReplayRefused(
            "a retained replay request is never answered; publish with retain=false", request_id
        )
    extra = sorted(set(doc) - {"id", "class_id", "after_seq"})
    if extra:
        raise ReplayRefused(f"unknown field(s): {', '.join(extra)}", request_id)
    after = doc.get("after_seq")
    if isinstance(after, bool) or not isinstance(after, int) or not 0 <= after <= 2**53:
        raise ReplayRefused("'after_seq' must be a whole number, 0 or more", request_id)
    class_id = doc.get("class_id")
    if class_id is not None and (not isinstance(class_id, str) or not 32 <= len(class_id) <= 36):
        raise ReplayRefused("'class_id' must be a class id (a UUID)", request_id)
    return request_id, class_id, after


def replay_doc(
    request_id: str | None,
    class_id: str | None,
    after_seq: int,
    events: list[dict[str, Any]],
    more: bool,
    message: str,
    *,
    ok: bool = True,
) -> dict[str, Any]:
    """One replay answer (see REPLAY_SCHEMA)."""
    return {
        "id": request_id,
        "ok": ok,
        "class_id": class_id,
        "after_seq": after_seq,
        "events": events,
        "more": more,
        "message": message,
    }


def event_payload(
    event: SessionEvent, seq: int, ids: ClassIds, names: Sequence[str]
) -> dict[str, Any]:
    """One event as published: ids instead of the client's name."""
    doc: dict[str, Any] = {
        "class_id": ids.class_id,
        "seq": seq,
        "t": round(event.t, 4),
        "kind": event.kind,
        "message": event.message,
    }
    if event.client is not None and event.client in names:
        i = list(names).index(event.client)
        doc["client_id"] = ids.client_ids[i]
        doc["session_id"] = ids.session_ids[i]
    if event.data:
        doc["data"] = json.loads(json.dumps(event.data, default=str))
    return doc


def state_payload(snapshot: dict[str, Any], ids: ClassIds, last_seq: int) -> dict[str, Any]:
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
    doc = {"class_id": ids.class_id, **{k: snapshot[k] for k in keep}, "last_seq": last_seq}
    doc["clients"] = [
        {
            "client_id": ids.client_ids[i],
            "session_id": ids.session_ids[i],
            "suit": c["suit"],
            "link": c["link"],
            "battery_pct": c["battery_pct"],
            "suit_state": c["suit_state"],
        }
        for i, c in enumerate(snapshot["clients"])
    ]
    return doc


def telemetry_payloads(
    snapshot: dict[str, Any], t: float, ids: ClassIds
) -> list[tuple[str, dict[str, Any]]]:
    """(topic key, payload) per client; the key is the client's id."""
    channels = snapshot["channels"]
    out = []
    for i, c in enumerate(snapshot["clients"]):
        out.append(
            (
                ids.client_key(i),
                {
                    "class_id": ids.class_id,
                    "client_id": ids.client_ids[i],
                    "session_id": ids.session_ids[i],
                    "t": round(t, 3),
                    "link": c["link"],
                    "battery_pct": c["battery_pct"],
                    "levels_mA": dict(zip(channels, c["levels_mA"], strict=True)),
                    "set_mA": dict(zip(channels, c["set_mA"], strict=True)),
                    "contact": dict(zip(channels, c["contact"], strict=True)),
                    "faults": list(c["faults"]),
                },
            )
        )
    return out


def schemas_markdown() -> str:
    """docs/mqtt.md's schema section and event-kind table (generated: do not edit there)."""
    lines = ["### Event kinds", "", "| kind | what |", "|---|---|"]
    lines += [f"| `{k}` | {v} |" for k, v in EVENT_KINDS.items()]
    for name, schema in SCHEMAS.items():
        lines += ["", f"### `{name}`", "", "```json", json.dumps(schema, indent=2), "```"]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(schemas_markdown(), end="")
