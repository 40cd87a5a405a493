"""The trainer's words: body areas in the trainers' order, and engine events as messages."""

from __future__ import annotations

import re

import trio
import trio.testing

from channels.layouts import DEFAULT_LAYOUT
from sim.faults import parse_faults
from suit_controller.commands import EmergencyStop, SetIntensity
from suit_controller.records import SessionEvent
from suit_controller.web.words import area, areas, regions, suit_fault_words, trainer_message

from .simclass_helpers import make_class


def test_areas_come_legs_first_in_plain_words() -> None:
    found = areas(DEFAULT_LAYOUT.names)
    assert [a.label for a in found] == [
        "Thighs (front)",
        "Thighs (back)",
        "Glutes",
        "Calves",
        "Abs",
        "Chest L",
        "Chest R",
        "Lats (side of the back)",
        "Upper back",
        "Lower back",
        "Shoulders",
        "Arms",
    ]
    assert [a.region for a in found][:4] == ["legs"] * 4
    assert [r["label"] for r in regions(DEFAULT_LAYOUT.names)] == [
        "Legs",
        "Trunk (front)",
        "Trunk (back)",
        "Shoulders & arms",
    ]
    # a channel that is no known muscle group still shows, last, not hidden
    odd = area("tibialis_front")
    assert odd.region == "other" and odd.label == "Tibialis front"
    assert areas(["tibialis_front", "calves"])[0].channel == "calves"


def test_each_event_says_what_happened_to_whom_and_what_to_do() -> None:
    def say(kind: str, message: str, client: str | None = "Ana", **data: object) -> str:
        m = trainer_message(SessionEvent(12.0, kind, message, client, dict(data)))
        assert m is not None
        assert m.action  # always something to do (or "nothing to do")
        return f"{m.severity}: {m.text} / {m.action}"

    assert say("link_lost", "SIM-02: link lost: disconnected; retrying in 0.25 s") == (
        "warning: Ana's suit lost its connection — it stopped by itself; reconnecting / "
        "Bring them closer to the controller and check the suit is switched on"
    )
    assert say("fault", "injected drop {'for': '20s'}", fault="drop", params={"for": "20s"}) == (
        "info: Practice fault: Ana's suit drops its connection for 20s / "
        "Watch the card: it shows the suit as lost, then reconnecting"
    )
    assert "Lower back" in say("fault", "x", fault="detach", params={"channel": "lower_back"})
    assert say(
        "client_request", "Ana asks for less on quads (feels CR10 7.5)", channel="quads", cr10=7.5
    ) == (
        "warning: Ana asks for less on Thighs (front) (feels 7.5 of 10) / "
        "Lower Thighs (front) a step (−)"
    )
    limit = say("limit", "chest_left held at its cap", channel="chest_left", cap_mA=42.5)
    assert (
        limit.startswith("warning: Ana's Chest L is held at the most allowed")
        and "42.5 mA" in limit
    )
    assert say("estop", "EMERGENCY STOP: every output is zero", None).startswith(
        "stop: Emergency stop: every suit is at zero / When everyone is safe: Reset, then Resume"
    )
    refused = say("command_refused", "resume from web refused: the class is running, not paused")
    assert refused.startswith("warning: Not done: the class is running, not paused")
    capped = say("command_refused", "x from web refused: 130 mA is above Ana's cap on quads")
    assert "Ana's cap on Thighs (front)" in capped
    assert say(
        "suit_refused",
        "SIM-01: this suit speaks suit protocol version 1; update its firmware to version 2; "
        "nothing is sent to it",
    ) == (
        "stop: Ana's suit cannot be used with this controller (its software is too old) / "
        "Give them another suit; have this suit's firmware updated"
    )
    assert "held at zero" in say("program_unconfirmed", "SIM-01: the suit has not confirmed")
    assert say("suit_clamped", "SIM-01: the suit's own limit acted (CHARGE_CLAMPED)").startswith(
        "warning: Ana's suit limited a level by itself"
    )
    assert say("slowed_down", "x", None, speed=10.0, previous_speed=20.0) == (
        "warning: This computer cannot keep up with the practice class at 20× speed: it now "
        "runs at 10× / Nothing to do: the whole class still plays; close other programs to "
        "go faster"
    )
    # a suit's own fault flags; contact shows per area instead
    assert suit_fault_words(["LOW_BATTERY", "ELECTRODE_OPEN"]) == [
        "Battery low: charge it after the class"
    ]
    # events a trainer needs no message for
    for kind in ("command", "segment", "started", "seek"):
        assert trainer_message(SessionEvent(0.0, kind, "x")) is None


async def test_no_message_of_a_simulated_class_shows_code_names(
    autojump_clock: trio.testing.MockClock,
) -> None:
    faults = parse_faults(
        "drop:client=2,at=12s,for=3s;detach:client=1,channel=quads,at=14s,for=2s;"
        "battery:client=1,pct=9,at=15s"
    )
    sc, _ = make_class(2, faults=faults)
    s = sc.session
    async with trio.open_nursery() as nursery:
        nursery.start_soon(sc.run)
        await trio.sleep(13.0)
        refused = await s.execute(SetIntensity(client=1, channel="chest_left", mA=120.0))
        assert not refused.ok and "chest_left" in refused.message
        await trio.sleep(5.0)
        await s.execute(EmergencyStop())
        nursery.cancel_scope.cancel()
    messages = [m for e in s.events.events if (m := trainer_message(e)) is not None]
    kinds = {m.kind for m in messages}
    assert {"fault", "link_lost", "estop", "command_refused"} <= kinds
    code = re.compile(r"SIM-\d|[a-z]+_[a-z]+|\{|injected|link lost")
    for m in messages:
        assert not code.search(m.text + m.action), m


async def test_the_console_feed_has_areas_timeline_and_messages_newest_first(
    autojump_clock: trio.testing.MockClock,
) -> None:
    from suit_controller.web.app import Console

    sc, _ = make_class(
        2, faults=parse_faults("drop:client=2,at=12s,for=3s;drop:client=2,at=20s,for=3s")
    )
    console = Console(sc.session, None)
    facts = console.class_facts()
    assert facts["areas"][0] == {"channel": "quads", "label": "Thighs (front)", "region": "legs"}
    assert [seg["name"] for seg in facts["timeline"]] == ["warmup", "Squat", "Crunch", "stretch"]
    assert facts["timeline"][1]["stimulates"] and not facts["timeline"][0]["stimulates"]
    async with trio.open_nursery() as nursery:
        nursery.start_soon(sc.run)
        await trio.sleep(11.0)
        assert console.state()["warnings"] == []  # connecting at the start is no news
        await trio.sleep(8.0)
        first = console.state()
        await trio.sleep(8.0)
        state = console.state()
        nursery.cancel_scope.cancel()
    kinds = [w["kind"] for w in first["warnings"]]
    assert kinds == ["link_up", "link_lost", "fault"]  # newest first
    assert first["warnings"][0]["text"] == "client-2's suit is connected"
    assert first["clients"][1]["drops"] == 1 and first["clients"][0]["drops"] == 0
    # the second drop: the same three messages, each counted twice, under new ids
    assert [(w["kind"], w["count"]) for w in state["warnings"]] == [
        ("link_up", 2),
        ("link_lost", 2),
        ("fault", 2),
    ]
    assert not {w["id"] for w in state["warnings"]} & {w["id"] for w in first["warnings"]}
    assert state["clients"][1]["drops"] == 2
    assert state["clients"][1]["fault_words"] == []
