"""Hostile and faulty input (issue 12, the command path): each failure class through the real
interface — the CLI, actions files, a real Mosquitto — and the one command entry beneath them."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest
import trio
import trio_asyncio
from click.testing import CliRunner

from channels.limits import CHARGE_PER_PHASE_MAX_UC
from suit_controller.cli.main import suitctl
from suit_controller.cli.simclass import SimulatedClass
from suit_controller.commands import SetIntensity
from suit_controller.protocol import SuitState
from suit_controller.records import SessionEvent
from suit_controller.session import ClassState

from .mqtt_broker import MOSQUITTO, Broker
from .mqtt_probe import Probe
from .simclass_helpers import SHORT, short_plan

ROOT = Path(__file__).resolve().parent.parent

needs_mosquitto = pytest.mark.skipif(
    MOSQUITTO is None, reason="mosquitto is not installed (make system-deps)"
)
LONG = SHORT.replace("duration: 40s", "duration: 5m")


def sim_run(tmp_path: Path, *extra: str) -> tuple[int, str, dict[str, Any] | None]:
    workout = tmp_path / "short.yaml"
    workout.write_text(SHORT)
    out = tmp_path / "out"
    result = CliRunner().invoke(
        suitctl,
        ["sim", "run", str(workout), "--clients", "2", "--virtual", "--out", str(out), *extra],
    )
    rec_path = out / "session.json"
    rec = json.loads(rec_path.read_text()) if rec_path.exists() else None
    return result.exit_code, result.output, rec


def stopped_and_zero(sc: SimulatedClass) -> bool:
    return all(
        s.firmware.state is SuitState.STOPPED and not s.firmware.applied_mA.any() for s in sc.suits
    )


# -- class 1: every exit stops the suits first; no printer or subscriber ends a class ---------
def test_class1_lone_surrogate_client_in_actions_file_the_class_goes_on(tmp_path: Path) -> None:
    actions = tmp_path / "a.yaml"
    actions.write_text(
        '- {at: 12s, do: set_intensity, client: "\\ud800", mA: 10}\n'
        '- {at: 13s, do: set_intensity, client: 1, channel: "\\ud800\\x00", mA: 10}\n'
    )
    code, output, rec = sim_run(tmp_path, "--actions", str(actions))
    assert code == 0, output
    assert rec is not None and rec["ended"] == "finished"
    refused = [e for e in rec["events"] if e["kind"] == "command_refused"]
    assert len(refused) == 2 and "no client named" in refused[0]["message"]
    assert all(c["outputs_zero_at_end"] for c in rec["clients"])


async def test_class1_a_subscriber_raising_on_ended_stop_all_reached_every_suit_first(
    autojump_clock: trio.testing.MockClock,
) -> None:
    sc = SimulatedClass(short_plan(), 2, intensity_mA=30.0, body=False)
    seen: list[tuple[str, bool]] = []

    def hostile(e: SessionEvent) -> None:
        if e.kind == "ended":
            seen.append((e.kind, stopped_and_zero(sc)))
            raise RuntimeError("a screen that breaks on the last event")

    def printer(e: SessionEvent) -> None:
        if e.kind == "note":
            e.message.encode("utf-8")  # a terminal that cannot print a lone surrogate

    sc.session.events.subscribe(hostile)
    sc.session.events.subscribe(printer)
    async with trio.open_nursery() as nursery:
        for suit in sc.suits:
            await nursery.start(suit.run)
        await nursery.start(sc.session.run)
        await trio.sleep(20.0)
        assert sc.session.state is ClassState.RUNNING
        sc.session.emit("note", "a client named \ud800 arrived")
        assert sc.session.state is ClassState.RUNNING
        await sc.session._finished.wait()
        await trio.sleep(0.1)
        nursery.cancel_scope.cancel()
    assert seen == [("ended", True)]
    assert stopped_and_zero(sc)
    errors = sc.session.events.of_kind("subscriber_error")
    assert len(errors) == 2  # one report per failing subscriber, however often it fails
    assert sc.session.events.subscriber_errors == {"hostile": 1, "printer": 1}


async def test_class1_observer_errors_go_on_and_an_engine_bug_still_stops_first(
    autojump_clock: trio.testing.MockClock,
) -> None:
    sc = SimulatedClass(short_plan(LONG), 2, intensity_mA=30.0, body=False)
    order: list[str] = []
    sc.session.events.subscribe(
        lambda e: order.append(f"{e.kind}:{stopped_and_zero(sc)}") if e.kind == "ended" else None
    )

    def broken_observer(now: float) -> None:
        if sc.session.plan_time() > 15:
            raise ZeroDivisionError("a simulated observer's bug")

    def engine_bug(now: float) -> None:
        raise AssertionError("a bug in the engine itself")

    sc.session.tick_observers.append(broken_observer)
    with pytest.raises(ExceptionGroup) as caught:
        async with trio.open_nursery() as nursery:
            for suit in sc.suits:
                await nursery.start(suit.run)
            await nursery.start(sc.session.run)
            await trio.sleep(30.0)
            assert sc.session.state is ClassState.RUNNING  # an observer's error does not end it
            assert len(sc.session.events.of_kind("observer_error")) == 1
            assert sc.session.observer_errors["broken_observer"] > 100  # counted, not reported
            sc.session.board.step = engine_bug  # type: ignore[method-assign]
            await trio.sleep(5.0)
    assert caught.group_contains(AssertionError, match="engine itself")
    assert order == ["ended:True"] and sc.session.ending == "interrupted"


# -- class 2 through the CLI: a lost SET_PROGRAM never puts too much charge through a client ---
PROGRAM_CHANGE = """\
name: Program change
programs:
  wide: {frequency_hz: 85, pulse_width_us: 450, continuous: true, ramp_up_s: 0.5}
  narrow: {frequency_hz: 85, pulse_width_us: 100, continuous: true, ramp_up_s: 0.5}
phases:
  - {kind: warmup, duration: 10s}
  - kind: suit
    exercises:
      - {name: Wide, duration: 40s, program: wide, channels: {quads: 1.0}}
      - {name: Narrow, duration: 40s, program: narrow, channels: {quads: 1.0}}
  - {kind: stretch, duration: 10s}
"""


@pytest.mark.parametrize(
    "fault",
    [
        "loss:client=all,at=49.99s,for=0.04s,pct=100",  # every frame lost for 40 ms
        "drop:client=1,at=49.99s,for=0.04s",  # the link itself drops for 40 ms
    ],
)
def test_class2_sim_run_a_40ms_drop_at_a_program_change_keeps_each_phase_under_45_uC(
    tmp_path: Path, fault: str
) -> None:
    """Class 2 through `suitctl sim run --faults`: a radio loss of 40 ms at the boundary
    between an exercise at 450 µs and one at 100 µs (120 mA asked: 54 µC at 450 µs).
    The record's `max_uC_per_phase` is measured by the simulated firmware: what it applied
    times its own active pulse width, at every change of its outputs."""
    workout = tmp_path / "change.yaml"
    workout.write_text(PROGRAM_CHANGE)
    out = tmp_path / "out"
    result = CliRunner().invoke(
        suitctl,
        [
            "sim", "run", str(workout), "--clients", "2", "--virtual", "--intensity", "120",
            "--faults", fault, "--out", str(out),
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    rec = json.loads((out / "session.json").read_text())
    assert rec["ended"] == "finished"
    quads = [c["channels"]["quads"] for c in rec["clients"]]
    assert all(q["max_uC_per_phase"] <= CHARGE_PER_PHASE_MAX_UC + 1e-9 for q in quads), quads
    # the class did reach the limit at 450 µs (100 mA) and 120 mA at 100 µs: the check bites
    assert all(q["max_uC_per_phase"] >= 44.9 and q["max_mA"] == 120.0 for q in quads), quads
    assert all(c["outputs_zero_at_end"] for c in rec["clients"])
    if fault.startswith("drop"):  # the fault did happen, at the boundary
        assert rec["clients"][0]["link_drops"] >= 1 and rec["clients"][1]["link_drops"] == 0


# -- class 4 (outside review): an e-stop is never refused for its form --------------------------
HOSTILE_ESTOPS: list[object] = [
    '{"do": "estop", "id": 5}',  # an id of the wrong type
    '{"do": "estop", "id": "' + "x" * 101 + '"}',  # an id too long
    '{"do": "estop", "x": NaN}',
    '{"do": "estop", "x": 1e400}',
    '{"do": "estop", "x": [[[[[1]]]]]}',  # too deep
    '{"do": "estop", "pad": "' + "a" * 5000 + '"}',  # too big
    '{"do": "estop"}\x00',  # trailing bytes: not JSON
    b'{"do": "estop"}\xff',  # not UTF-8
    {"do": "estop", "id": 7},  # a mapping (an actions file's entry)
]


@pytest.mark.parametrize("raw", HOSTILE_ESTOPS, ids=range(len(HOSTILE_ESTOPS)))
async def test_class4_an_estop_with_anything_odd_in_it_still_stops_every_suit(
    autojump_clock: trio.testing.MockClock, raw: Any
) -> None:
    from suit_controller.commands import submit

    sc = SimulatedClass(short_plan(LONG), 2, intensity_mA=30.0, body=False)
    async with trio.open_nursery() as nursery:
        for suit in sc.suits:
            await nursery.start(suit.run)
        await nursery.start(sc.session.run)
        contracting = trio.Event()
        sc.session.tick_observers.append(
            lambda now: (
                contracting.set() if any(s.firmware.applied_mA.any() for s in sc.suits) else None
            )
        )
        with trio.fail_after(60):  # virtual seconds: until a contraction is under way
            await contracting.wait()
        result = await submit(sc.session, raw, "hostile")
        assert result.ok and result.command == "estop"
        assert sc.session.state is ClassState.ESTOPPED and stopped_and_zero(sc)
        nursery.cancel_scope.cancel()


async def test_class4_stop_is_never_rate_limited_a_pause_is_and_odd_input_never_raises(
    autojump_clock: trio.testing.MockClock,
) -> None:
    from suit_controller.commands import submit

    sc = SimulatedClass(short_plan(LONG), 2, intensity_mA=30.0, body=False)
    async with trio.open_nursery() as nursery:
        for suit in sc.suits:
            await nursery.start(suit.run)
        await nursery.start(sc.session.run)
        await trio.sleep(15.0)
        for odd in (5, None, 3.5, [], memoryview(b'{"do": "skip"}')):
            result = await submit(sc.session, odd, "tablet")  # type: ignore[arg-type]
            assert isinstance(result.ok, bool)
        for _ in range(60):  # the tablet's bucket is empty after this
            await submit(sc.session, '{"do": "reset"}', "tablet")
        assert not (await submit(sc.session, '{"do": "skip"}', "tablet")).ok
        paused = await submit(sc.session, '{"do": "pause"}', "tablet")  # limited like the rest
        assert not paused.ok and "more than 40 commands" in paused.message, paused
        assert sc.session.state is ClassState.RUNNING
        assert (await submit(sc.session, '{"do": "stop"}', "tablet")).ok  # a stop never is
        assert stopped_and_zero(sc)
        nursery.cancel_scope.cancel()


async def test_class4_a_flood_of_refused_commands_is_rate_limited_and_counted_not_logged(
    autojump_clock: trio.testing.MockClock,
) -> None:
    from suit_controller.commands import submit

    sc = SimulatedClass(short_plan(LONG), 2, intensity_mA=30.0, body=False)
    async with trio.open_nursery() as nursery:
        for suit in sc.suits:
            await nursery.start(suit.run)
        await nursery.start(sc.session.run)
        await trio.sleep(15.0)
        events = sc.session.events.events
        before = len(events)
        for k in range(1000):  # each one answered, refused
            assert not (
                await submit(sc.session, json.dumps({"do": "jump", "id": str(k)}), "tablet")
            ).ok
        # the refusals counted against the tablet's rate limit: its next command is refused
        skip = await submit(sc.session, '{"do": "skip"}', "tablet")
        assert not skip.ok and "more than 40 commands at once" in skip.message
        # ... but never a stop, a pause or an e-stop; and another source is not affected
        assert (await submit(sc.session, '{"do": "estop"}', "tablet")).ok
        assert (await submit(sc.session, '{"do": "reset"}', "console")).ok
        logged = [e for e in events[before:] if e.kind == "command_refused"]
        assert 1 <= len(logged) <= 20  # not a thousand lines
        await trio.sleep(10.0)  # later, the next refusal says how many were not logged
        assert not (await submit(sc.session, '{"do": "jump"}', "tablet")).ok
        summary = [e for e in events if "more commands from tablet refused" in e.message]
        assert len(summary) == 1
        not_logged = int(summary[0].message.split()[0])
        assert len(logged) + not_logged == 1001  # every refusal is in the log, one way or another
        nursery.cancel_scope.cancel()


# -- class 4: the e-stop overtakes everything queued ----------------------------------------
async def test_class4_estop_taken_after_a_burst_runs_before_the_queued_commands(
    autojump_clock: trio.testing.MockClock,
) -> None:
    from suit_controller.commands import RateLimit, submit

    sc = SimulatedClass(short_plan(LONG), 2, intensity_mA=30.0, body=False)
    sc.session.desk.limit = RateLimit(per_s=1000.0, burst=2000)
    async with trio.open_nursery() as nursery:
        for suit in sc.suits:
            await nursery.start(suit.run)
        await nursery.start(sc.session.run)
        await trio.sleep(15.0)
        requests = [
            sc.session.desk.take(
                json.dumps({"do": "set_intensity", "client": 1 + k % 2, "mA": 10 + k % 7}),
                "tablet",
            )
            for k in range(1000)
        ]
        estop = sc.session.desk.take(b'{"do": "estop", "id": "stop!"}', "tablet")
        assert sc.session.state is ClassState.ESTOPPED  # latched as soon as it was read
        assert estop.request_id == "stop!"
        result = await estop.wait()
        assert result.ok and stopped_and_zero(sc)
        done = sum(r.result is not None for r in requests)
        assert done < 1000  # the commands queued before it had not all run
        for r in requests:
            await r.wait()
        kinds = [e.kind for e in sc.session.events.events]
        first_estop = kinds.index("estop")
        last_command = max(i for i, k in enumerate(kinds) if k == "command")
        assert first_estop < last_command
        assert (await submit(sc.session, '{"do": "stop"}', "tablet")).ok
        nursery.cancel_scope.cancel()


@needs_mosquitto
async def test_class4_mqtt_estop_after_1000_commands_is_executed_before_them(
    tmp_path: Path,
) -> None:
    from suit_controller.commands import RateLimit
    from suit_controller.mqtt import BrokerUrl, Topics
    from suit_controller.mqtt.bridge import MqttBridge

    broker = Broker(tmp_path)
    broker.start()
    try:
        sc = SimulatedClass(short_plan(LONG), 2, intensity_mA=20.0, body=False)
        sc.session.desk.limit = RateLimit(per_s=1000.0, burst=2000)
        bridge = MqttBridge(sc.session, BrokerUrl.parse(broker.url()), Topics.for_room())
        sc.companions = [bridge.run]
        async with trio_asyncio.open_loop(), trio.open_nursery() as nursery:
            tablet = await nursery.start(Probe(broker, "tablet-room-1", inflight=0).run)
            nursery.start_soon(sc.run)
            await tablet.wait_for(
                lambda: [s for s in tablet.on("/state") if s["state"] == "running"]
            )
            await tablet.wait_for(lambda: bridge.connected and bridge.estop_connected)
            for k in range(1000):
                tablet.publish_nowait(
                    tablet.commands_topic(),
                    {"id": f"c{k}", "do": "set_intensity", "client": 1, "mA": 10 + k % 5},
                )
            tablet.publish_nowait("ems/studio/room-1/estop", {"id": "stop"})
            results = await tablet.wait_for(
                lambda: (r := tablet.on("/commands/result")) and len(r) >= 1001 and r,
                within=60,
            )
            assert {r["id"] for r in results} >= {f"c{k}" for k in range(1000)} | {"stop"}
            kinds = [
                (e.kind, e.data.get("command", {}).get("do"))
                for e in sc.session.events.events
                if e.kind in ("estop", "command")
            ]
            first_estop = kinds.index(("estop", None))
            last_set = max(i for i, k in enumerate(kinds) if k == ("command", "set_intensity"))
            assert first_estop < last_set  # it did not wait behind the burst
            assert stopped_and_zero(sc)
            nursery.cancel_scope.cancel()
    finally:
        broker.stop()


async def test_a_suit_whose_counter_a_stranger_used_up_is_refused_and_the_class_goes_on(
    autojump_clock: trio.testing.MockClock,
) -> None:
    from suit_controller.protocol import COUNTER_MAX, StopAll, encode

    sc = SimulatedClass(short_plan(), 2, intensity_mA=20.0, body=False)
    # anyone may stop an unenrolled suit; a STOP_ALL numbered 0xFFFFFFFF leaves it no counter
    fw = sc.suits[0].firmware
    fw.receive(encode(StopAll(COUNTER_MAX)), 0.0)
    assert fw.last_counter == COUNTER_MAX
    assert await sc.run() == "finished"  # the class is not ended by it
    refused = [e for e in sc.session.events.events if e.kind == "suit_refused"]
    assert len(refused) == 1 and "frame counter is used up" in refused[0].message
    now = trio.current_time()
    assert sum(t.charge_uC for t in fw.totals(now)) == 0.0  # never stimulated
    assert sum(t.charge_uC for t in sc.suits[1].firmware.totals(now)) > 0.0  # the other trained


# -- class 5: one payload never ends a class --------------------------------------------------
async def test_class5_deep_nesting_is_refused_clearly_at_the_one_entry(
    autojump_clock: trio.testing.MockClock,
) -> None:
    from suit_controller.commands import submit

    sc = SimulatedClass(short_plan(LONG), 1, intensity_mA=20.0, body=False)
    async with trio.open_nursery() as nursery:
        for suit in sc.suits:
            await nursery.start(suit.run)
        await nursery.start(sc.session.run)
        deep: Any = 1
        for _ in range(40):
            deep = [deep]
        for raw in ("[" * 4000, "[" * 2000 + "]" * 2000, {"do": "set_intensity", "mA": deep}):
            result = await submit(sc.session, raw, "test")
            assert not result.ok and "nested" in result.message, result
        assert sc.session.state is ClassState.RUNNING
        nursery.cancel_scope.cancel()


async def test_a_refused_command_keeps_its_id_and_says_what_is_wrong(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Review 5, L3/L4, at the one entry the console and MQTT share (`submit`): a refusal
    whose JSON parsed answers with its id; a key given twice is named; -0 mA is 0 mA."""
    from suit_controller.commands import submit

    sc = SimulatedClass(short_plan(LONG), 1, intensity_mA=20.0, body=False)
    async with trio.open_nursery() as nursery:
        for suit in sc.suits:
            await nursery.start(suit.run)
        await nursery.start(sc.session.run)
        cases = {
            '{"id": "i1", "do": "set_intensity", "client": 1, "mA": 1e999}': "finite",
            '{"id": "i2", "do": "pause", "x": [[[[1]]]]}': "nested more than 4",
            '{"id": "i3", "do": "pause", "x": NaN}': "no NaN",
            '{"id": "i4", "do": "set_intensity", "do": "pause", "client": 1, "mA": 3}': (
                "'do' is given twice in one command"
            ),
            '{"id": "i5", "do": "pause", "x": {"a": 1, "a": 2}}': "'a' is given twice",
        }
        for raw, why in cases.items():
            result = await submit(sc.session, raw, "test")
            assert not result.ok and why in result.message, result
            assert result.request_id == json.loads(raw)["id"], (raw, result)
        twice = await submit(sc.session, '{"id": "a", "id": "b", "do": "pause"}', "test")
        assert not twice.ok and "'id' is given twice" in twice.message
        assert twice.request_id is None  # which one? neither is the request's
        for field in ("delta_mA", "mA"):
            zero = await submit(
                sc.session, f'{{"do": "set_intensity", "client": 1, "{field}": -0.0}}', "test"
            )
            assert zero.ok and "target" in zero.message, zero
            assert "-0" not in zero.message and "0 mA" in zero.message, zero
        assert sc.session.state is ClassState.RUNNING
        nursery.cancel_scope.cancel()


@needs_mosquitto
async def test_class5_mqtt_deep_nesting_and_a_broken_bridge_never_end_the_class(
    tmp_path: Path,
) -> None:
    from suit_controller.mqtt import BrokerUrl, Topics
    from suit_controller.mqtt.bridge import MqttBridge

    broker = Broker(tmp_path)
    broker.start()
    try:
        sc = SimulatedClass(short_plan(LONG), 2, intensity_mA=20.0, body=False)
        bridge = MqttBridge(sc.session, BrokerUrl.parse(broker.url()), Topics.for_room())
        sc.companions = [bridge.run]
        async with trio_asyncio.open_loop(), trio.open_nursery() as nursery:
            tablet = await nursery.start(Probe(broker, "tablet-room-1").run)
            nursery.start_soon(sc.run)
            await tablet.wait_for(
                lambda: [s for s in tablet.on("/state") if s["state"] == "running"]
            )
            await tablet.publish(tablet.commands_topic(), b"[" * 4000)
            r = await tablet.wait_for(lambda: tablet.on("/commands/result"))
            assert r[0]["ok"] is False and "nested" in r[0]["message"]
            surrogate = await tablet.command({"do": "set_intensity", "client": "\ud800", "mA": 5})
            assert not surrogate["ok"] and "no client named" in surrogate["message"]
            # review 5, L3: refusals whose JSON parsed are answered with their id
            inf = await tablet.command(
                b'{"id": "i1", "do": "set_intensity", "client": 1, "mA": 1e999}', "i1"
            )
            assert not inf["ok"] and "finite" in inf["message"]
            deep = await tablet.command(b'{"id": "i2", "do": "pause", "x": [[[[1]]]]}', "i2")
            assert not deep["ok"] and "nested" in deep["message"]
            assert sc.session.state is ClassState.RUNNING
            state = await tablet.wait_for(lambda: tablet.on("/state"))
            assert state[-1]["class_id"] == str(uuid.UUID(sc.session.session_id))
            nursery.cancel_scope.cancel()
    finally:
        broker.stop()


@needs_mosquitto
async def test_class4_mqtt_rate_limits_are_per_client_id_a_flooding_tablet_starves_no_other(
    tmp_path: Path,
) -> None:
    """Precision of issue 12: rate limits are per interface connection (an MQTT client id).
    Through Mosquitto with the shipped ACL: commands are carried out from
    `…/commands/from/<client id>` only; one tablet flooding its own topic is refused above
    its limit while another is still heard; the shared `…/commands` topic refuses commands
    and says where to publish, but an e-stop there still stops every suit."""
    from suit_controller.mqtt import BrokerUrl, Topics
    from suit_controller.mqtt.bridge import MqttBridge

    broker = Broker(tmp_path)
    broker.start()
    try:
        sc = SimulatedClass(short_plan(LONG), 2, intensity_mA=20.0, body=False)
        bridge = MqttBridge(sc.session, BrokerUrl.parse(broker.url()), Topics.for_room())
        sc.companions = [bridge.run]
        room = "ems/studio/room-1"
        async with trio_asyncio.open_loop(), trio.open_nursery() as nursery:
            flooder = await nursery.start(
                Probe(broker, "tablet-room-1", inflight=0, client_id="tablet-a").run
            )
            other = await nursery.start(Probe(broker, "tablet-room-1", client_id="tablet-b").run)
            nursery.start_soon(sc.run)
            await other.wait_for(lambda: [s for s in other.on("/state") if s["state"] == "running"])

            def flood(ks: range) -> None:  # one tablet sends far above its limit
                for k in ks:
                    flooder.publish_nowait(
                        flooder.commands_topic(),
                        {"id": f"a{k}", "do": "set_intensity", "client": 1, "mA": 10},
                    )

            def results() -> dict[str, Any]:
                return {r.get("id"): r for r in other.on("/commands/result")}

            flood(range(120))  # three times its burst, at once
            await other.wait_for(
                lambda: [r for i, r in results().items() if i[:1] == "a" and not r["ok"]],
                within=30,
            )
            for k in range(3):  # while the flooder is held to its limit, the other is heard
                await other.publish(
                    f"{room}/commands/from/tablet-b",
                    {"id": f"b{k}", "do": "set_intensity", "client": 2, "mA": 12 + k},
                )
                flood(range(120 + 20 * k, 140 + 20 * k))

            def summaries() -> list[dict[str, Any]]:  # refusals past the limit, answered together
                return [
                    r
                    for r in other.on("/commands/result")
                    if isinstance(r, dict) and "commands refused" in r["message"]
                ]

            def accounted() -> int:  # flood commands answered one by one or in a summary
                one_by_one = sum(1 for i in results() if str(i)[:1] == "a")
                return one_by_one + sum(int(r["message"].split()[0]) for r in summaries())

            got = await other.wait_for(
                lambda: (
                    (r := results())
                    and all(f"b{k}" in r for k in range(3))
                    and accounted() == 180
                    and r
                ),
                within=60,
            )
            assert all(got[f"b{k}"]["ok"] for k in range(3)), [got[f"b{k}"] for k in range(3)]
            assert sc.session.desk.taken >= 183
            refused = [r for i, r in got.items() if str(i)[:1] == "a" and not r["ok"]]
            refused += summaries()
            assert all("from mqtt:tablet-a;" in r["message"] for r in refused), refused[0]
            assert sc.session.board.target_mA[1].max() == pytest.approx(14.0)
            # the shared topic: a command is refused, with where to publish it instead
            await other.publish(
                f"{room}/commands", {"id": "s1", "do": "set_intensity", "client": 2, "mA": 30}
            )
            shared = await other.wait_for(lambda: results().get("s1"))
            assert shared["ok"] is False and shared["command"] is None, shared
            assert f"publish them on {room}/commands/from/<your client id>" in shared["message"]
            assert sc.session.board.target_mA[1].max() == pytest.approx(14.0)
            assert sc.session.state is ClassState.RUNNING
            # ... but an e-stop there is obeyed (safety over form)
            await other.publish(f"{room}/commands", {"id": "s2", "do": "estop"})
            stop = await other.wait_for(lambda: results().get("s2"))
            assert stop["ok"] is True, stop
            await other.wait_for(lambda: stopped_and_zero(sc), within=20)
            assert sc.session.state is ClassState.ESTOPPED
            nursery.cancel_scope.cancel()
    finally:
        broker.stop()


@needs_mosquitto
async def test_class4_the_shipped_acl_lets_a_tablet_command_only_under_its_own_client_id(
    tmp_path: Path,
) -> None:
    """A tablet cannot escape its limit by inventing ids, nor spend another tablet's: the
    shipped ACL drops a command on `commands/from/<an id not its own>` at the broker."""
    from suit_controller.mqtt import BrokerUrl, Topics
    from suit_controller.mqtt.bridge import MqttBridge

    broker = Broker(tmp_path)
    broker.start()
    try:
        sc = SimulatedClass(short_plan(LONG), 2, intensity_mA=20.0, body=False)
        bridge = MqttBridge(sc.session, BrokerUrl.parse(broker.url()), Topics.for_room())
        sc.companions = [bridge.run]
        room = "ems/studio/room-1"
        async with trio_asyncio.open_loop(), trio.open_nursery() as nursery:
            tablet = await nursery.start(Probe(broker, "tablet-room-1", client_id="tablet-a").run)
            other = await nursery.start(Probe(broker, "tablet-room-1", client_id="tablet-b").run)
            nursery.start_soon(sc.run)
            await tablet.wait_for(lambda: bridge.connected)
            taken = sc.session.desk.taken
            for k, topic in enumerate([f"{room}/commands/from/fake-{k}" for k in range(5)]):
                await tablet.publish(topic, {"id": f"f{k}", "do": "skip"})
            await tablet.publish(other.commands_topic(), {"id": "spoof", "do": "pause"})
            own = await tablet.command({"do": "set_intensity", "client": 1, "mA": 11})
            assert own["ok"], own
            assert sc.session.desk.taken == taken + 1  # only its own reached the controller
            ids = {r.get("id") for r in tablet.on("/commands/result")}
            assert not ids & {"spoof", *(f"f{k}" for k in range(5))}, ids
            assert sc.session.state is ClassState.RUNNING
            nursery.cancel_scope.cancel()
    finally:
        broker.stop()


async def test_class4_past_max_sources_a_new_client_id_takes_the_idlest_rested_place(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """The first MAX_COMMAND_SOURCES tablets cannot squat every place: a newcomer takes
    the place of the longest idle source whose limit has fully recovered; while every
    source is still within its limit's window, a newcomer gets a small limit of its own
    (OVERFLOW_LIMIT; more in test_mqtt_sources.py)."""
    from suit_controller.mqtt import BrokerUrl, Topics
    from suit_controller.mqtt.bridge import MAX_COMMAND_SOURCES, OVERFLOW_LIMIT, MqttBridge

    sc = SimulatedClass(short_plan(LONG), 2, intensity_mA=20.0, body=False)
    bridge = MqttBridge(sc.session, BrokerUrl.parse("mqtt://127.0.0.1:1"), Topics.for_room())
    desk = sc.session.desk
    cmd = {"do": "set_intensity", "client": 1, "mA": 10}
    for k in range(MAX_COMMAND_SOURCES):  # the early tablets each spend their whole burst
        source = bridge.source_for(f"early-{k}")
        assert source == f"mqtt:early-{k}"
        for _ in range(desk.limit.burst):
            assert desk.take(cmd, source).result is None  # queued, not refused
        await trio.sleep(0.01)
    assert bridge.source_for("late") == "mqtt:late"  # no place has recovered yet:
    assert "mqtt:late" not in bridge.sources  # a small limit of its own, no place
    assert desk.limit_of("mqtt:late") == OVERFLOW_LIMIT
    await trio.sleep(desk.limit.burst / desk.limit.per_s - 0.25)  # early-0..6 have recovered
    bridge.source_for("early-3")  # ... and early-3 is busy again
    assert bridge.source_for("late") == "mqtt:late"
    assert "mqtt:early-0" not in bridge.sources  # the longest idle, rested, made room
    assert {"mqtt:early-1", "mqtt:early-3", "mqtt:late"} <= set(bridge.sources)
    assert len(bridge.sources) == MAX_COMMAND_SOURCES
    assert desk.take(cmd, "mqtt:late").result is None  # the newcomer has a full limit
    assert bridge.source_for("later") == "mqtt:later"  # next: early-1 (early-3 was used)
    assert "mqtt:early-1" not in bridge.sources and "mqtt:early-3" in bridge.sources
    # the evicted tablet comes back: a place of its own again, with its limit intact
    assert bridge.source_for("early-0") == "mqtt:early-0"
    for _ in range(desk.limit.burst):
        assert desk.take(cmd, "mqtt:early-0").result is None
    assert desk.take(cmd, "mqtt:early-0").result is not None  # and no more than its limit


@needs_mosquitto
async def test_the_shipped_broker_drops_a_payload_over_its_message_size_limit(
    tmp_path: Path,
) -> None:
    """Build 5: the shipped mosquitto.conf sets message_size_limit; it acts, the class goes on."""
    from suit_controller.mqtt import BrokerUrl, Topics
    from suit_controller.mqtt.bridge import MqttBridge

    conf = (ROOT / "deploy" / "mosquitto" / "mosquitto.conf").read_text()
    limit = int(conf.split("\nmessage_size_limit ")[1].split()[0])
    assert 4096 <= limit <= 1 << 20
    broker = Broker(tmp_path)
    broker.start()
    try:
        sc = SimulatedClass(short_plan(LONG), 2, intensity_mA=20.0, body=False)
        bridge = MqttBridge(sc.session, BrokerUrl.parse(broker.url()), Topics.for_room())
        sc.companions = [bridge.run]
        async with trio_asyncio.open_loop(), trio.open_nursery() as nursery:
            tablet = await nursery.start(Probe(broker, "tablet-room-1").run)
            nursery.start_soon(sc.run)
            await tablet.wait_for(
                lambda: [s for s in tablet.on("/state") if s["state"] == "running"]
            )
            taken = sc.session.desk.taken
            assert (await tablet.command({"do": "set_intensity", "client": 1, "mA": 21}))["ok"]
            taken = sc.session.desk.taken
            pad = "x" * (limit + 1)
            await tablet.publish(tablet.commands_topic(), {"id": "big", "do": "pause", "pad": pad})
            small = await tablet.command({"do": "set_intensity", "client": 1, "mA": 22})
            assert small["ok"]
            assert sc.session.desk.taken == taken + 1  # the big one never reached the controller
            assert not [r for r in tablet.on("/commands/result") if r.get("id") == "big"]
            assert sc.session.state is ClassState.RUNNING
            nursery.cancel_scope.cancel()
    finally:
        broker.stop()


@needs_mosquitto
async def test_class5_a_bridge_that_raises_on_every_command_never_ends_the_class(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Build 1: an interface's failure never ends a class; reported once, counted."""
    from suit_controller.mqtt import BrokerUrl, Topics
    from suit_controller.mqtt.bridge import MqttBridge

    def broken(self: MqttBridge, *args: Any, **kwargs: Any) -> None:
        raise RecursionError("a bug in the bridge's own command handling")

    monkeypatch.setattr(MqttBridge, "handle", broken)
    broker = Broker(tmp_path)
    broker.start()
    try:
        sc = SimulatedClass(short_plan(LONG), 2, intensity_mA=20.0, body=False)
        bridge = MqttBridge(sc.session, BrokerUrl.parse(broker.url()), Topics.for_room())
        sc.companions = [bridge.run]
        async with trio_asyncio.open_loop(), trio.open_nursery() as nursery:
            tablet = await nursery.start(Probe(broker, "tablet-room-1").run)
            nursery.start_soon(sc.run)
            await tablet.wait_for(
                lambda: [s for s in tablet.on("/state") if s["state"] == "running"]
            )
            for k in range(5):
                await tablet.publish("ems/studio/room-1/commands", {"id": f"c{k}", "do": "skip"})
            await tablet.wait_for(lambda: sum(bridge.errors.values()) >= 5, within=20)
            reported = sc.session.events.of_kind("interface_error")
            assert len(reported) == 1 and "RecursionError" in reported[0].message
            assert sc.session.state is ClassState.RUNNING
            # the e-stop's own connection is untouched by the broken command handling
            await tablet.publish("ems/studio/room-1/estop", {"id": "stop"})
            await tablet.wait_for(lambda: stopped_and_zero(sc), within=20)
            assert sc.session.state is ClassState.ESTOPPED
            nursery.cancel_scope.cancel()
    finally:
        broker.stop()


# -- class 6: retained commands are never executed -------------------------------------------
@needs_mosquitto
async def test_class6_a_retained_command_is_refused_and_answered(tmp_path: Path) -> None:
    from suit_controller.mqtt import BrokerUrl, Topics
    from suit_controller.mqtt.bridge import MqttBridge

    broker = Broker(tmp_path)
    broker.start()
    try:
        async with trio_asyncio.open_loop(), trio.open_nursery() as nursery:
            tablet = await nursery.start(Probe(broker, "tablet-room-1").run)
            await tablet.publish(
                "ems/studio/room-1/commands", {"id": "old", "do": "pause"}, retain=True
            )
            await tablet.publish("ems/studio/room-1/estop", {"id": "old-stop"}, retain=True)
            sc = SimulatedClass(short_plan(LONG), 2, intensity_mA=20.0, body=False)
            bridge = MqttBridge(sc.session, BrokerUrl.parse(broker.url()), Topics.for_room())
            sc.companions = [bridge.run]
            nursery.start_soon(sc.run)
            results = await tablet.wait_for(
                lambda: (r := tablet.on("/commands/result")) and len(r) >= 2 and r
            )
            by_id = {r["id"]: r for r in results}
            for rid in ("old", "old-stop"):
                assert by_id[rid]["ok"] is False and "retained" in by_id[rid]["message"]
            await trio.sleep(1.0)
            assert sc.session.state is ClassState.RUNNING
            nursery.cancel_scope.cancel()
    finally:
        broker.stop()


async def _until(check: Any, within: float = 30.0) -> None:
    """Wait (polling) until `check()` is true; fail after `within` seconds."""
    with trio.fail_after(within):
        while not check():  # noqa: ASYNC110 - a test polls the bridge's flags
            await trio.sleep(0.05)


@needs_mosquitto
async def test_class6_a_retained_command_is_refused_again_on_every_reconnect_never_executed(
    tmp_path: Path,
) -> None:
    """The broker keeps retained messages across restarts (persistence): each time the
    controller reconnects it is handed the retained command and e-stop again, and each
    time it answers them with a refusal and carries out neither."""
    from suit_controller.mqtt import BrokerUrl, Topics
    from suit_controller.mqtt.bridge import MqttBridge

    broker = Broker(tmp_path, persistent=True)
    broker.start()
    try:
        async with trio_asyncio.open_loop(), trio.open_nursery() as nursery:
            tablet = await nursery.start(Probe(broker, "tablet-room-1").run)
            await tablet.publish(
                tablet.commands_topic(),
                {"id": "old", "do": "set_intensity", "client": 1, "mA": 33},
                retain=True,
            )
            await tablet.publish("ems/studio/room-1/estop", {"id": "old-stop"}, retain=True)
            tablet.stop()
            sc = SimulatedClass(short_plan(LONG), 2, intensity_mA=20.0, body=False)
            bridge = MqttBridge(sc.session, BrokerUrl.parse(broker.url()), Topics.for_room())
            sc.companions = [bridge.run]
            nursery.start_soon(sc.run)

            def refusals(source: str) -> int:
                return sum(
                    1
                    for e in sc.session.events.of_kind("command_refused")
                    if e.data.get("source") == source and "retained" in e.message
                )

            for connects in (1, 2, 3):  # the first connection, then two broker restarts
                if connects > 1:
                    broker.stop()
                    await _until(lambda: not bridge.connected)
                    broker.start()
                await _until(lambda c=connects: bridge.connects == c and bridge.connected)
                await _until(
                    lambda c=connects: (
                        refusals(f"mqtt:{tablet.client_id}") == c
                        and refusals("mqtt:estop") == c
                        and bridge.results_published == 2 * c
                    )  # each refusal answered
                )
                assert sc.session.state is ClassState.RUNNING
                assert sc.session.board.target_mA.max() == pytest.approx(20.0)
                assert not sc.session.desk.queue and not sc.session.events.of_kind("estop")
            nursery.cancel_scope.cancel()
    finally:
        broker.stop()


@needs_mosquitto
async def test_class6_a_reconnecting_controller_republishes_its_state_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Build 5: after the broker restarts (it forgot every retained message), the controller
    publishes its retained state as soon as it is back, not at its next periodic update
    (made an hour here, and nothing in the class changes meanwhile)."""
    from suit_controller.mqtt import BrokerUrl, Topics
    from suit_controller.mqtt import bridge as bridge_module
    from suit_controller.mqtt.bridge import MqttBridge

    monkeypatch.setattr(bridge_module, "STATE_EVERY_S", 3600.0)
    broker = Broker(tmp_path)
    broker.start()
    try:
        sc = SimulatedClass(short_plan(LONG), 2, intensity_mA=20.0, body=False)
        bridge = MqttBridge(sc.session, BrokerUrl.parse(broker.url()), Topics.for_room())
        sc.companions = [bridge.run]
        async with trio_asyncio.open_loop(), trio.open_nursery() as nursery:
            nursery.start_soon(sc.run)
            await _until(lambda: bridge.connected and sc.session.state is ClassState.RUNNING)
            await sc.session.execute(SetIntensity(client=1, mA=25), source="test")
            broker.stop()
            await _until(lambda: not bridge.connected)
            broker.start()
            await _until(lambda: bridge.connects == 2 and bridge.connected)
            late = await nursery.start(Probe(broker, "dashboard").run)  # subscribes after
            retained = await late.wait_for(
                lambda: [json.loads(p) for t, p, r in late.messages if t.endswith("/state") and r]
            )
            assert retained[0]["class_id"] == str(uuid.UUID(sc.session.session_id))
            assert retained[0]["state"] == "running"
            assert [json.loads(p) for t, p, r in late.messages if t.endswith("/online")] == [True]
            nursery.cancel_scope.cancel()
    finally:
        broker.stop()


# -- class 7: small defects, each a clear message ---------------------------------------------
@pytest.mark.parametrize(
    ("option", "value"),
    [("--rate", "nan"), ("--intensity", "nan"), ("--rate", "inf"), ("--intensity", "-inf")],
)
def test_class7_non_finite_cli_numbers_are_clear_errors(
    tmp_path: Path, option: str, value: str
) -> None:
    code, output, rec = sim_run(tmp_path, option, value)
    assert code == 2 and rec is None
    assert "finite" in output and option in output and "Traceback" not in output


def test_an_absurd_speed_is_a_clear_error_not_a_class_of_zero_minutes(tmp_path: Path) -> None:
    workout = tmp_path / "w.yaml"
    workout.write_text(SHORT)
    result = CliRunner().invoke(suitctl, ["sim", "run", str(workout), "--speed", "1e308"])
    assert result.exit_code == 2, result.output
    assert "--speed" in result.output and "Traceback" not in result.output


@pytest.mark.parametrize(
    ("entry", "why"),
    [
        ("{at: 1s, do: set_intensity, client: 1, mA: true}", "mA"),
        ("{at: 1s, do: set_intensity, client: true, mA: 5}", "client"),
    ],
)
def test_class7_booleans_and_nan_in_actions_files_are_refused(
    tmp_path: Path, entry: str, why: str
) -> None:
    actions = tmp_path / "a.yaml"
    actions.write_text(f"- {entry}\n")
    code, output, rec = sim_run(tmp_path, "--actions", str(actions))
    assert code == 1 and rec is None, output
    assert why in output and "Traceback" not in output


def test_class7_binary_workout_file_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "w.yaml"
    path.write_bytes(b"name: x\n\xff\xfe\x00\x81 binary")
    result = CliRunner().invoke(suitctl, ["workout", "validate", str(path)])
    assert result.exit_code in (1, 2) and isinstance(result.exception, SystemExit)
    assert "UTF-8" in result.output and "Traceback" not in result.output


def test_class7_invalid_phase_kind_names_the_value_found(tmp_path: Path) -> None:
    path = tmp_path / "w.yaml"
    path.write_text(SHORT.replace("kind: warmup", "kind: warmpu"))
    result = CliRunner().invoke(suitctl, ["workout", "validate", str(path)])
    assert result.exit_code == 1
    assert "warmpu" in result.output and "warmup" in result.output


def test_class7_a_yaml_alias_bomb_is_refused_not_expanded(tmp_path: Path) -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 9)]
    lines += ["name: *a8"]  # 10^9 values if expanded
    path = tmp_path / "bomb.yaml"
    path.write_text("\n".join(lines) + "\n")
    result = CliRunner().invoke(suitctl, ["workout", "validate", str(path)])
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit)
    assert "expands to more than" in result.output and "Traceback" not in result.output


def test_class7_an_actions_file_alias_bomb_is_refused_not_expanded(tmp_path: Path) -> None:
    lines = ["- &a0 {at: 0s, do: pause, x: [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]}"]
    lines += [
        f"- &a{i} {{at: 1s, do: pause, x: [{', '.join([f'*a{i - 1}'] * 10)}]}}" for i in range(1, 9)
    ]  # 10^9 values if expanded
    actions = tmp_path / "bomb.yaml"
    actions.write_text("\n".join(lines) + "\n")
    code, output, rec = sim_run(tmp_path, "--actions", str(actions))
    assert code == 1 and rec is None, output
    assert "expands to more than" in output and "Traceback" not in output


def test_class7_a_duration_of_400_digits_is_a_problem_not_a_traceback(tmp_path: Path) -> None:
    path = tmp_path / "w.yaml"
    text = (ROOT / "workouts" / "library" / "classic_strength.yaml").read_text()
    path.write_text(text.replace("duration: 6m", "duration: " + "9" * 400, 1))
    result = CliRunner().invoke(suitctl, ["workout", "validate", str(path)])
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit), result.output
    assert "duration" in result.output and "Traceback" not in result.output


# -- outside review: what a user wrote is shown escaped, never raw, in a terminal or a log ----
TERMINAL_HOSTILE = ("\x1b", "\x07", "\r", "\x00", "\u202e", "\ud800")


def test_control_characters_in_a_workout_are_shown_escaped_by_the_validator(
    tmp_path: Path,
) -> None:
    workout = tmp_path / "w.yaml"
    workout.write_text(
        SHORT.replace(
            "program: s, channels: {quads: 1.0",
            'program: "t\\e[0m\\r", channels: {"quads\\e[7m": 1.0',
        )
        .replace("duration: 10s}", 'duration: "5m\\e[2J\\a"}', 1)
        .replace("glutes: 1.0", '"x\\u202e[red]": 1.0'),
        encoding="utf-8",
    )
    result = CliRunner().invoke(suitctl, ["workout", "validate", str(workout)])
    assert result.exit_code == 1, result.output
    assert not any(c in result.output for c in TERMINAL_HOSTILE), repr(result.output)
    assert "\\u001b[2J" in result.output and "\\u202e[red]" in result.output


def test_control_characters_in_commands_are_shown_escaped_in_the_class_log(
    tmp_path: Path,
) -> None:
    actions = tmp_path / "class\x1b[2J\x07.yaml"  # its name is the commands' source
    actions.write_text(
        '- {at: 12s, do: set_intensity, client: "Ann\\e[2J\\r", mA: 10}\n'
        '- {at: 13s, do: set_intensity, client: "\\ud800", mA: 10}\n',
        encoding="utf-8",
    )
    code, output, _ = sim_run(tmp_path, "--actions", str(actions))
    assert code == 0, output
    assert not any(c in output for c in TERMINAL_HOSTILE), repr(output)
    assert output.count("refused") >= 2 and "\\u001b[2J" in output
