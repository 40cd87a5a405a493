"""`make mutation`: mutation testing of the safety code with Cosmic Ray.

Theory of operation
-------------------
Every module in `TARGETS` is mutated one change at a time (a number ±1, an
operator or comparison swapped, a condition negated, a loop that never runs,
`True`↔`False`, `and`↔`or`, ...) and its own fast test subset is run against each
mutant; a mutant the tests still pass is a *survivor*: a behaviour no test pins.

Cosmic Ray (not mutmut 3) because mutmut 3 only mutates code inside functions,
and the safety limits here are module-level constants (`FIRST_SESSION_CAP_MA`,
`CHARGE_PER_PHASE_MAX_UC`, `DEVICE_MAX_MA`, ...) and dataclass defaults
(`SitePolicy.first_session_cap_mA`): the mutants that matter most would never be
made. Cosmic Ray mutates the whole module and runs any test command per module.

Cosmic Ray writes each mutant over the file on disk, so everything runs in a copy
of the project under `out/mutation/tree/`: an interrupted run never leaves a
mutant in the working tree. The copy's packages shadow the editable install
(checked before any mutant runs).

A module scores killed / (killed + survived), after removing the mutants listed
as equivalent (with the reason) in `docs/mutation.md`. A run fails when any
module or the total is below `THRESHOLD_PCT`, or when a listed equivalent mutant
no longer exists (the code changed: look at it again).

    python scripts/mutation.py                      # every target
    python scripts/mutation.py channels/limits.py   # one target
    python scripts/mutation.py --survivors channels/limits.py
        # only the last run's survivors again (after writing the tests that kill
        # them); the other results of that run are kept and the score is recomputed
    python scripts/mutation.py --changed-since 8ec5032 sim/firmware.py
        # only the mutants on lines changed since that commit (`git diff`), in any
        # function, `functions=` or not: every changed line's mutants, few of the rest
        # (with --survivors too, to re-run such a run's survivors)
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: MUTATION_OUT=out/mutation-b runs a second set of targets beside the first (its own copy).
OUT = Path(os.environ.get("MUTATION_OUT", ROOT / "out" / "mutation")).resolve()
TREE = OUT / "tree"
EQUIVALENTS_DOC = ROOT / "docs" / "mutation.md"
THRESHOLD_PCT = 90.0
#: A mutant's test run may take this many times the unmutated run (at least MIN_TIMEOUT_S).
TIMEOUT_FACTOR = 5.0
MIN_TIMEOUT_S = 10.0
COPY = ("channels", "workouts", "suit_controller", "sim", "tests", "pyproject.toml")


@dataclass(frozen=True)
class Target:
    """A module (or package) to mutate and the fast tests that must notice."""

    path: str
    tests: tuple[str, ...]
    #: Mutate only these functions (Cosmic Ray's definition names); empty: all.
    functions: tuple[str, ...] = ()


# One line per target. Each test subset runs in seconds: it is run once per mutant.
TARGETS: tuple[Target, ...] = (
    Target("channels/limits.py", ("tests/test_limits.py",)),
    Target("suit_controller/intensity.py", ("tests/test_intensity.py",)),
    Target("workouts/rules.py", ("tests/test_workout_rules.py", "tests/test_workout_loader.py")),
    Target("suit_controller/delivery.py", ("tests/test_delivery.py",)),
    Target(
        "suit_controller/studio/screening.py",
        ("tests/test_screening.py", "tests/test_screening_rules.py"),
    ),
    # protocol v2, sampled: the functions that hold the safety rules (levels floored and
    # bounded, frames authenticated and CRC-checked, the counter only grows, ARM before
    # levels, STOP_ALL always possible); the whole package is 1289 mutants (docs/mutation.md)
    Target(
        "suit_controller/protocol",
        (
            "tests/test_protocol.py",
            "tests/test_connection.py",
            # the sans-I/O tests of a suit that holds another key (`_not_heard`)
            "tests/test_security_key_mismatch.py::"
            "test_a_suit_that_never_counts_our_arm_is_refused_after_a_few_reports",
            "tests/test_security_key_mismatch.py::"
            "test_a_late_status_or_a_signed_frame_only_delayed_is_not_a_mismatch",
            "tests/test_security_key_mismatch.py::"
            "test_an_unsigned_suit_is_refused_after_three_reports_made_once_the_arm_could_arrive",
            "tests/test_security_key_mismatch.py::"
            "test_a_suit_refused_for_another_reason_after_a_reconnect_is_sent_no_stop",
        ),
        functions=(
            "level_code",
            "_open",
            "_counter",
            "stop_frame",
            "receive_data",
            "_not_heard",
            "tick",
            "frames_to_send",
        ),
    ),
    # the simulated suit's side of the same rules: counters, arming, watchdog, clamps, stop
    Target(
        "sim/firmware.py",
        ("tests/test_firmware.py", "tests/test_suit_auth.py"),
        functions=("receive", "receive_stop", "check_watchdog"),
    ),
    # the engine's stop paths
    Target(
        "suit_controller/session.py",
        ("tests/test_stop_paths.py", "tests/test_engine.py", "-k", "stop or exception or cancel"),
        functions=(
            "emergency_stop",
            "latch_estop",
            "_stop_all",
            "_send_stops",
            "_end",
            "_close",
            "run",
            "_zero_outputs",
        ),
    ),
)

#: Operators not run, and why (see docs/mutation.md): swapping an arithmetic
#: operator for a bitwise, shift, power or modulo one on floats is a TypeError or a
#: wildly wrong number that every test notices; they cost a test run each and tell
#: nothing. The arithmetic swaps (+ - * / //) and every comparison swap stay.
EXCLUDED_OPERATORS = re.compile(
    r"core/ReplaceBinaryOperator_\w+_(BitOr|BitAnd|BitXor|LShift|RShift|Pow|Mod)$"
    r"|core/ReplaceBinaryOperator_(BitOr|BitAnd|BitXor|LShift|RShift|Pow|Mod)_\w+$"
)


@dataclass
class Mutant:
    """One mutant's outcome."""

    module: str
    operator: str
    line: int
    definition: str | None
    removed: str
    added: str

    @property
    def key(self) -> tuple[str, str, str, str]:
        return (self.module, self.operator.removeprefix("core/"), self.removed, self.added)

    def describe(self) -> str:
        return (
            f"{self.module}:{self.line} {self.operator.removeprefix('core/')}"
            f" in {self.definition or '<module>'}\n    - {self.removed}\n    + {self.added}"
        )


@dataclass
class Score:
    """A target's tally."""

    target: str
    killed: int = 0
    survived: list[Mutant] = field(default_factory=list)
    equivalent: int = 0
    incompetent: int = 0
    seconds: float = 0.0

    @property
    def total(self) -> int:
        return self.killed + len(self.survived)

    @property
    def pct(self) -> float:
        return 100.0 * self.killed / self.total if self.total else 100.0


def equivalents(doc: Path = EQUIVALENTS_DOC) -> set[tuple[str, str, str, str]]:
    """The excluded mutants of docs/mutation.md's table: module, operator, code before, after.

    A row is ``| module | operator | `before` | `after` | why |``; a `|` in the code is `\\|`.
    """
    out: set[tuple[str, str, str, str]] = set()
    if not doc.exists():
        return out
    row = re.compile(r"^\|\s*`?([\w/.]+\.py)`?\s*\|\s*(\w+)\s*\|\s*`(.*?)`\s*\|\s*`(.*?)`\s*\|")
    for line in doc.read_text(encoding="utf-8").splitlines():
        m = row.match(line)
        if m:
            # a `|` inside a cell is written `\|` (a table would split there)
            before, after = (g.strip().replace("\\|", "|") for g in (m[3], m[4]))
            out.add((m[1], m[2], before, after))
    return out


def _diff_lines(diff: str | None) -> tuple[str, str]:
    removed, added = [], []
    for line in (diff or "").splitlines():
        if line.startswith(("---", "+++")):
            continue
        if line.startswith("-"):
            removed.append(line[1:].strip())
        elif line.startswith("+"):
            added.append(line[1:].strip())
    return " / ".join(removed), " / ".join(added)


def changed_lines(commit: str, path: str) -> dict[str, set[int]]:
    """The lines (of the file as it is now) that `git diff commit` adds or changes in path."""
    diff = subprocess.run(
        ["git", "diff", "-U0", commit, "--", path],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    out: dict[str, set[int]] = {}
    current = ""
    for line in diff.splitlines():
        if line.startswith("+++ "):
            current = line.removeprefix("+++ ").removeprefix("b/")
        m = re.match(r"@@ -\S+ \+(\d+)(?:,(\d+))? @@", line)
        if m and current:
            start, count = int(m[1]), int(m[2] or 1)
            out.setdefault(current, set()).update(range(start, start + count))
    return out


def copy_tree() -> None:
    """A fresh copy of the project for Cosmic Ray to mutate."""
    if TREE.exists():
        shutil.rmtree(TREE)
    TREE.mkdir(parents=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".hypothesis")
    for name in COPY:
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, TREE / name, ignore=ignore)
        else:
            shutil.copy2(src, TREE / name)
    probe = subprocess.run(
        [sys.executable, "-c", "import channels.limits as m; print(m.__file__)"],
        cwd=TREE,
        capture_output=True,
        text=True,
        check=True,
    )
    if not Path(probe.stdout.strip()).resolve().is_relative_to(TREE.resolve()):
        raise SystemExit(f"mutation: the copy does not shadow the install ({probe.stdout.strip()})")


def _test_command(target: Target) -> str:
    # Cosmic Ray splits the command with shlex: quote each argument ("-k", "a or b")
    return shlex.join(
        [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *target.tests]
    )


def run_target(
    target: Target,
    excluded: set[tuple[str, str, str, str]],
    used: set[tuple[str, str, str, str]],
    survivors_only: bool = False,
    changed_since: str | None = None,
) -> Score:
    """Mutate one target in the copy and run its tests against every mutant."""
    from cosmic_ray.commands import execute, init
    from cosmic_ray.config import ConfigDict
    from cosmic_ray.modules import find_modules
    from cosmic_ray.testing import run_tests
    from cosmic_ray.work_db import WorkDB, use_db
    from cosmic_ray.work_item import TestOutcome, WorkerOutcome, WorkResult

    started = time.monotonic()
    score = Score(target.path)
    command = _test_command(target)
    outcome, output = run_tests(command, 600)
    if outcome is not TestOutcome.SURVIVED:
        raise SystemExit(f"mutation: {target.path}: its tests fail without a mutant:\n{output}")
    # a mutant that makes the tests hang (a loop that never ends) is killed by the timeout
    timeout_s = max(MIN_TIMEOUT_S, TIMEOUT_FACTOR * (time.monotonic() - started))
    config = ConfigDict()
    config.update(
        {
            "module-path": target.path,
            "timeout": timeout_s,
            "excluded-modules": [],
            "test-command": command,
            "distributor": ConfigDict({"name": "local"}),
        }
    )
    db_path = OUT / (target.path.replace("/", "_") + ".sqlite")
    if survivors_only:
        if not db_path.exists():
            raise SystemExit(f"mutation: no earlier run of {target.path} in {OUT}")
        import sqlite3

        with sqlite3.connect(db_path) as con:  # forget the survivors' results: run them again
            con.execute("DELETE FROM work_results WHERE test_outcome = 'SURVIVED'")
    else:
        db_path.unlink(missing_ok=True)
    with use_db(str(db_path), WorkDB.Mode.open if survivors_only else WorkDB.Mode.create) as db:
        if not survivors_only:
            init(sorted(find_modules([Path(target.path)])), db, {})
        changed = changed_lines(changed_since, target.path) if changed_since else {}
        for item in [] if survivors_only else db.work_items:
            spec = item.mutations[0]
            if changed_since:  # only the mutants on a changed line, whatever the function
                lines = set(range(spec.start_pos[0], spec.end_pos[0] + 1))
                off = not lines & changed.get(Path(spec.module_path).as_posix(), set())
            else:
                off = bool(target.functions) and spec.definition_name not in target.functions
            skip = EXCLUDED_OPERATORS.match(spec.operator_name) or off
            if skip:
                db.set_result(
                    item.job_id,
                    WorkResult(worker_outcome=WorkerOutcome.SKIPPED, output="not run"),
                )
        pending = db.num_work_items - db.num_results
        print(
            f"{target.path}: {pending} mutants, each against {len(target.tests)} test file(s),"
            f" timeout {timeout_s:.0f} s",
            flush=True,
        )
        execute(db, config)
        for item, result in db.completed_work_items:
            spec = item.mutations[0]
            if result.worker_outcome is WorkerOutcome.SKIPPED:
                continue
            removed, added = _diff_lines(result.diff)
            mutant = Mutant(
                str(spec.module_path),
                spec.operator_name,
                spec.start_pos[0],
                spec.definition_name,
                removed,
                added,
            )
            if result.worker_outcome is not WorkerOutcome.NORMAL:
                score.incompetent += 1  # the mutant could not be made or run
            elif result.test_outcome is TestOutcome.SURVIVED and mutant.key in excluded:
                # only a survivor is excluded: the same line elsewhere may be a kill
                used.add(mutant.key)
                score.equivalent += 1
            elif result.test_outcome is TestOutcome.SURVIVED:
                score.survived.append(mutant)
            elif result.test_outcome is TestOutcome.INCOMPETENT:
                score.incompetent += 1
            else:
                score.killed += 1
    score.seconds = time.monotonic() - started
    print(
        f"{target.path}: killed {score.killed}/{score.total} ({score.pct:.1f} %),"
        f" {score.equivalent} equivalent excluded, {score.incompetent} incompetent,"
        f" {score.seconds:.0f} s",
        flush=True,
    )
    return score


def report(scores: Sequence[Score], stale: Iterable[tuple[str, str, str, str]]) -> bool:
    """Print the scores and survivors; True when every score reaches the threshold."""
    ok = True
    survivors = OUT / "survivors.txt"
    lines: list[str] = []
    print(f"\n{'module':40} {'killed/total':>13} {'score':>7} {'equiv.':>6} {'time':>7}")
    for s in scores:
        ok &= s.pct >= THRESHOLD_PCT
        print(
            f"{s.target:40} {f'{s.killed}/{s.total}':>13} {s.pct:6.1f}% {s.equivalent:6d}"
            f" {s.seconds:6.0f}s"
        )
        lines += [m.describe() for m in s.survived]
    killed = sum(s.killed for s in scores)
    total = sum(s.total for s in scores)
    pct = 100.0 * killed / total if total else 100.0
    ok &= pct >= THRESHOLD_PCT
    print(
        f"{'overall':40} {f'{killed}/{total}':>13} {pct:6.1f}%"
        f" {sum(s.equivalent for s in scores):6d} {sum(s.seconds for s in scores):6.0f}s"
    )
    survivors.write_text("\n".join(lines) + "\n", encoding="utf-8")
    (OUT / "scores.json").write_text(
        json.dumps(
            {
                "modules": {
                    s.target: {"killed": s.killed, "total": s.total, "pct": round(s.pct, 1)}
                    for s in scores
                },
                "overall": {"killed": killed, "total": total, "pct": round(pct, 1)},
            },
            indent=1,
        ),
        encoding="utf-8",
    )
    if lines:
        print(f"\n{len(lines)} survivor(s), also in {survivors.relative_to(ROOT)}:")
        print("\n".join(lines))
    stale = sorted(stale)
    if stale:
        ok = False
        print(f"\n{EQUIVALENTS_DOC.relative_to(ROOT)} lists mutants that no longer exist:")
        for key in stale:
            print("  " + " | ".join(key))
    print(f"\nmutation: {'PASS' if ok else 'FAIL'} (threshold {THRESHOLD_PCT:g} % per module)")
    return ok


def main(argv: Sequence[str]) -> int:
    survivors_only = "--survivors" in argv
    argv = [a for a in argv if a != "--survivors"]
    changed_since = None
    if "--changed-since" in argv:
        at = argv.index("--changed-since")
        if at + 1 >= len(argv):
            print("mutation: --changed-since needs a commit", file=sys.stderr)
            return 2
        changed_since = argv[at + 1]
        argv = argv[:at] + argv[at + 2 :]
    wanted = [a.rstrip("/") for a in argv]
    targets = [t for t in TARGETS if not wanted or t.path in wanted]
    if wanted and len(targets) != len(wanted):
        known = ", ".join(t.path for t in TARGETS)
        print(f"mutation: unknown target among {wanted} (targets: {known})", file=sys.stderr)
        return 2
    OUT.mkdir(parents=True, exist_ok=True)
    copy_tree()
    excluded = equivalents()
    mine = {k for k in excluded if any(k[0].startswith(t.path) for t in targets)}
    os.chdir(TREE)
    used: set[tuple[str, str, str, str]] = set()
    scores = [run_target(t, mine, used, survivors_only, changed_since) for t in targets]
    # a partial run (changed lines only) cannot tell that a listed equivalent is gone
    return 0 if report(scores, set() if changed_since else mine - used) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
