"""The suit makers' conformance kit (issue 17): it passes good suits and catches broken ones.

In-process runs (no radio) prove the checks; runs over bleak on the bumble
backend prove the kit as a suit maker runs it (`suitctl suits conformance`),
GATT included. Everything runs in virtual time.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import trio
import trio.testing
from click.testing import CliRunner

from sim import broken_firmware
from sim.broken_ble_suit import BROKEN_BLE_SUITS
from sim.broken_firmware import BROKEN_FIRMWARES
from sim.c_firmware import CSuitFirmware, unavailable_reason
from sim.firmware import SuitFirmware
from sim.suit import AnyFirmware, SimulatedSuit
from suit_controller.cli import suitctl
from suit_controller.cli.conformance import simulated_room_run
from suit_controller.conformance import (
    CHECKS,
    ConformanceRun,
    InProcessTarget,
    html_report,
    junit_xml,
    run_conformance,
)
from suit_controller.protocol.enrollment import encode_enroll, new_suit_key

N_CHANNELS = 32  # more than one 64-byte status payload carries: splitting is exercised
ALL = {c.name for c in CHECKS}
NO_RADIO = {"gatt.advertised", "gatt.characteristics"}
#: The checks that need a second central in range (a phone): over bumble only.
SECOND_CENTRAL = {
    "auth.link-encrypted",
    "auth.idle-dropped",
    "auth.one-controller",
    "auth.controller-gets-a-slot",
}
#: The checks that need the suit's key (the kit enrolls a test key, or is given one).
NEEDS_KEY = {"auth.wrong-key", "auth.unsigned-refused", "auth.enrolled-elsewhere"}
#: What an in-process run without a key skips.
IN_PROCESS_SKIPS = NO_RADIO | SECOND_CENTRAL | NEEDS_KEY
C_MISSING = unavailable_reason()
needs_c = pytest.mark.skipif(C_MISSING is not None, reason=f"C firmware: {C_MISSING}")

#: Each broken firmware's own check, and the checks that test the same rule (S4 for the
#: watchdog: a suit without one is still ARMED when the link comes back).
MUST_FAIL: dict[str, set[str]] = {
    "no watchdog": {"watchdog.zeroes", "watchdog.timing", "reconnect.safe-state"},
    "watchdog at 400 ms": {"watchdog.timing"},
    "accepts stale counters": {"counter.stale", "auth.replay-across-reconnect"},
    "applies levels before ARM": {"arm.levels-before-arm"},
    "forgets the stop latch": {"stop.latch"},
    "ignores the CRC": {"frame.bad-crc"},
    "clamps out-of-range levels": {"frame.level-out-of-range"},
    "no own charge limit": {"limits.charge"},
    "ignores the program id": {"program.mismatch"},
    "forgets the counter on disconnect": {
        "counter.across-connections",
        "auth.replay-across-reconnect",
    },
    "status ignores the MTU": {"status.split-min"},
    "accepts any tag": {"auth.wrong-key"},
    "acts on unsigned frames": {"auth.unsigned-refused"},
    "ignores the stop characteristic": {"auth.stop-from-anyone"},
    "stop characteristic moves the counter": {"auth.stop-keeps-counter"},
    "re-enrolls anywhere": {"auth.enrolled-elsewhere"},
}
#: The broken suits whose rule only shows on an enrolled suit (a run without the key passes).
ONLY_ENROLLED = {"accepts any tag", "acts on unsigned frames", "re-enrolls anywhere"}
#: Each broken BLE layer's own checks, among the link checks.
LINK_CHECKS = [*sorted(SECOND_CENTRAL), "auth.stop-from-anyone"]
MUST_FAIL_LINK: dict[str, set[str]] = {
    "no link security": {"auth.link-encrypted"},
    "keeps idle links": {"auth.idle-dropped"},
    "many controllers": {"auth.one-controller"},
    # one slot, held by the kit: a phone cannot even reach the stop characteristic
    "one slot": {"auth.controller-gets-a-slot", "auth.stop-from-anyone"},
}


async def in_process(firmware: AnyFirmware, *, enrolled: bool = False) -> ConformanceRun:
    key = None
    if enrolled:
        key = new_suit_key()
        assert firmware.auth.handle(encode_enroll(bytes(range(16)), key)) is None
    suit = SimulatedSuit("SIM-01", firmware=firmware)
    async with trio.open_nursery() as nursery:
        await nursery.start(suit.run)
        run = await run_conformance(InProcessTarget(suit), key=key)
        nursery.cancel_scope.cancel()
    assert not suit.firmware.applied_mA.any()  # the kit leaves the suit stopped
    return run


def outcomes(run: ConformanceRun) -> dict[str, str]:
    return {r.name: r.outcome for r in run.results}


def failed(run: ConformanceRun) -> set[str]:
    return {r.name for r in run.results if r.outcome == "failed"}


async def test_the_python_firmware_passes_every_check(
    autojump_clock: trio.testing.MockClock,
) -> None:
    run = await in_process(SuitFirmware(N_CHANNELS))
    assert [r.name for r in run.results] == [c.name for c in CHECKS]
    assert run.passed and failed(run) == set(), [(r.name, r.message) for r in run.results]
    assert {n for n, o in outcomes(run).items() if o == "skipped"} == IN_PROCESS_SKIPS


@pytest.mark.parametrize("core", ["python", pytest.param("c", marks=needs_c)])
async def test_an_enrolled_suit_passes_every_check_signed(
    core: str, autojump_clock: trio.testing.MockClock
) -> None:
    fw = CSuitFirmware(N_CHANNELS) if core == "c" else SuitFirmware(N_CHANNELS)
    run = await in_process(fw, enrolled=True)
    assert run.passed and failed(run) == set(), [(r.name, r.message) for r in run.results]
    assert {n for n, o in outcomes(run).items() if o == "passed"} == ALL - NO_RADIO - SECOND_CENTRAL
    assert fw.auth.refused_frames > 0  # the unsigned attacks reached the firmware, refused


@needs_c
async def test_the_c_firmware_passes_every_check(autojump_clock: trio.testing.MockClock) -> None:
    run = await in_process(CSuitFirmware(N_CHANNELS))
    assert run.passed and failed(run) == set(), [(r.name, r.message) for r in run.results]
    assert {n for n, o in outcomes(run).items() if o == "passed"} == ALL - IN_PROCESS_SKIPS


@pytest.mark.parametrize("n", [1, 22, 23])  # 22: every frame at 64 bytes is full
@pytest.mark.parametrize("core", ["python", pytest.param("c", marks=needs_c)])
async def test_suits_of_other_sizes_pass(
    n: int, core: str, autojump_clock: trio.testing.MockClock
) -> None:
    run = await in_process(CSuitFirmware(n) if core == "c" else SuitFirmware(n))
    assert run.passed, [(r.name, r.message) for r in run.results if r.outcome == "failed"]


def test_every_broken_firmware_has_its_expected_failures_listed() -> None:
    assert set(MUST_FAIL) == set(BROKEN_FIRMWARES)
    assert all(names <= ALL for names in MUST_FAIL.values())


@pytest.mark.parametrize("name", sorted(BROKEN_FIRMWARES))
async def test_a_broken_firmware_fails_exactly_its_checks(
    name: str, autojump_clock: trio.testing.MockClock
) -> None:
    enrolled = name in ONLY_ENROLLED
    run = await in_process(BROKEN_FIRMWARES[name](N_CHANNELS), enrolled=enrolled)
    assert not run.passed
    assert failed(run) == MUST_FAIL[name], [
        (r.name, r.message) for r in run.results if r.outcome == "failed"
    ]
    skips = NO_RADIO | SECOND_CENTRAL if enrolled else IN_PROCESS_SKIPS
    assert all(o == "passed" for n, o in outcomes(run).items() if n not in MUST_FAIL[name] | skips)


@pytest.mark.parametrize("name", sorted(ONLY_ENROLLED))
async def test_a_suit_broken_only_when_enrolled_passes_open(
    name: str, autojump_clock: trio.testing.MockClock
) -> None:
    """Without the key those checks are skipped, not passed: the kit says so."""
    run = await in_process(BROKEN_FIRMWARES[name](N_CHANNELS))
    assert run.passed and not MUST_FAIL[name] & {
        n for n, o in outcomes(run).items() if o != "skipped"
    }


def test_every_broken_ble_suit_has_its_expected_failures_listed() -> None:
    assert set(MUST_FAIL_LINK) == set(BROKEN_BLE_SUITS)


@pytest.mark.parametrize("name", sorted(BROKEN_BLE_SUITS))
def test_a_broken_ble_suit_fails_exactly_its_link_checks(name: str) -> None:
    """Over bumble, enrolled, the link checks alone: each broken BLE layer fails its own."""
    from sim.ble_world import BleRoom

    room = BleRoom(
        [SimulatedSuit("SIM-01", firmware=SuitFirmware(4))], peripheral=BROKEN_BLE_SUITS[name]
    )
    run = trio.run(
        simulated_room_run,
        room,
        "python",
        True,
        LINK_CHECKS,
        clock=trio.testing.MockClock(autojump_threshold=0),
    )
    assert [r.name for r in run.results] == [c.name for c in CHECKS if c.name in LINK_CHECKS]
    assert failed(run) == MUST_FAIL_LINK[name], [
        (r.name, r.message) for r in run.results if r.outcome == "failed"
    ]
    assert all(r.outcome == "passed" for r in run.results if r.name not in MUST_FAIL_LINK[name])


async def test_a_failure_shows_the_bytes_sent_and_seen(
    autojump_clock: trio.testing.MockClock,
) -> None:
    run = await in_process(broken_firmware.IgnoresCrc(N_CHANNELS))
    (bad_crc,) = [r for r in run.results if r.outcome == "failed"]
    assert bad_crc.name == "frame.bad-crc" and "expected it unchanged" in bad_crc.message
    sent = [line for line in bad_crc.transcript if "→" in line and "a bad CRC" in line]
    assert len(sent) == 1
    seen = [line for line in bad_crc.transcript if "←" in line and "STATUS ARMED" in line]
    assert any("[30, 30" in line for line in seen)  # the corrupted frame's levels applied
    assert all(r.transcript == () for r in run.results if r.outcome != "failed")
    # the watchdog timing is measured by the suit's clock
    slow = await in_process(broken_firmware.SlowWatchdog(N_CHANNELS))
    (timing,) = [r for r in slow.results if r.outcome == "failed"]
    assert "tripped 400 ms after the ARM by the suit's clock" in timing.message


async def test_a_suit_out_of_reach_is_one_clear_reason(
    autojump_clock: trio.testing.MockClock,
) -> None:
    suit = SimulatedSuit("SIM-09", firmware=SuitFirmware(4))
    suit.reachable = False
    async with trio.open_nursery() as nursery:
        await nursery.start(suit.run)
        run = await run_conformance(InProcessTarget(suit))
        nursery.cancel_scope.cancel()
    assert run.connect_error == "cannot connect: SIM-09: suit out of reach"
    assert not run.passed and suit.frames_received == 0
    assert {r.message for r in run.results if r.outcome == "failed"} == {run.connect_error}


async def test_reports_junit_and_html(autojump_clock: trio.testing.MockClock) -> None:
    run = await in_process(broken_firmware.NoChargeLimit(N_CHANNELS))
    suite = ET.fromstring(junit_xml(run))
    assert suite.tag == "testsuite" and suite.get("tests") == str(len(CHECKS))
    assert suite.get("failures") == "1" and suite.get("skipped") == str(len(IN_PROCESS_SKIPS))
    (failure,) = suite.iter("failure")
    assert "120 mA asked at 450 µs" in (failure.get("message") or "")
    assert "→" in (failure.text or "") and "←" in (failure.text or "")
    page = html_report(run)
    assert page.startswith("<!doctype html>") and "DOES NOT CONFORM" in page
    assert "limits.charge" in page and 'class="failed"' in page
    assert "<script" not in page and "http" not in page  # self-contained


# -- over bleak on the bumble backend, as a suit maker runs it ---------------------------------


@pytest.mark.parametrize("firmware", ["python", pytest.param("c", marks=needs_c)])
def test_suitctl_suits_conformance_simulated_passes(firmware: str, tmp_path: Path) -> None:
    """Enrolled with a test key: every check, the security ones included, over bumble."""
    out = tmp_path / "report"
    args = ["suits", "conformance", "--simulated", "--enroll", "--firmware", firmware]
    r = CliRunner().invoke(suitctl, [*args, "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert f"CONFORMS: {len(CHECKS)} passed, 0 failed, 0 skipped" in r.output
    assert f"{firmware} firmware, over bumble, enrolled" in r.output
    suite = ET.parse(out / "conformance.xml").getroot()
    names = [c.get("name") for c in suite.iter("testcase")]
    assert names == [c.name for c in CHECKS]  # GATT checks ran over the radio too
    assert suite.get("failures") == "0" and suite.get("skipped") == "0"
    assert "CONFORMS" in (out / "conformance.html").read_text()


def test_suitctl_suits_conformance_exits_1_on_a_broken_suit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import sim.firmware

    monkeypatch.setattr(sim.firmware, "SuitFirmware", broken_firmware.NoWatchdog)
    r = CliRunner().invoke(suitctl, ["suits", "conformance", "--simulated"])
    assert r.exit_code == 1, r.output
    # without --enroll the checks that need the suit's key are skipped
    assert f"DOES NOT CONFORM: {len(CHECKS) - 3 - len(NEEDS_KEY)} passed, 3 failed" in r.output
    assert f"{len(NEEDS_KEY)} skipped" in r.output
    assert "watchdog.zeroes: bytes sent (→) and seen (←)" in r.output


def test_suitctl_suits_conformance_usage() -> None:
    r = CliRunner().invoke(suitctl, ["suits", "conformance"])
    assert r.exit_code == 2 and "ADDRESS, or --simulated" in r.output
    r = CliRunner().invoke(suitctl, ["suits", "conformance", "AA:BB", "--simulated"])
    assert r.exit_code == 2
    r = CliRunner().invoke(suitctl, ["suits", "conformance", "AA:BB", "--firmware", "c"])
    assert r.exit_code == 2 and "use them with --simulated" in r.output
    r = CliRunner().invoke(suitctl, ["suits", "conformance", "AA:BB", "--enroll"])
    assert r.exit_code == 2 and "needs its --setup-code" in r.output
    r = CliRunner().invoke(suitctl, ["suits", "conformance", "AA:BB", "--setup-code", "123456"])
    assert r.exit_code == 2 and "goes with --enroll" in r.output
    r = CliRunner().invoke(
        suitctl, ["suits", "conformance", "AA:BB", "--enroll", "--setup-code", "12345"]
    )
    assert r.exit_code == 2 and "6 digits" in r.output


def test_docs_list_every_check_in_order() -> None:
    spec = (Path(__file__).parent.parent / "docs" / "protocol.md").read_text()
    table = spec[spec.index("## Conformance checks") :]
    rows = [line.split("`")[1] for line in table.splitlines() if line.startswith("| `")]
    assert rows == [c.name for c in CHECKS]


@pytest.mark.parametrize("core", ["python", pytest.param("c", marks=needs_c)])
def test_an_open_suits_counter_is_not_moved_by_a_stop_on_the_stop_characteristic(
    core: str,
) -> None:
    """docs/security.md rule 2, on both cores: anyone's stop cannot lock the studio out."""
    from suit_controller.protocol import SuitState
    from suit_controller.protocol.codec import encode
    from suit_controller.protocol.frames import Arm, StopAll

    fw = CSuitFirmware(N_CHANNELS) if core == "c" else SuitFirmware(N_CHANNELS)
    fw.receive(encode(Arm(counter=1)), 0.0)
    assert fw.receive_stop(encode(StopAll(counter=2**32 - 1)), 0.1)
    assert fw.state is SuitState.STOPPED and fw.last_counter == 1
    fw.receive(encode(Arm(counter=2)), 0.2)
    assert fw.state is SuitState.ARMED and fw.last_counter == 2


async def test_a_suit_whose_stop_characteristic_moves_the_counter_fails_enrolled_too(
    autojump_clock: trio.testing.MockClock,
) -> None:
    run = await in_process(
        BROKEN_FIRMWARES["stop characteristic moves the counter"](N_CHANNELS), enrolled=True
    )
    assert {"auth.stop-keeps-counter", "auth.stop-from-anyone"} <= failed(run)
    (r,) = [r for r in run.results if r.name == "auth.stop-keeps-counter"]
    assert "lock the controller out" in r.message
