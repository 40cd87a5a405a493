"""Exports of the studio's records for gym systems: JSON and CSV (columns in docs/records.md).

Every session is exported with every field, its per-channel totals and the
events of its class that concern it. Health data (screening answers,
clearances, notes) only when asked for. `since` exports only the sessions of
classes changed at or after that moment (plus the clients they belong to or
that changed since): run the next export with the previous `exported_at`, and
keep the last copy of each `session_id` (a class still running is exported
again once it has ended). Numbers are rounded to what the engine can resolve.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from collections.abc import Mapping
from typing import Any

from sqlalchemy import select

from suit_controller.studio.schema import SCHEMA_VERSION, workout_versions
from suit_controller.studio.store import Store, StoreError, iso, parse_iso, utcnow

#: Decimals kept per field (the engine works in 0.1 mA and 1/40 s ticks).
DECIMALS = {
    "class_s": 1,
    "charge_uC": 1,
    "stim_s": 2,
    "max_mA": 1,
    "calibration_mA": 1,
    "charge_mC": 3,
    "t": 3,
}
#: The columns of a session row, before the per-channel ones (documented in docs/records.md).
SESSION_COLUMNS = (
    "session_id",
    "class_id",
    "client_id",
    "member_id",
    "client_name",
    "workout",
    "workout_title",
    "workout_version",
    "workout_hash",
    "room",
    "started_at",
    "ended_at",
    "updated_at",
    "status",
    "class_s",
    "simulated",
    "suit",
    "trainer",
    "first_session",
    "abdominal_off",
    "max_mA",
    "charge_mC",
)
CHANNEL_FIELDS = ("max_mA", "charge_uC", "stim_s", "contractions", "calibration_mA")
HEALTH_COLUMNS = ("screened_at", "screened_by", "contraindications", "clearances", "notes")
CLIENT_COLUMNS = (
    "client_id",
    "member_id",
    "name",
    "birth_date",
    "created_at",
    "sessions",
    "simulated_sessions",
    "last_session_at",
)


def parse_since(text: str) -> dt.datetime:
    """`2026-11-24`, `2026-11-24T10:00`, … (UTC unless an offset is given)."""
    try:
        return parse_iso(text.strip())
    except ValueError:
        raise StoreError(
            f"--since '{text}' is not a date or time (YYYY-MM-DD or YYYY-MM-DDTHH:MM[:SS][+HH:MM])"
        ) from None


def rounded(value: Any, decimals: int = 3) -> Any:
    """Floats rounded (recursively, through dicts and lists)."""
    if isinstance(value, float):
        return round(value, decimals)
    if isinstance(value, dict):
        return {k: rounded(v, DECIMALS.get(k, decimals)) for k, v in value.items()}
    if isinstance(value, list):
        return [rounded(v, decimals) for v in value]
    return value


def workout_versions_named(store: Store) -> dict[str, tuple[str, int | None]]:
    """Every workout version by its hash: its title and its number among its workout's versions.

    A library workout's versions are numbered 1, 2, … in the order they were
    first saved or run; a built-in's version has no number (None).
    """
    named: dict[str, tuple[str, int | None]] = {}
    count: dict[int, int] = {}
    with store.engine.begin() as c:
        rows = c.execute(
            select(
                workout_versions.c.hash, workout_versions.c.title, workout_versions.c.workout_id
            ).order_by(workout_versions.c.created_at, workout_versions.c.hash)
        ).all()
    for h, title, workout_id in rows:
        if workout_id is None:
            named[h] = (title, None)
        else:
            count[workout_id] = count.get(workout_id, 0) + 1
            named[h] = (title, count[workout_id])
    return named


def _session(
    record: Mapping[str, Any], versions: Mapping[str, tuple[str, int | None]]
) -> dict[str, Any]:
    channels = record["channels"].values()
    out = {k: record[k] for k in SESSION_COLUMNS if k in record}
    title, number = versions.get(record.get("workout_hash") or "", (None, None))
    out["workout_title"], out["workout_version"] = title, number
    out["max_mA"] = max((ch["max_mA"] for ch in channels), default=0.0)
    out["charge_mC"] = sum(ch["charge_uC"] for ch in channels) / 1000
    out["channels"] = record["channels"]
    out["events"] = record.get("events", [])
    result: dict[str, Any] = rounded(out)
    return result


def _health(store: Store, client_id: str) -> dict[str, Any]:
    s = store.latest_screening(client_id)
    return {
        "notes": store.client(client_id).notes,
        "screening": None
        if s is None
        else {
            "taken_at": iso(s.taken_at),
            "taken_by": s.taken_by,
            "contraindications": sorted(s.yes),
            "clearances": sorted(s.clearances),
        },
    }


def export_document(
    store: Store, *, include_health: bool = False, since: dt.datetime | None = None
) -> dict[str, Any]:
    """The whole export as one JSON-able document."""
    exported_at = utcnow()
    sessions = store.session_records(since=since)
    versions = workout_versions_named(store)
    wanted = {s["client_id"] for s in sessions if s["client_id"]}
    everything = sessions if since is None else store.session_records(events=False)
    of_client: dict[str, list[Mapping[str, Any]]] = {}
    for s in everything:  # oldest first
        of_client.setdefault(s["client_id"], []).append(s)
    clients = []
    for c in store.clients():
        history_rows = of_client.get(c.id, [])
        changed = since is None or parse_iso(c.created_at) >= since or c.id in wanted
        if not changed and include_health and since is not None:
            screening = store.latest_screening(c.id)  # new health data is a change too
            changed = screening is not None and screening.taken_at >= since
        if not changed:
            continue
        real = [s for s in history_rows if not s["simulated"]]
        entry: dict[str, Any] = {
            "client_id": c.id,
            "member_id": c.member_id,
            "name": c.name,
            "birth_date": c.birth_date,
            "created_at": c.created_at,
            "sessions": len(real),
            "simulated_sessions": len(history_rows) - len(real),
            "last_session_at": real[-1]["started_at"] if real else None,
        }
        if include_health:
            entry |= _health(store, c.id)
        clients.append(entry)
    return {
        "format": "suit-controller records",
        "schema": SCHEMA_VERSION,
        "exported_at": iso(exported_at),
        "since": iso(since) if since is not None else None,
        "include_health": include_health,
        "clients": clients,
        "sessions": [_session(s, versions) for s in sessions],
    }


def export_json(doc: Mapping[str, Any]) -> str:
    return json.dumps(doc, indent=1, ensure_ascii=False) + "\n"


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return value


def export_csv(doc: Mapping[str, Any], table: str = "sessions") -> str:
    """One table of the document as CSV: `sessions` (one row each) or `clients`."""
    buf = io.StringIO()
    health = bool(doc["include_health"])
    if table == "clients":
        columns = list(CLIENT_COLUMNS) + (list(HEALTH_COLUMNS) if health else [])
        writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        for c in doc["clients"]:
            row = {k: _cell(c.get(k)) for k in CLIENT_COLUMNS}
            if health:
                row |= _health_cells(c)
            writer.writerow(row)
        return buf.getvalue()
    channel_names = sorted({ch for s in doc["sessions"] for ch in s["channels"]})
    columns = list(SESSION_COLUMNS)
    columns += [f"{ch}.{f}" for ch in channel_names for f in CHANNEL_FIELDS]
    columns.append("events")
    if health:
        columns += list(HEALTH_COLUMNS)
    by_client = {c["client_id"]: c for c in doc["clients"]}
    writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for s in doc["sessions"]:
        row = {k: _cell(s.get(k)) for k in SESSION_COLUMNS}
        for ch in channel_names:
            values = s["channels"].get(ch, {})
            for f in CHANNEL_FIELDS:
                row[f"{ch}.{f}"] = _cell(values.get(f))
        row["events"] = json.dumps(s["events"], separators=(",", ":"), ensure_ascii=False)
        if health:
            row |= _health_cells(by_client.get(s["client_id"], {}))
        writer.writerow(row)
    return buf.getvalue()


def _health_cells(client: Mapping[str, Any]) -> dict[str, Any]:
    s = client.get("screening")
    return {
        "screened_at": s["taken_at"] if s else "",
        "screened_by": s["taken_by"] if s else "",
        "contraindications": ";".join(s["contraindications"]) if s else "",
        "clearances": ";".join(s["clearances"]) if s else "",
        "notes": client.get("notes", ""),
    }
