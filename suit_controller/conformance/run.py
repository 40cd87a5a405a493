"""Run the conformance checks over one suit under test and collect their results."""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection
from dataclasses import dataclass
from typing import Literal

import trio

from suit_controller.conformance.checks import CHECKS, Check, nursery_for_checks
from suit_controller.conformance.probe import CheckFailed, CheckSkipped, Probe
from suit_controller.conformance.target import NotOnThisTarget, SuitUnderTest
from suit_controller.links.base import LinkError
from suit_controller.protocol.enrollment import SuitKey

#: No check takes longer than this (host time); one that does has failed.
CHECK_TIMEOUT_S = 20.0
#: The checks that run before the kit connects (a connected suit may stop advertising).
BEFORE_CONNECTING = frozenset({"gatt.advertised"})
#: At most this many transcript lines go with a failure (the last ones).
TRANSCRIPT_LINES = 120

Outcome = Literal["passed", "failed", "skipped"]


@dataclass(frozen=True)
class CheckResult:
    """What one check found: outcome, a message, and the bytes sent and seen if it failed."""

    name: str
    rule: str
    required: bool
    outcome: Outcome
    message: str
    transcript: tuple[str, ...]
    duration_s: float


@dataclass(frozen=True)
class ConformanceRun:
    """The results of one run of the kit against one suit."""

    address: str
    label: str
    started_at: str
    results: tuple[CheckResult, ...]
    #: Why the kit could not connect at all ("" if it could): then no check really ran.
    connect_error: str = ""

    @property
    def passed(self) -> bool:
        """True if every required check held (skipped ones do not count against)."""
        return all(r.outcome != "failed" for r in self.results if r.required)

    def count(self, outcome: Outcome) -> int:
        return sum(r.outcome == outcome for r in self.results)


async def run_conformance(
    target: SuitUnderTest,
    *,
    only: Collection[str] | None = None,
    label: str = "",
    key: SuitKey | None = None,
) -> ConformanceRun:
    """Every check (or those named in `only`) in order, over one freshly powered-on suit.

    `key`: the suit's enrolled key (every frame is then signed with it, and the
    security checks that need it run). Whatever happens, the suit is sent
    STOP_ALL at the end (from a shielded scope).
    """
    started = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    probe = Probe(target, key)
    results: list[CheckResult] = []
    checks = [c for c in CHECKS if only is None or c.name in only]
    async with trio.open_nursery() as nursery:
        token = nursery_for_checks.set(nursery)
        connected = False
        connect_error = ""
        never_connected = ""
        try:
            for chk in checks:
                if chk.name not in BEFORE_CONNECTING and not connected and not connect_error:
                    try:
                        with trio.fail_after(CHECK_TIMEOUT_S):
                            await probe.connect(nursery, _large(target))
                        connected = True
                    except (LinkError, CheckFailed, trio.TooSlowError) as e:
                        why = str(e) or "timed out"
                        connect_error = (
                            f"cannot connect: {why}"
                            if target.address in why
                            else f"cannot connect to {target.address}: {why}"
                        )
                        never_connected = connect_error
                if chk.name not in BEFORE_CONNECTING and connect_error:
                    results.append(
                        CheckResult(
                            chk.name, chk.rule, chk.required, "failed", connect_error, (), 0.0
                        )
                    )
                    continue
                results.append(await _run_one(chk, probe))
                if connected and not probe.alive:
                    try:
                        with trio.fail_after(CHECK_TIMEOUT_S):
                            await probe.connect(nursery, _large(target))
                    except (LinkError, CheckFailed, trio.TooSlowError) as e:
                        connect_error = f"cannot reconnect to {target.address}: {e or 'timed out'}"
        finally:
            nursery_for_checks.reset(token)
            with trio.CancelScope(shield=True):
                if probe.alive:
                    try:
                        with trio.move_on_after(2.0):
                            await probe.stop_all()
                    except LinkError:
                        pass  # the link is gone: the suit's watchdog stops it
                with trio.move_on_after(5.0):
                    await probe.disconnect()
            nursery.cancel_scope.cancel()
    return ConformanceRun(target.address, label, started, tuple(results), never_connected)


def _large(target: SuitUnderTest) -> int | None:
    choices = target.att_payload_choices
    return max(choices) if choices else None


async def _run_one(chk: Check, probe: Probe) -> CheckResult:
    start = trio.current_time()
    first_line = len(probe.transcript)
    first_bad = len(probe.bad_status)
    probe.note(f"check {chk.name}")
    outcome: Outcome = "passed"
    message = ""
    try:
        with trio.fail_after(CHECK_TIMEOUT_S):
            await chk.run(probe)
        unreadable = probe.bad_status[first_bad:]
        if unreadable:
            _, data, why = unreadable[0]
            raise CheckFailed(f"the suit sent a status the kit cannot read: {why} ({data.hex()})")
    except (CheckSkipped, NotOnThisTarget) as e:
        outcome, message = "skipped", str(e)
    except CheckFailed as e:
        outcome, message = "failed", str(e)
    except LinkError as e:
        outcome, message = "failed", f"the link failed: {e}"
    except trio.TooSlowError:
        outcome, message = "failed", f"took more than {CHECK_TIMEOUT_S:g} s"
    lines: tuple[str, ...] = ()
    if outcome == "failed":
        lines = tuple(line.render(start) for line in probe.transcript[first_line:])
        lines = lines[-TRANSCRIPT_LINES:]
    return CheckResult(
        chk.name,
        chk.rule,
        chk.required,
        outcome,
        message,
        lines,
        trio.current_time() - start,
    )
