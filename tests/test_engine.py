"""The class engine in virtual time: sync, e-stop (S3), watchdog (S4), loss (S9), exits."""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import pytest
import trio
import trio.testing

from channels.limits import INTENSITY_RISE_STEP_S
from suit_controller.commands import (
    EmergencyStop,
    Pause,
    Reset,
    Resume,
    SetIntensity,
    Skip,
    Stop,
)
from suit_controller.protocol import SuitState
from suit_controller.session import ClassState

from .simclass_helpers import ABS, QUADS, contains, make_class


def all_zero(sc: Any) -> bool:
    return all(not s.firmware.applied_mA.any() for s in sc.suits)


async def test_every_suit_gets_a_contractions_rising_edge_in_the_same_tick(
    autojump_clock: trio.testing.MockClock,
) -> None:
    sc, hist = make_class(4)
    assert await sc.run() == "finished"
    edges = [hist.rising_edges(s.address, QUADS) for s in sc.suits]
    assert len(edges[0]) == 5  # 40 s of 4 s on / 4 s off
    assert all(e == edges[0] for e in edges)
    # the first rising edge is one tick after the impulse starts (the ramp starts at 0)
    t0 = hist.changes[sc.suits[0].address][0][0]
    assert edges[0][0] - t0 == pytest.approx(10.025, abs=1e-6)


async def test_emergency_stop_zeroes_every_suit_at_once_and_latches(
    autojump_clock: trio.testing.MockClock,
) -> None:
    sc, hist = make_class(4)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(sc.run)
        await trio.sleep(12.0)  # mid-contraction
        assert all(s.firmware.applied_mA[QUADS] > 0 for s in sc.suits)
        result = await sc.session.execute(EmergencyStop(), source="test")
        now = trio.current_time()
        assert result.ok
        # same virtual instant, before any further tick
        assert all_zero(sc)
        assert all(s.firmware.state is SuitState.STOPPED for s in sc.suits), [
            (s.firmware.state, d.state) for s, d in zip(sc.suits, sc.session.drivers, strict=False)
        ]
        assert all(hist.changes[s.address][-1][0] == now for s in sc.suits)
        await trio.sleep(5.0)
        assert all_zero(sc) and sc.session.state is ClassState.ESTOPPED
        refused = await sc.session.execute(Resume(), source="test")
        assert not refused.ok and "reset" in refused.message
        assert (await sc.session.execute(Reset(), source="test")).ok
        assert sc.session.state is ClassState.PAUSED
        await trio.sleep(1.0)
        assert all_zero(sc)
        assert (await sc.session.execute(Resume(), source="test")).ok
        assert sc.session.board.set_mA.max() <= 1.0  # ramps up again from zero (S2)
        await trio.sleep(3.0)
        assert all(s.firmware.state is SuitState.ARMED for s in sc.suits)
        nursery.cancel_scope.cancel()
    assert all_zero(sc)


async def test_a_lost_suit_is_zeroed_by_its_watchdog_and_the_others_go_on(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async def run(drop: bool) -> Any:
        sc, hist = make_class(4)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(sc.run)
            await trio.sleep(12.0)
            if drop:
                fw = sc.suits[1].firmware
                sc.suits[1].drop_link()
                last_frame = fw.last_feed
                assert last_frame is not None and fw.applied_mA[QUADS] > 0
                await trio.sleep_until(last_frame + 0.2499)
                assert fw.applied_mA[QUADS] > 0
                await trio.sleep_until(last_frame + 0.2501)
                assert not fw.applied_mA.any()
                assert fw.state is SuitState.WATCHDOG
                zeroed_at = hist.changes[sc.suits[1].address][-1][0]
                assert zeroed_at == pytest.approx(last_frame + 0.25, abs=1e-9)
        return sc, hist

    ref, ref_hist = await run(drop=False)
    sc, hist = await run(drop=True)
    for i in (0, 2, 3):  # S9: the other clients did not notice
        a, b = ref_hist.changes[ref.suits[i].address], hist.changes[sc.suits[i].address]
        assert len(a) == len(b)
        assert all(np.array_equal(x[1], y[1]) for x, y in zip(a, b, strict=True))
    assert sc.session.ending == "finished"
    assert sc.session.drivers[1].drops == 1 and sc.session.drivers[1].reconnects == 0


async def test_reconnect_ramps_up_from_zero(autojump_clock: trio.testing.MockClock) -> None:
    sc, hist = make_class(2)
    steps: list[tuple[float, float]] = []

    def spy(now: float) -> None:
        steps.append((now, float(sc.session.board.set_mA[1, QUADS])))

    sc.session.tick_observers.append(spy)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(sc.run)
        await trio.sleep(12.0)
        sc.suits[1].drop_link()
        await trio.sleep(2.0)
        t_restore = trio.current_time()
        sc.suits[1].restore_link()
        await trio.sleep(20.0)
        nursery.cancel_scope.cancel()
    kinds = [e.kind for e in sc.session.events.events if e.client == "client-2"]
    assert "link_lost" in kinds and kinds.count("link_up") == 2
    after = [(t, v) for t, v in steps if t >= t_restore]
    first_up = next(i for i, (_, v) in enumerate(after) if v > 0)
    assert after[first_up][1] == 1.0
    ups = [(t, v) for (t, v), (_, p) in zip(after[1:], after, strict=False) if v != p]
    for (t1, v1), (t2, v2) in itertools.pairwise(ups):
        assert 0 < v2 - v1 <= 1.0 and t2 - t1 >= INTENSITY_RISE_STEP_S - 1e-9
    assert max(v for _, v in after) == 20.0
    # the suit's first contraction after the reconnect is gentle
    edges = [t for t in hist.rising_edges(sc.suits[1].address, QUADS) if t > t_restore]
    first = next(lv for t, lv, _ in hist.changes[sc.suits[1].address] if t >= edges[0])
    assert first[QUADS] <= 1.0


class Boom(Exception):
    pass


@pytest.mark.parametrize("where", ["tick", "sender", "receiver", "suit_run"])
async def test_an_exception_in_any_engine_task_leaves_every_suit_at_zero(
    autojump_clock: trio.testing.MockClock, where: str
) -> None:
    sc, _ = make_class(3, faulty=True)
    session = sc.session
    armed = {"on": False}

    def arm_at_contraction() -> bool:
        return armed["on"]

    if where == "receiver":
        connection = session.drivers[2].connection
        receive = connection.receive_data

        def bad_receive(data: bytes, now: float) -> Any:
            if arm_at_contraction():
                raise Boom
            return receive(data, now)

        connection.receive_data = bad_receive  # type: ignore[method-assign]
    elif where == "suit_run":
        pass

    with pytest.raises(BaseException) as info:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(sc.run)
            await trio.sleep(12.0)
            assert all(s.firmware.applied_mA[QUADS] > 0 for s in sc.suits)
            if where == "suit_run":

                async def crash() -> None:
                    raise Boom

                nursery.start_soon(crash)
            if where == "sender":
                sc.faulty_links[1].fail_next_send(Boom())
            if where == "tick":  # an error in the engine's own tick task
                sc.faulty_ticks.fail_next_tick(Boom())
            armed["on"] = True
            await trio.sleep(5.0)
    assert contains(info.value, Boom)
    assert all_zero(sc)
    assert all(s.firmware.state is SuitState.STOPPED for s in sc.suits)
    assert session.ending == "interrupted"


async def test_cancellation_leaves_every_suit_at_zero(
    autojump_clock: trio.testing.MockClock,
) -> None:
    sc, _ = make_class(3)
    with trio.move_on_after(12.0):
        await sc.run()
    assert all_zero(sc)
    assert all(s.firmware.state is SuitState.STOPPED for s in sc.suits)


async def test_warmup_and_stretch_never_stimulate(autojump_clock: trio.testing.MockClock) -> None:
    sc, hist = make_class(2, intensity_mA=60.0)
    await sc.run()
    t0 = hist.changes[sc.suits[0].address][0][0]
    for s in sc.suits:
        for t, lv, _ in hist.changes[s.address]:
            if t - t0 < 10.0 or t - t0 >= 90.0:
                assert not lv.any(), (t - t0, lv)


async def test_output_never_exceeds_the_client_cap(autojump_clock: trio.testing.MockClock) -> None:
    from suit_controller.clients import ClientSpec

    sc, _ = make_class(
        2,
        clients=[
            ClientSpec("Ana", intensity_mA=40, cap_mA=15),
            ClientSpec("Ben", intensity_mA=40, first_session=True),
        ],
    )
    await sc.run()
    assert sc.suits[0].firmware.max_seen_mA.max() == 15.0
    assert sc.suits[1].firmware.max_seen_mA.max() == 40.0  # first-session cap is 50 mA


async def test_output_never_exceeds_the_charge_cap(autojump_clock: trio.testing.MockClock) -> None:
    text = """\
name: Long pulses
programs:
  p: {frequency_hz: 20, pulse_width_us: 450, impulse_s: 4, pause_s: 4}
phases:
  - kind: suit
    exercises:
      - {name: Squat, duration: 60s, program: p, channels: {quads: 1.0}}
"""
    sc, _ = make_class(1, text=text, intensity_mA=120.0)
    await sc.run()
    assert sc.suits[0].firmware.max_seen_mA[QUADS] == 100.0  # 45 µC / 450 µs
    limits = sc.session.events.of_kind("limit")
    assert limits and "cap of 100.0 mA" in limits[0].message


async def test_intensity_commands_and_their_refusals(
    autojump_clock: trio.testing.MockClock,
) -> None:
    sc, _ = make_class(2)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(sc.run)
        await trio.sleep(1.0)
        s = sc.session
        ok = await s.execute(SetIntensity(client=2, channel="quads", mA=42))
        assert ok.ok and s.board.target_mA[1, QUADS] == 42
        assert (await s.execute(SetIntensity(client="client-1", delta_mA=+1))).ok
        assert s.board.target_mA[0].tolist() == [21.0] * 12
        assert (await s.execute(SetIntensity(channel="chest", delta_mA=-5))).ok
        assert s.board.target_mA[:, 0].tolist() == [16.0, 15.0]
        for cmd, why in [
            (SetIntensity(client=3, mA=10), "no client 3"),
            (SetIntensity(client="Zoe", mA=10), "no client named 'Zoe'"),
            (SetIntensity(client=1, channel="neck", mA=10), "forbidden electrode location"),
            (SetIntensity(client=1, channel="biceps", mA=10), "no channel for biceps"),
            (
                SetIntensity(client=1, channel="chest_left", mA=101),
                "above client-1's cap of 100 mA",
            ),
            (SetIntensity(client=1), "either mA"),
        ]:
            result = await s.execute(cmd)
            assert not result.ok and why in result.message, result
        assert s.board.target_mA[1, QUADS] == 42  # refusals changed nothing
        nursery.cancel_scope.cancel()


async def test_pause_resume_skip_stop(autojump_clock: trio.testing.MockClock) -> None:
    sc, _ = make_class(1)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(sc.run)
        s = sc.session
        await trio.sleep(12.0)
        assert (await s.execute(Pause())).ok
        assert all_zero(sc)
        t = s.plan_time()
        await trio.sleep(30.0)
        assert s.plan_time() == t and all_zero(sc)
        assert (await s.execute(Resume())).ok
        assert (await s.execute(Skip())).ok
        assert s.plan_time() == pytest.approx(50.0)
        await trio.sleep(1.0)
        assert s.snapshot()["exercise"] == "Crunch"
        assert (await s.execute(Stop())).ok
        await trio.sleep(0.1)
    assert s.ending == "stopped" and all_zero(sc)
    assert not (await s.execute(Resume())).ok


async def test_session_totals_agree_with_the_plan_for_the_builtin_classic(
    autojump_clock: trio.testing.MockClock,
) -> None:
    from suit_controller.cli.simclass import SimulatedClass
    from workouts import compile_workout, load_workout

    plan = compile_workout(load_workout("builtin:classic_strength"))
    sc = SimulatedClass(plan, 1, intensity_mA=30.0)
    assert await sc.run() == "finished"
    rec = sc.record()
    tick = 1 / sc.rate_hz
    contractions = plan.contractions_per_channel()
    stim = plan.stim_s_per_channel()
    for j, name in enumerate(plan.layout.names):
        got = rec["clients"][0]["channels"][name]
        assert got["contractions"] == contractions[j], name
        # the first tick of each impulse samples the ramp at 0: one tick per contraction
        assert stim[j] - contractions[j] * tick - tick <= got["stim_s"] <= stim[j] + 1e-6, name
    assert rec["ended"] == "finished"
    assert rec["plan_s"] == pytest.approx(plan.total_s, abs=tick)
    assert sum(c["contractions"] for c in rec["clients"][0]["channels"].values()) > 0
    # the summed contraction count of the workout, as `workout validate` reports it
    assert plan.summary().contractions == 153


async def test_injected_faults_show_in_the_status(autojump_clock: trio.testing.MockClock) -> None:
    sc, _ = make_class(3)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(sc.run)
        await trio.sleep(12.0)
        sc.suits[0].set_battery(10)
        sc.suits[1].detach_electrode(QUADS)
        await trio.sleep(0.5)
        snap = sc.session.snapshot()
        assert snap["clients"][0]["battery_pct"] == 10
        assert "LOW_BATTERY" in snap["clients"][0]["faults"]
        assert snap["clients"][1]["contact"][QUADS] is False
        assert "ELECTRODE_OPEN" in snap["clients"][1]["faults"]
        assert sc.suits[1].firmware.applied_mA[QUADS] == 0
        assert sc.suits[2].firmware.applied_mA[QUADS] > 0
        nursery.cancel_scope.cancel()


async def test_link_latency_delays_the_stop_by_that_latency(
    autojump_clock: trio.testing.MockClock,
) -> None:
    sc, hist = make_class(2)
    for s in sc.suits:
        s.latency_s = 0.020
    async with trio.open_nursery() as nursery:
        nursery.start_soon(sc.run)
        await trio.sleep(12.0)
        t = trio.current_time()
        await sc.session.execute(EmergencyStop())
        assert all(s.firmware.applied_mA.any() for s in sc.suits)  # still in flight
        await trio.sleep(0.021)
        assert all_zero(sc)
        for s in sc.suits:
            assert hist.changes[s.address][-1][0] == pytest.approx(t + 0.020)
        nursery.cancel_scope.cancel()


async def test_a_lossy_link_does_not_trip_the_watchdog(
    autojump_clock: trio.testing.MockClock,
) -> None:
    sc, _ = make_class(2, seed=7)
    for s in sc.suits:
        s.loss = 0.05
        s.jitter_s = 0.005
    assert await sc.run() == "finished"
    assert all(s.firmware.watchdog_trips == 0 for s in sc.suits)
    assert all(s.firmware.max_seen_mA[QUADS] == 20.0 for s in sc.suits)
    assert all(s.firmware.max_seen_mA[ABS] == 20.0 for s in sc.suits)


async def test_a_malformed_notification_is_reported_and_changes_nothing(
    autojump_clock: trio.testing.MockClock,
) -> None:
    sc, _ = make_class(2)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(sc.run)
        await trio.sleep(12.0)
        link = sc.session.drivers[0].link
        for junk in (b"", b"\x18garbage", bytes(40), b"\xff" * 7):
            link._on_notify(junk)  # type: ignore[attr-defined]
        await trio.sleep(1.0)
        bad = sc.session.events.of_kind("bad_notification")
        assert len(bad) == 1 and "ignored" in bad[0].message  # reported once, not per frame
        assert sc.session.drivers[0].bad_notifications == 4
        assert sc.session.state is ClassState.RUNNING
        assert all(s.firmware.state is SuitState.ARMED for s in sc.suits)
        nursery.cancel_scope.cancel()
