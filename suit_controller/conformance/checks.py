"""The conformance checks: one per rule of docs/protocol.md, run over a suit under test.

Theory of operation
-------------------
Each check is an async function over a `Probe` (frames out, whole status
reports in, a transcript). It starts from a known, safe state (STOP_ALL, then
a status showing STOPPED), does what its rule is about, and judges only by
what the suit *reports* in its status frames: state, applied levels, fault
flags, the last accepted counter and the suit's own clock. To know that the
suit has handled a frame, a check sends a HEARTBEAT after it and waits for a
report that counts the heartbeat (a "fence"): frames are handled in order, so
everything before it has been judged by then. A check raises `CheckFailed`
with what it saw; the runner adds the transcript (every byte sent and seen).

Levels used are small (12 and 15 mA), except in the charge limit check,
which asks for 120 mA at 450 µs and stops the suit right after. Run the kit
on a test load (a resistor per channel), never on a person.

The checks run in the order of `CHECKS` on one suit, which must be freshly
powered on (the first level check needs IDLE).
"""

from __future__ import annotations

import contextlib
import contextvars
import itertools
import struct
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import trio

from channels.limits import CHARGE_PER_PHASE_MAX_UC, LEVEL_STEP_MA, WATCHDOG_S
from suit_controller.conformance.probe import (
    AT_ONCE_S,
    NEXT_STATUS_S,
    CheckFailed,
    CheckSkipped,
    Line,
    Probe,
    Report,
    corrupt_crc,
    reseal,
)
from suit_controller.links.base import LinkError
from suit_controller.protocol import (
    CONTROL_UUID,
    REQUIRED_ATT_PAYLOAD,
    SERVICE_UUID,
    STATUS_HEADER_LEN,
    STATUS_UUID,
    Arm,
    Faults,
    SuitState,
    encode,
    encode_levels,
)
from suit_controller.protocol.enrollment import (
    AUTH_TIMEOUT_S,
    STUDIO_ID_LEN,
    Refusal,
    SuitKey,
    encode_enroll,
    new_suit_key,
)

#: The watchdog time and the tolerance the kit allows, ms (docs/protocol.md, S4).
WATCHDOG_MS = round(WATCHDOG_S * 1000)
WATCHDOG_TOLERANCE_MS = 25
#: A status at least 5 times a second (suit's clock; 5 ms for its timer's granularity).
STATUS_PERIOD_MS = 200
STATUS_PERIOD_SLACK_MS = 5
LOW = 24  # 12 mA
OTHER = 30  # 15 mA

CheckFn = Callable[[Probe], Awaitable[None]]
#: The nursery a check (re)connects in (the runner's), for the checks that reconnect.
nursery_for_checks: contextvars.ContextVar[trio.Nursery] = contextvars.ContextVar(
    "conformance_nursery"
)


@dataclass(frozen=True)
class Check:
    """One check: its name (the rule's id), the rule it tests in the spec's words, its code."""

    name: str
    rule: str
    run: CheckFn
    required: bool = True


CHECKS: list[Check] = []


def check(name: str, rule: str, *, required: bool = True) -> Callable[[CheckFn], CheckFn]:
    """Register a check under its rule's name (docs/protocol.md lists them all)."""

    def register(fn: CheckFn) -> CheckFn:
        CHECKS.append(Check(name, rule, fn, required))
        return fn

    return register


def _levels(probe: Probe, code: int) -> list[int]:
    return [code] * (probe.n_channels or 1)


def _fail_unless(ok: bool, message: str) -> None:
    if not ok:
        raise CheckFailed(message)


# -- GATT --------------------------------------------------------------------------------------


@check("gatt.advertised", "The EMS suit service is primary and advertised.")
async def gatt_advertised(probe: Probe) -> None:
    found = await probe.target.advertised()
    if found is None:
        raise CheckSkipped("no radio: an in-process suit does not advertise")
    _fail_unless(found, f"no advertisement of service {SERVICE_UUID} from {probe.target.address}")


@check(
    "gatt.characteristics",
    "control: write without response; status: notify (both in the EMS suit service).",
)
async def gatt_characteristics(probe: Probe) -> None:
    chars = await probe.target.characteristics()
    if chars is None:
        raise CheckSkipped("no GATT: an in-process suit has no characteristics")
    _fail_unless(bool(chars), f"the suit has no service {SERVICE_UUID}")
    for uuid, prop in ((CONTROL_UUID, "write-without-response"), (STATUS_UUID, "notify")):
        got = chars.get(uuid)
        _fail_unless(got is not None, f"no characteristic {uuid} in the service: {sorted(chars)}")
        assert got is not None
        _fail_unless(prop in got, f"characteristic {uuid} has {sorted(got)}, not {prop!r}")


# -- status ------------------------------------------------------------------------------------


@check(
    "status.at-once",
    "The suit notifies a status (version 2) at once when notifications are enabled.",
)
async def status_at_once(probe: Probe) -> None:
    first = probe.reports[probe.first_report_index :]
    bad = [b for b in probe.bad_status if b[0] >= probe.connected_at]
    if bad:
        raise CheckFailed(f"the first status cannot be read: {bad[0][2]} ({bad[0][1].hex()})")
    _fail_unless(bool(first), "no status after notifications were enabled")
    delay = first[0].at - probe.connected_at
    _fail_unless(
        delay <= AT_ONCE_S,
        f"the first status came {delay * 1000:.0f} ms after notifications were enabled",
    )


@check(
    "status.period",
    "The suit sends its status at least 5 times a second; its clock is ms since power-on.",
)
async def status_period(probe: Probe) -> None:
    m = probe.mark()
    await trio.sleep(1.0)
    reports = probe.since(m)
    _fail_unless(len(reports) >= 4, f"{len(reports)} status reports in 1 s")
    gaps = [(b.clock_ms - a.clock_ms) & 0xFFFFFFFF for a, b in itertools.pairwise(reports)]
    worst = max(gaps)
    _fail_unless(
        worst <= STATUS_PERIOD_MS + STATUS_PERIOD_SLACK_MS,
        f"{worst} ms between two reports on the suit's clock (gaps {gaps})",
    )
    host = reports[-1].at - reports[0].at
    suit = sum(gaps) / 1000
    _fail_unless(
        abs(host - suit) <= 0.1 + 0.05 * host,
        f"the suit's clock ran {suit:.3f} s while {host:.3f} s passed",
    )


@check(
    "status.split-min",
    "A status of more channels than fit one 64-byte payload is split; the frames join back.",
)
async def status_split_min(probe: Probe) -> None:
    await _split_at(probe, REQUIRED_ATT_PAYLOAD)


@check(
    "status.split-large",
    "At a larger negotiated ATT MTU the status is split to that payload and joins back.",
)
async def status_split_large(probe: Probe) -> None:
    choices = probe.target.att_payload_choices
    await _split_at(probe, max(choices) if choices else None)


async def _split_at(probe: Probe, att_payload: int | None) -> None:
    choices = probe.target.att_payload_choices
    if att_payload is not None and att_payload not in choices:
        raise CheckSkipped(
            f"this link cannot ask for an ATT payload of {att_payload}: the Bluetooth stack "
            f"negotiated {probe.target.att_payload}"
        )
    n_before = probe.n_channels
    nursery = nursery_for_checks.get()
    try:
        await probe.connect(nursery, att_payload)
        payload = probe.target.att_payload
        m = probe.mark()
        await trio.sleep(0.5)
        reports = probe.since(m)
        _fail_unless(len(reports) >= 2, f"{len(reports)} status reports in 0.5 s")
        per_frame = (payload - STATUS_HEADER_LEN) // 2
        for r in reports:
            for raw, part in zip(r.frames, r.parts, strict=True):
                _fail_unless(
                    len(raw) <= payload,
                    f"a status notification of {len(raw)} bytes on a {payload}-byte ATT payload",
                )
                _fail_unless(
                    part.first_channel % per_frame == 0
                    and len(raw) == 20 + 2 * len(part.levels_mA),
                    f"a frame from channel {part.first_channel} with {len(part.levels_mA)} "
                    f"channels, not split at {per_frame} channels a frame",
                )
            heads = {(p.counter, p.clock_ms, p.state, p.faults, p.program) for p in r.parts}
            _fail_unless(len(heads) == 1, f"the frames of one report disagree: {heads}")
            if n_before is not None:
                _fail_unless(
                    len(r.codes) == n_before,
                    f"a report of {len(r.codes)} channels here, {n_before} before",
                )
        bad = [b for b in probe.bad_status if b[0] >= probe.connected_at]
        _fail_unless(not bad, f"unreadable status frames: {[b[2] for b in bad]}")
    finally:
        await probe.connect(nursery, max(choices) if choices else None)


# -- frames the suit must drop -----------------------------------------------------------------


async def _dropped_and_flagged(probe: Probe, make_bad: Callable[[int], bytes], what: str) -> None:
    """Levels LOW applied; a bad frame (which would set OTHER) is dropped, flagged, not counted."""
    before = await probe.armed_with(_levels(probe, LOW))
    m = probe.mark()
    c = probe.counter()
    await probe.send_raw(make_bad(c), f"{what}: must be dropped and flagged BAD_FRAME")
    after = await probe.fence()
    seen = probe.since(m)
    _fail_unless(
        after.state is SuitState.ARMED and after.codes == before.codes,
        f"after {what} the suit reports {after.describe()}; expected it unchanged: "
        f"ARMED, levels {list(before.codes)}",
    )
    _fail_unless(
        any(Faults.BAD_FRAME in r.faults for r in seen),
        f"no status flagged BAD_FRAME after {what} ({[str(r.faults) for r in seen]})",
    )
    _fail_unless(all(r.counter != c for r in seen), f"the suit accepted the counter {c} of {what}")


def _other_levels(probe: Probe, counter: int) -> bytearray:
    """A valid SET_LEVELS of OTHER on every channel, without its CRC, to spoil."""
    codes = bytes(_levels(probe, OTHER))
    return bytearray(encode_levels(counter, probe.program.program_id, codes)[:-2])


@check("frame.bad-crc", "A frame with a wrong CRC is dropped and flagged BAD_FRAME.")
async def frame_bad_crc(probe: Probe) -> None:
    await _dropped_and_flagged(
        probe, lambda c: corrupt_crc(reseal(bytes(_other_levels(probe, c)))), "a bad CRC"
    )


@check(
    "frame.bad-version",
    "A frame of another version (high nibble of byte 0 not 2) is dropped and flagged.",
)
async def frame_bad_version(probe: Probe) -> None:
    def bad(c: int) -> bytes:
        body = _other_levels(probe, c)
        body[0] = 0x31
        return reseal(bytes(body))

    await _dropped_and_flagged(probe, bad, "a SET_LEVELS of version 3")


@check("frame.bad-type", "A frame of an unknown type is dropped and flagged.")
async def frame_bad_type(probe: Probe) -> None:
    def bad(c: int) -> bytes:
        body = _other_levels(probe, c)
        body[0] = 0x27
        return reseal(bytes(body))

    await _dropped_and_flagged(probe, bad, "a frame of type 0x7")


@check(
    "frame.bad-length",
    "A frame whose length does not match its type (or its channel count) is dropped and flagged.",
)
async def frame_bad_length(probe: Probe) -> None:
    def bad_levels(c: int) -> bytes:
        body = _other_levels(probe, c)
        body[7] += 1  # one channel more than the frame carries
        return reseal(bytes(body))

    def bad_stop(c: int) -> bytes:  # if taken, it would stop the suit
        return reseal(struct.pack("<BIB", 0x23, c, 0) + b"\x00" + bytes(8))

    await _dropped_and_flagged(probe, bad_levels, "a SET_LEVELS whose channel count is one high")
    await _dropped_and_flagged(probe, bad_stop, "a STOP_ALL with a payload byte")


@check(
    "frame.level-out-of-range",
    "A level code above 240 makes the frame invalid: dropped and flagged.",
)
async def frame_level_out_of_range(probe: Probe) -> None:
    def bad(c: int) -> bytes:
        body = _other_levels(probe, c)
        body[8 + body[7] - 1] = 241  # the last channel
        return reseal(bytes(body))

    await _dropped_and_flagged(probe, bad, "a SET_LEVELS with a level code of 241")


@check(
    "frame.unsigned-tag",
    "A frame with key id 0 carries 8 zero bytes as its tag; any other tag is corrupt.",
)
async def frame_unsigned_tag(probe: Probe) -> None:
    def bad(c: int) -> bytes:
        body = _other_levels(probe, c)
        body[-1] = 0x01  # the tag's last byte
        return reseal(bytes(body))

    await _dropped_and_flagged(probe, bad, "a SET_LEVELS with key id 0 and a non-zero tag")


# -- the counter -------------------------------------------------------------------------------


@check(
    "counter.stale",
    "A frame whose counter is not greater than the last accepted one is dropped, unflagged.",
)
async def counter_stale(probe: Probe) -> None:
    before = await probe.armed_with(_levels(probe, LOW))
    last = probe.last_sent
    m = probe.mark()
    codes = bytes(_levels(probe, OTHER))
    pid = probe.program.program_id
    await probe.send_raw(
        probe.encode_levels(last, pid, codes), f"SET_LEVELS repeating counter {last}"
    )
    await probe.send_raw(
        probe.encode_levels(last - 1, pid, codes), f"SET_LEVELS with old counter {last - 1}"
    )
    after = await probe.fence()
    _fail_unless(
        after.codes == before.codes,
        f"stale SET_LEVELS frames applied: levels {list(after.codes)}, "
        f"expected {list(before.codes)}",
    )
    seen = probe.since(m)
    _fail_unless(
        not any(Faults.BAD_FRAME in r.faults for r in seen),
        "stale frames were flagged BAD_FRAME (delayed frames are normal on a radio)",
    )
    _fail_unless(
        all(r.counter >= last for r in seen), f"the counter fell: {[r.counter for r in seen]}"
    )


@check(
    "counter.ignored-frames-count",
    "An accepted frame raises the remembered counter even when its state ignores it.",
)
async def counter_ignored_frames_count(probe: Probe) -> None:
    await probe.reset()
    m = probe.mark()
    c = await probe.levels(_levels(probe, 0))  # zero levels: ignored in STOPPED
    await probe.wait_report(
        lambda r: r.counter == c,
        after=m,
        within=NEXT_STATUS_S,
        what=f"counting the SET_LEVELS {c} the suit ignored in STOPPED",
    )


@check(
    "counter.across-connections",
    "The suit remembers the last accepted counter across connections (until power-off).",
)
async def counter_across_connections(probe: Probe) -> None:
    await probe.reset()
    last = probe.last_sent
    await probe.disconnect()
    await trio.sleep(0.3)
    first = await probe.connect(nursery_for_checks.get(), _payload(probe))
    _fail_unless(
        first.counter >= last,
        f"after reconnecting the suit reports counter {first.counter}; it had accepted {last}",
    )


# -- ARM, STOP_ALL -----------------------------------------------------------------------------


@check(
    "arm.levels-before-arm",
    "Outputs are non-zero only in ARMED: SET_LEVELS before ARM (IDLE, at power on) does nothing.",
)
async def arm_levels_before_arm(probe: Probe) -> None:
    first = probe.reports[probe.first_report_index]
    if first.state is not SuitState.IDLE:
        raise CheckFailed(
            f"the suit was {first.state.name} when the kit connected, not IDLE: power it off "
            "and on, then run the kit again"
        )
    await probe.levels(_levels(probe, LOW))
    await probe.heartbeat()
    await probe.levels(_levels(probe, LOW))
    after = await probe.fence()
    _fail_unless(
        after.state is SuitState.IDLE and not any(after.codes),
        f"levels before ARM: the suit reports {after.describe()}, expected IDLE, all zero",
    )


@check("stop.latch", "STOP_ALL zeroes every output at once and latches until an explicit ARM.")
async def stop_latch(probe: Probe) -> None:
    await probe.armed_with(_levels(probe, LOW))
    m = probe.mark()
    await probe.stop_all()
    stopped = await probe.wait_report(
        lambda r: r.state is not SuitState.ARMED,
        after=m,
        within=AT_ONCE_S,
        what="at once after STOP_ALL",
    )
    _fail_unless(
        stopped.state is SuitState.STOPPED and not any(stopped.codes),
        f"after STOP_ALL: {stopped.describe()}, expected STOPPED, all zero",
    )
    await probe.levels(_levels(probe, LOW))
    await probe.heartbeat()
    await trio.sleep(0.3)
    await probe.levels(_levels(probe, LOW))
    held = await probe.fence()
    _fail_unless(
        held.state is SuitState.STOPPED and not any(held.codes),
        f"levels after STOP_ALL: {held.describe()}, expected STOPPED, all zero until ARM",
    )
    m = probe.mark()
    await probe.arm()
    armed = await probe.wait_report(
        lambda r: r.state is SuitState.ARMED,
        after=m,
        within=AT_ONCE_S,
        what="showing ARMED at once after ARM",
    )
    _fail_unless(not any(armed.codes), f"after ARM: {armed.describe()}, expected zero levels")
    await probe.levels(_levels(probe, LOW))
    again = await probe.fence()
    _fail_unless(
        again.codes == probe.expected(_levels(probe, LOW), again),
        f"levels after the ARM that ends the latch did not apply: {again.describe()}",
    )


@check(
    "stop.any-counter",
    "STOP_ALL is honoured whatever its counter; it never lowers the remembered counter.",
)
async def stop_any_counter(probe: Probe) -> None:
    await probe.armed_with(_levels(probe, LOW))
    last = probe.last_sent
    m = probe.mark()
    await probe.send_raw(
        reseal(struct.pack("<BIB", 0x23, 1, 0) + bytes(8)), "STOP_ALL with the old counter 1"
    )
    stopped = await probe.wait_report(
        lambda r: r.state is not SuitState.ARMED,
        after=m,
        within=AT_ONCE_S,
        what="at once after a STOP_ALL with an old counter",
    )
    _fail_unless(
        stopped.state is SuitState.STOPPED and not any(stopped.codes),
        f"after STOP_ALL with counter 1: {stopped.describe()}, expected STOPPED, all zero",
    )
    _fail_unless(
        stopped.counter >= last,
        f"the old STOP_ALL lowered the counter to {stopped.counter} (it was {last})",
    )


# -- the watchdog ------------------------------------------------------------------------------


@check(
    "watchdog.fed",
    "SET_LEVELS (for any program), HEARTBEAT and ARM feed the watchdog.",
)
async def watchdog_fed(probe: Probe) -> None:
    before = await probe.armed_with(_levels(probe, LOW))
    other = (probe.program.program_id % 255) + 1
    # (the fence behind armed_with fed it last, up to a status period ago: feed at once)
    for send in [probe.heartbeat] * 3 + [probe.arm]:
        await send()
        await trio.sleep(0.15)
    for _ in range(3):
        await probe.levels(_levels(probe, LOW), program_id=other)
        await trio.sleep(0.15)
    after = await probe.fence()
    _fail_unless(
        after.state is SuitState.ARMED and after.codes == before.codes,
        f"fed every 150 ms by HEARTBEAT, ARM and SET_LEVELS for program {other}, the suit "
        f"reports {after.describe()}",
    )


@check(
    "watchdog.zeroes",
    "No valid frame for the watchdog time: WATCHDOG, every output zero, until an explicit ARM.",
)
async def watchdog_zeroes(probe: Probe) -> None:
    await probe.armed_with(_levels(probe, LOW))
    m = probe.mark()
    tripped = await probe.wait_report(
        lambda r: r.state is not SuitState.ARMED,
        after=m,
        within=1.0,
        what="leaving ARMED while the controller was silent",
    )
    _fail_unless(
        tripped.state is SuitState.WATCHDOG
        and not any(tripped.codes)
        and Faults.WATCHDOG in tripped.faults,
        f"silent controller: {tripped.describe()}, expected WATCHDOG, all zero, flag WATCHDOG",
    )
    await probe.levels(_levels(probe, LOW))
    held = await probe.fence()
    _fail_unless(
        held.state is SuitState.WATCHDOG and not any(held.codes),
        f"levels after the watchdog tripped: {held.describe()}, expected zero until ARM",
    )


@check(
    "watchdog.timing",
    "The watchdog trips 250 ms ± 25 ms after the last valid frame, by the suit's own clock.",
)
async def watchdog_timing(probe: Probe) -> None:
    await probe.reset()
    m = probe.mark()
    await probe.arm()  # the last frame: its status, sent at once, carries the suit's clock
    armed = await probe.wait_report(
        lambda r: r.state is SuitState.ARMED,
        after=m,
        within=AT_ONCE_S,
        what="showing ARMED at once after ARM",
    )
    tripped = await probe.wait_report(
        lambda r: r.state is not SuitState.ARMED,
        after=probe.index(armed),
        within=1.0,
        what="leaving ARMED while the controller was silent",
    )
    elapsed = (tripped.clock_ms - armed.clock_ms) & 0xFFFFFFFF
    _fail_unless(
        tripped.state is SuitState.WATCHDOG,
        f"the silent suit reports {tripped.describe()}, not WATCHDOG",
    )
    _fail_unless(
        abs(elapsed - WATCHDOG_MS) <= WATCHDOG_TOLERANCE_MS,
        f"the watchdog tripped {elapsed} ms after the ARM by the suit's clock "
        f"(ARMED at {armed.clock_ms}, WATCHDOG at {tripped.clock_ms}); "
        f"expected {WATCHDOG_MS} ± {WATCHDOG_TOLERANCE_MS} ms",
    )


@check(
    "reconnect.safe-state",
    "A reconnect starts in the safe state: not ARMED, every output zero, until an explicit ARM.",
)
async def reconnect_safe_state(probe: Probe) -> None:
    await probe.armed_with(_levels(probe, LOW))
    await probe.disconnect()
    await trio.sleep(0.5)
    first = await probe.connect(nursery_for_checks.get(), _payload(probe))
    _fail_unless(
        first.state is not SuitState.ARMED and not any(first.codes),
        f"0.5 s after the link dropped, the suit reconnects {first.describe()}",
    )
    await probe.levels(_levels(probe, LOW))
    after = await probe.fence()
    _fail_unless(
        after.state is not SuitState.ARMED and not any(after.codes),
        f"levels on the new connection before ARM: {after.describe()}",
    )


# -- programs and the suit's own limits --------------------------------------------------------


async def _confirm(probe: Probe, frequency_hz: int, pulse_width_us: int) -> Report:
    pid = (probe.program.program_id % 255) + 1
    m = probe.mark()
    await probe.set_program(pid, frequency_hz, pulse_width_us)
    return await probe.wait_report(
        lambda r: r.program.program_id == pid,
        after=m,
        within=AT_ONCE_S,
        what=f"confirming program {pid} at once",
    )


@check(
    "program.confirmed",
    "SET_PROGRAM zeroes the outputs and is confirmed in the status before levels apply.",
)
async def program_confirmed(probe: Probe) -> None:
    await probe.armed_with(_levels(probe, LOW))
    confirmed = await _confirm(probe, 20, 400)
    p = confirmed.program
    _fail_unless(
        (p.frequency_hz, p.pulse_width_us) == (20, 400) and not any(confirmed.codes),
        f"after SET_PROGRAM ({p.program_id}, 20 Hz, 400 µs): {confirmed.describe()}, "
        "expected that program and zero levels",
    )
    await probe.levels(_levels(probe, LOW), program_id=p.program_id)
    after = await probe.fence()
    _fail_unless(
        after.codes == probe.expected(_levels(probe, LOW), after),
        f"levels for the confirmed program did not apply: {after.describe()}",
    )


@check(
    "program.mismatch",
    "SET_LEVELS for another program than the active one is dropped and flagged PROGRAM_MISMATCH.",
)
async def program_mismatch(probe: Probe) -> None:
    before = await probe.armed_with(_levels(probe, LOW))
    other = (probe.program.program_id % 255) + 1
    m = probe.mark()
    await probe.levels(_levels(probe, OTHER), program_id=other)
    after = await probe.fence()
    _fail_unless(
        after.codes == before.codes,
        f"levels for program {other} applied on program {before.program.program_id}: "
        f"{after.describe()}",
    )
    flags = [r.faults for r in probe.since(m)]
    _fail_unless(
        any(Faults.PROGRAM_MISMATCH in f for f in flags),
        f"no status flagged PROGRAM_MISMATCH ({[str(f) for f in flags]})",
    )


@check(
    "program.resent",
    "A re-sent SET_PROGRAM equal to the active program changes nothing.",
)
async def program_resent(probe: Probe) -> None:
    await probe.reset()
    p = (await _confirm(probe, 85, 300)).program
    before = await probe.armed_with(_levels(probe, LOW))
    await probe.set_program(p.program_id, p.frequency_hz, p.pulse_width_us)
    after = await probe.fence()
    _fail_unless(
        after.codes == before.codes and after.program == p,
        f"the active program re-sent: {after.describe()}, expected levels {list(before.codes)}",
    )


@check(
    "limits.charge",
    "Each level is clamped to the suit's own charge limit at the active pulse width "
    "(at most 45 µC per phase; CHARGE_CLAMPED).",
)
async def limits_charge(probe: Probe) -> None:
    await probe.reset()
    p = (await _confirm(probe, 85, 450)).program
    try:
        await probe.armed_with(_levels(probe, 0))
        await probe.levels(_levels(probe, 240), program_id=p.program_id)  # 120 mA: 54 µC
        after = await probe.fence()
    finally:
        await probe.stop_all()
    worst = max(after.codes) * LEVEL_STEP_MA * p.pulse_width_us / 1000
    _fail_unless(
        worst <= CHARGE_PER_PHASE_MAX_UC + 1e-9,
        f"120 mA asked at {p.pulse_width_us} µs: the suit applies {max(after.codes) / 2} mA, "
        f"{worst:.1f} µC per phase (limit {CHARGE_PER_PHASE_MAX_UC:g} µC)",
    )
    clamped = Faults.CHARGE_CLAMPED | Faults.LEVEL_CLAMPED
    _fail_unless(
        bool(after.faults & clamped),
        f"levels were clamped without CHARGE_CLAMPED or LEVEL_CLAMPED: {after.describe()}",
    )


# -- running a check on the probe's connection -------------------------------------------------


# -- security (docs/security.md) ---------------------------------------------------------------

#: How far ahead of the kit's counter an attacker's frames are numbered: accepted, they would
#: lock the kit's own frames out as stale (which a check sees as the counter it reports).
AHEAD = 1000


def _need_key(probe: Probe) -> SuitKey:
    if probe.key is None:
        raise CheckSkipped(
            "the suit is not enrolled with a key the kit holds (give the kit the suit's key "
            "with --key-file, or run --simulated --enrolled)"
        )
    return probe.key


def _attack_frames(probe: Probe, key: SuitKey | None, start: int) -> list[bytes]:
    """ARM, then SET_LEVELS at the OTHER level, numbered from `start`, signed with `key`."""
    k, kid = (None, 0) if key is None else (key.key, key.key_id)
    codes = bytes(_levels(probe, OTHER))
    return [
        encode(Arm(start), k, kid),
        encode_levels(start + 1, probe.program.program_id, codes, k, kid),
    ]


async def _unchanged(probe: Probe, before: Report, what: str) -> Report:
    """A fence after an attack: the same state and levels, and the counter is the fence's own."""
    after = await probe.fence()
    try:
        _fail_unless(
            after.state is before.state and after.codes == before.codes,
            f"after {what} the suit reports {after.describe()}; "
            f"expected it unchanged: {before.describe()}",
        )
        _fail_unless(
            after.counter == probe.last_sent,
            f"after {what} the suit's last accepted counter is {after.counter}, not the "
            f"kit's {probe.last_sent}: it accepted a frame it must refuse",
        )
    finally:
        probe.resync()
    return after


@check(
    "auth.link-encrypted",
    "Control writes from a link not bonded with the setup code (LE Secure Connections, "
    "passkey) change nothing, even with a valid tag.",
)
async def auth_link_encrypted(probe: Probe) -> None:
    await probe.reset()
    last = probe.last_sent
    await probe.disconnect()  # the suit is free: only its link security can refuse the phone
    frames = _attack_frames(probe, probe.key, last + AHEAD)
    async with probe.target.second_central(False) as phone:
        for f in frames:
            probe.transcript.append(Line(trio.current_time(), "→", f, "from an unbonded phone"))
            with contextlib.suppress(LinkError):  # a suit may drop the phone: fine
                await phone.write(CONTROL_UUID, f)
        await trio.sleep(0.1)
    first = await probe.connect(nursery_for_checks.get(), _payload(probe), authenticate=False)
    try:
        _fail_unless(
            first.state is SuitState.STOPPED and not any(first.codes) and first.counter == last,
            f"after an unbonded phone wrote ARM and SET_LEVELS (counters from {last + AHEAD}) "
            f"the suit reports {first.describe()}; expected STOPPED, zero, counter {last}",
        )
    finally:
        probe.resync()
    await probe.fence()  # (and, on an enrolled suit, authenticates this connection)


@check(
    "auth.wrong-key",
    "An enrolled suit drops a frame whose tag is not under its key: outputs and the last "
    "accepted counter unchanged.",
)
async def auth_wrong_key(probe: Probe) -> None:
    key = _need_key(probe)
    before = await probe.armed_with(_levels(probe, LOW))
    wrong = SuitKey(key.key_id, bytes(b ^ 0x5A for b in key.key))  # same id, another key
    for f in _attack_frames(probe, wrong, probe.last_sent + AHEAD):
        await probe.send_raw(f, "signed under a wrong key: must change nothing")
    await _unchanged(probe, before, "frames signed under a wrong key")


@check(
    "auth.unsigned-refused",
    "An enrolled suit drops unsigned control frames (key id 0), except STOP_ALL.",
)
async def auth_unsigned_refused(probe: Probe) -> None:
    _need_key(probe)
    before = await probe.armed_with(_levels(probe, LOW))
    for f in _attack_frames(probe, None, probe.last_sent + AHEAD):
        await probe.send_raw(f, "unsigned: an enrolled suit must refuse it")
    await _unchanged(probe, before, "unsigned ARM and SET_LEVELS")


@check(
    "auth.replay-across-reconnect",
    "Frames captured from the controller and replayed after a reconnect change nothing.",
)
async def auth_replay_across_reconnect(probe: Probe) -> None:
    start = len(probe.transcript)
    await probe.armed_with(_levels(probe, LOW))
    captured = [
        line.data
        for line in probe.transcript[start:]
        if line.direction == "→" and line.data and line.data[0] & 0x0F in (0x1, 0x5)
    ]  # the ARM and SET_LEVELS just sent (signed, if the suit is enrolled)
    await probe.reset()
    await probe.disconnect()
    await trio.sleep(0.3)
    # the replay comes first on the new connection: no fresh frame has raised the counter
    before = await probe.connect(nursery_for_checks.get(), _payload(probe), authenticate=False)
    for f in captured:
        await probe.send_raw(f, "captured earlier, replayed after a reconnect")
    await _unchanged(probe, before, "replaying captured ARM and SET_LEVELS after a reconnect")


@check(
    "auth.stop-from-anyone",
    "A STOP_ALL on the stop characteristic from an unbonded link, unsigned, is honoured "
    "(and, on an enrolled suit, does not move the counter).",
)
async def auth_stop_from_anyone(probe: Probe) -> None:
    await probe.armed_with(_levels(probe, LOW))
    last = probe.last_sent
    # enrolled: far ahead (it must not move the counter); open: an old one (honoured anyway)
    counter = last + AHEAD if probe.key is not None else 1
    stop = reseal(struct.pack("<BIB", 0x23, counter, 0) + bytes(8))
    m = probe.mark()
    probe.transcript.append(Line(trio.current_time(), "→", stop, "unsigned STOP_ALL on stop"))
    await probe.target.write_stop(stop)
    try:
        stopped = await probe.wait_report(
            lambda r: r.state is SuitState.STOPPED,
            after=m,
            within=NEXT_STATUS_S,
            what="showing STOPPED after an unsigned STOP_ALL on the stop characteristic",
        )
        _fail_unless(not any(stopped.codes), f"STOPPED with outputs on: {stopped.describe()}")
        after = await probe.fence()
        _fail_unless(
            after.counter == probe.last_sent,
            f"an unsigned STOP_ALL moved the counter to {after.counter} (the kit's is "
            f"{probe.last_sent}): anyone could lock the controller out",
        )
    finally:
        probe.resync()


@check(
    "auth.stop-keeps-counter",
    "An unsigned STOP_ALL with a far-future counter on the stop characteristic leaves the "
    "counter alone, open suit or enrolled: the kit's next ARM is still taken.",
)
async def auth_stop_keeps_counter(probe: Probe) -> None:
    await probe.armed_with(_levels(probe, LOW))
    far = probe.last_sent + AHEAD
    stop = reseal(struct.pack("<BIB", 0x23, far, 0) + bytes(8))
    probe.transcript.append(
        Line(trio.current_time(), "→", stop, f"unsigned STOP_ALL on stop, counter {far}")
    )
    await probe.target.write_stop(stop)
    try:
        m = probe.mark()
        c = await probe.arm()
        try:
            await probe.wait_report(
                lambda r: r.state is SuitState.ARMED and r.counter >= c,
                after=m,
                within=NEXT_STATUS_S,
                what=f"showing the kit's ARM {c} taken",
            )
        except CheckFailed as e:
            raise CheckFailed(
                f"after an unsigned STOP_ALL with counter {far} on the stop characteristic "
                f"the kit's ARM {c} was dropped (the suit's counter is now "
                f"{probe.latest.counter}): anyone in range could lock the controller out"
            ) from e
    finally:
        probe.resync()


@check(
    "auth.idle-dropped",
    "A connection that has not authenticated within 2 s is dropped.",
)
async def auth_idle_dropped(probe: Probe) -> None:
    async with probe.target.second_central(False) as phone:
        probe.note("an unbonded phone connects and stays silent")
        await trio.sleep(AUTH_TIMEOUT_S + 0.5)
        _fail_unless(
            not phone.connected,
            f"an unauthenticated phone is still connected {AUTH_TIMEOUT_S + 0.5:g} s later",
        )


@check(
    "auth.one-controller",
    "One controller at a time: while the kit drives the suit, another bonded central's "
    "control frames change nothing.",
)
async def auth_one_controller(probe: Probe) -> None:
    before = await probe.armed_with(_levels(probe, LOW))
    frames = _attack_frames(probe, probe.key, probe.last_sent + AHEAD)
    async with probe.target.second_central(True) as other:
        for f in frames:
            probe.transcript.append(Line(trio.current_time(), "→", f, "from a second central"))
            with contextlib.suppress(LinkError):
                await other.write(CONTROL_UUID, f)
        await trio.sleep(0.1)
    await _unchanged(probe, before, "a second bonded central wrote ARM and SET_LEVELS")


@check(
    "auth.controller-gets-a-slot",
    "With a phone connected first and squatting, the controller still connects and drives.",
)
async def auth_controller_gets_a_slot(probe: Probe) -> None:
    await probe.reset()
    await probe.disconnect()
    async with probe.target.second_central(False) as phone:
        since = trio.current_time()
        if not phone.connected:
            raise CheckSkipped("the suit refused the phone's connection: it cannot squat")
        probe.note("an unbonded phone connected first and stays")
        try:
            await probe.connect(nursery_for_checks.get(), _payload(probe))
        except LinkError as e:
            raise CheckFailed(f"with a phone connected first, the kit cannot connect: {e}") from e
        waited = trio.current_time() - since
        _fail_unless(
            waited < AUTH_TIMEOUT_S,
            f"the kit got a connection only {waited:.1f} s after the phone took the suit "
            f"(its {AUTH_TIMEOUT_S:g} s were up): a suit keeps a slot for its controller",
        )
        await probe.armed_with(_levels(probe, LOW))
    await probe.reset()


@check(
    "auth.enrolled-elsewhere",
    "An enrolled suit refuses ENROLL from another studio (ATT error 0x80) and keeps its key.",
)
async def auth_enrolled_elsewhere(probe: Probe) -> None:
    _need_key(probe)
    await probe.reset()
    await probe.disconnect()
    other = new_suit_key()
    message = encode_enroll(bytes(b ^ 0xFF for b in range(STUDIO_ID_LEN)), other)
    probe.transcript.append(Line(trio.current_time(), "→", message[:18], "ENROLL elsewhere"))
    code = await probe.target.enroll(message)
    await probe.connect(nursery_for_checks.get(), _payload(probe))
    _fail_unless(
        code == Refusal.ENROLLED_ELSEWHERE,
        f"an enrolled suit answered another studio's ENROLL with "
        f"{'success' if code == 0 else f'ATT error {code:#04x}'}, not 0x80 (enrolled elsewhere)",
    )
    await probe.armed_with(_levels(probe, LOW))  # still driven with this studio's key


def _payload(probe: Probe) -> int | None:
    choices = probe.target.att_payload_choices
    return max(choices) if choices else None


#: The order a run follows (the first level check needs the suit as powered on: IDLE).
ORDER = [
    "gatt.advertised",
    "status.at-once",
    "gatt.characteristics",
    "arm.levels-before-arm",
    "status.period",
    "counter.ignored-frames-count",
    "frame.bad-crc",
    "frame.bad-version",
    "frame.bad-type",
    "frame.bad-length",
    "frame.level-out-of-range",
    "frame.unsigned-tag",
    "counter.stale",
    "stop.latch",
    "stop.any-counter",
    "watchdog.fed",
    "watchdog.zeroes",
    "watchdog.timing",
    "program.confirmed",
    "program.mismatch",
    "program.resent",
    "limits.charge",
    "status.split-min",
    "status.split-large",
    "reconnect.safe-state",
    "counter.across-connections",
    "auth.link-encrypted",
    "auth.wrong-key",
    "auth.unsigned-refused",
    "auth.replay-across-reconnect",
    "auth.stop-from-anyone",
    "auth.stop-keeps-counter",
    "auth.idle-dropped",
    "auth.one-controller",
    "auth.controller-gets-a-slot",
    "auth.enrolled-elsewhere",
]
CHECKS.sort(key=lambda c: ORDER.index(c.name))
assert [c.name for c in CHECKS] == ORDER
