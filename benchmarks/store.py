"""The studio store: check-in with its guard, a recorder write, an export (SQLite, PostgreSQL)."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.common import percentiles_ms
from suit_controller.records import SessionEvent
from suit_controller.studio.export import export_csv, export_document
from suit_controller.studio.screening import CONTRAINDICATIONS, SitePolicy
from suit_controller.studio.store import ChannelTotals, RosterEntry, Store

CLIENTS = 8
CHANNELS = [f"ch{j:02d}" for j in range(12)]
CLASSES = 50


def _measure(location: str) -> dict[str, Any]:
    store = Store(location)
    keys = [c.key for c in CONTRAINDICATIONS]
    ids = []
    for i in range(CLIENTS):
        ids.append(store.add_client(f"Client {i}", member_id=f"M-{i}").id)
        store.add_screening(ids[-1], "Tom", set(), set(), keys)
    roster = [
        RosterEntry(cid, f"Client {i}", f"S{i}", "Tom", False, False) for i, cid in enumerate(ids)
    ]
    every_day = SitePolicy(min_days_between_sessions=0)
    opens, writes = [], []
    for k in range(CLASSES):
        t = time.perf_counter()
        opened = store.open_class("Bench", roster, simulated=False, policy=every_day)
        opens.append(time.perf_counter() - t)
        totals = [{ch: ChannelTotals(1000.0 * k, 10.0, 40.0, 5) for ch in CHANNELS}] * CLIENTS
        events = [SessionEvent(float(e), "segment", "x", None, {}) for e in range(10)]
        for w in range(4):
            t = time.perf_counter()
            store.record_progress(
                opened, totals, events, 1.0 * w, ended="finished" if w == 3 else None
            )
            writes.append(time.perf_counter() - t)
    t = time.perf_counter()
    doc = export_document(store)
    export_csv(doc)
    export_s = time.perf_counter() - t
    store.close()
    return {
        "open_class": percentiles_ms(opens),
        "recorder_write": percentiles_ms(writes),
        "export_sessions": len(doc["sessions"]),
        "export_s": round(export_s, 2),
    }


def run_store() -> dict[str, Any]:
    """Both backends (PostgreSQL when a throw-away server can be started here)."""
    out: dict[str, Any] = {"clients": CLIENTS, "channels": len(CHANNELS), "classes": CLASSES}
    with tempfile.TemporaryDirectory() as tmp:
        out["sqlite"] = _measure(str(Path(tmp) / "studio.db"))
    from tests.postgres_server import Postgres, why_unavailable

    reason = why_unavailable()
    if reason is not None:
        out["postgresql"] = {"skipped": reason}
        return out
    server = Postgres()
    server.start()
    try:
        out["postgresql"] = _measure(server.new_database())
    finally:
        server.stop()
    return out
