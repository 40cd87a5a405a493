"""What a client received: the engine's running totals, the records, and the suit's own measurement.

The studio's records are what a trainer (and an inspector) reads afterwards.
They must say what the suits actually delivered: the same charge, time above
zero, highest output and contractions as the simulated firmware measured, for
every client and every channel, not a multiple of it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import trio
import trio.testing

from channels import DEFAULT_LAYOUT
from suit_controller.delivery import DeliveryTotals
from suit_controller.studio.checkin import CheckIn, check_in
from suit_controller.studio.recorder import SessionRecorder
from suit_controller.studio.screening import CONTRAINDICATIONS
from suit_controller.studio.store import ChannelTotals, RosterEntry, Store, utcnow

from .simclass_helpers import make_class

KEYS = [c.key for c in CONTRAINDICATIONS]


def test_hold_sums_charge_of_every_pulse_and_time_above_zero() -> None:
    t = DeliveryTotals(1, 3)
    out = np.array([[10.0, 0.0, 0.5]])
    t.hold(out, 2.0, 350.0, 85.0)
    # 10 mA × 350 µs = 3.5 µC a phase, 85 pulses a second, 2 s: 595 µC
    assert t.charge_uC[0].tolist() == pytest.approx([595.0, 0.0, 29.75], rel=1e-12)
    assert t.stim_s[0].tolist() == [2.0, 0.0, 2.0]
    t.hold(out, 0.5, 100.0, 20.0)  # 10 mA × 100 µs × 20 Hz × 0.5 s = 10 µC more
    assert t.charge_uC[0].tolist() == pytest.approx([605.0, 0.0, 30.25], rel=1e-12)
    assert t.stim_s[0].tolist() == [2.5, 0.0, 2.5]


def test_hold_for_no_time_or_negative_time_adds_nothing() -> None:
    t = DeliveryTotals(1, 1)
    t.hold(np.array([[20.0]]), 0.0, 350.0, 85.0)
    t.hold(np.array([[20.0]]), -0.5, 350.0, 85.0)  # a clock that went backwards
    assert t.charge_uC.tolist() == [[0.0]] and t.stim_s.tolist() == [[0.0]]


def test_change_counts_rising_edges_from_zero_and_keeps_the_highest_output() -> None:
    t = DeliveryTotals(1, 4)
    t.change(np.array([[0.0, 5.0, 0.0, 0.5]]), np.array([[0.5, 6.0, 0.0, 1.0]]))
    assert t.contractions.tolist() == [[1, 0, 0, 0]]
    assert t.max_mA.tolist() == [[0.5, 6.0, 0.0, 1.0]]
    t.change(np.array([[0.5, 6.0, 0.0, 1.0]]), np.array([[0.0, 2.0, 0.0, 0.0]]))
    assert t.contractions.tolist() == [[1, 0, 0, 0]]
    assert t.max_mA.tolist() == [[0.5, 6.0, 0.0, 1.0]]  # the highest stays
    t.change(np.array([[0.0, 2.0, 0.0, 0.0]]), np.array([[3.0, 2.0, 0.0, 0.5]]))
    assert t.contractions.tolist() == [[2, 0, 0, 1]]
    assert t.max_mA.tolist() == [[3.0, 6.0, 0.0, 1.0]]


def test_totals_start_at_zero_for_every_client_and_channel() -> None:
    t = DeliveryTotals(2, 3)
    for a in (t.charge_uC, t.stim_s, t.max_mA, t.contractions):
        assert a.shape == (2, 3) and not a.any()
    assert t.contractions.dtype == np.int64


async def test_the_records_say_what_the_suits_measured_on_every_channel(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    store = Store(tmp_path / "s.db")
    for n in ("Ana", "Ben"):
        record = store.add_client(n)
        store.add_screening(n, "Tom", set(), set(), KEYS)
        # a regular, not a first session (no cap of 50 mA): a class in 2020 that stimulated
        before = store.open_class(
            "x",
            [RosterEntry(record.id, n, "S", "Tom", False, False)],
            simulated=False,
            now=utcnow().replace(year=2020),
        )
        store.record_progress(
            before, [{"quads": ChannelTotals(100.0, 10.0, 20.0, 2)}], [], 60.0, ended="finished"
        )
    specs, roster, _ = check_in(
        store,
        [CheckIn("Ana", "SIM-01"), CheckIn("Ben", "SIM-02", ate_recently=True)],
        ["Tom"],
        DEFAULT_LAYOUT,
        default_intensity_mA=64.0,
    )
    assert not any(s.first_session for s in specs)
    sc, _ = make_class(2, clients=specs)
    opened = store.open_class(sc.plan.workout.name, roster, simulated=False)
    recorder = SessionRecorder(str(store.location), sc.session, opened)
    sc.companions = [recorder.run]
    assert await sc.run() == "finished"
    by_name = {n: store.sessions_of(n)[0] for n in ("Ana", "Ben")}  # newest first
    assert all(s["class_id"] == recorder.class_id for s in by_name.values())
    stimulated = 0
    for i, name in enumerate(("Ana", "Ben")):
        recorded = by_name[name]["channels"]
        measured = sc.suits[i].firmware.totals(sc.ended_at)
        engine = sc.session.totals
        for j, ch in enumerate(DEFAULT_LAYOUT.names):
            r, m = recorded[ch], measured[j]
            assert r["charge_uC"] == pytest.approx(m.charge_uC, rel=1e-9, abs=1e-9), (name, ch)
            assert r["stim_s"] == pytest.approx(m.stim_s, abs=1e-6), (name, ch)
            assert r["max_mA"] == m.max_mA, (name, ch)
            assert r["contractions"] == m.contractions, (name, ch)
            assert engine.charge_uC[i, j] == pytest.approx(m.charge_uC, rel=1e-9, abs=1e-9)
            stimulated += m.charge_uC > 0
    assert stimulated == 5  # quads, glutes and abs for Ana; Ben ate: no abs
    quads = DEFAULT_LAYOUT.index("quads")
    assert by_name["Ana"]["channels"]["quads"]["max_mA"] == 64.0
    assert by_name["Ana"]["channels"]["quads"]["contractions"] == 5
    # 5 contractions of 4 s (0.5 s ramp up, 0.3 s down) at 85 Hz, 350 µs: the plateau alone
    # holds 64 mA for 3.2 s: 64 · 0.35 · 85 · 3.2 = 6092.8 µC a contraction
    charge = sc.suits[0].firmware.totals(sc.ended_at)[quads].charge_uC
    assert 5 * 6092.8 < charge < 5 * 64 * 0.35 * 85 * 4.0
