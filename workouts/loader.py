"""Load a workout from YAML and report every problem at once, with path and line.

Three passes, each collecting problems instead of stopping at the first:
YAML parsing (ruamel keeps line numbers), the schema (pydantic, one error per
field), then the whole-workout rules of `workouts.rules`. All errors a user
can cause become one `WorkoutError`.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from channels.muscles import parse_channel_key
from channels.program import Program
from channels.showable import unshowable
from channels.user_files import UserFileTooBig, read_user_file
from workouts.model import Exercise, Phase, PhaseKind, Problem, Workout, WorkoutError
from workouts.rules import workout_problems
from workouts.schema import ExerciseSpec, ProgramSpec, SuitSpec, WorkoutSpec

_PHASE_TAGS = {"warmup", "suit", "stretch"}
_TAGS = _PHASE_TAGS | {"name", "inline"}


def load_workout_file(path: str | Path) -> Workout:
    """Load and validate a workout file. Raises OSError if unreadable, WorkoutError if invalid."""
    p = Path(path)
    try:
        data = read_user_file(p, "a workout file")
    except UserFileTooBig as e:
        raise WorkoutError([Problem("", None, str(e))], str(p)) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise WorkoutError(
            [
                Problem(
                    "",
                    data[: e.start].count(b"\n") + 1,
                    f"not UTF-8 text (byte {e.start} is 0x{data[e.start]:02x}): "
                    "a workout file is YAML saved as UTF-8, is this a binary file?",
                )
            ],
            str(p),
        ) from None
    return load_workout_text(text, source=str(p))


def load_workout_text(text: str, source: str = "workout") -> Workout:
    """Load and validate workout YAML text."""
    yaml = YAML(typ="rt")
    try:
        tree = yaml.load(text)
    except MarkedYAMLError as e:
        mark = e.problem_mark
        line = mark.line + 1 if mark is not None else None
        raise WorkoutError([Problem("", line, f"not valid YAML: {e.problem}")], source) from None
    except (YAMLError, ValueError, TypeError, RecursionError, AttributeError) as e:
        raise WorkoutError([Problem("", None, f"not valid YAML: {e}")], source) from None
    return _validate(tree, source)


def load_workout_data(data: object, source: str = "workout") -> Workout:
    """Validate already-parsed data (no line numbers)."""
    return _validate(data, source)


def _validate(tree: object, source: str) -> Workout:
    try:
        data = _plain(tree)
    except RecursionError:
        raise WorkoutError([Problem("", None, "the file nests too deeply")], source) from None
    except _TooBig:
        why = f"the file expands to more than {MAX_VALUES:,} values (YAML aliases repeated)"
        raise WorkoutError([Problem("", None, why)], source) from None
    if not isinstance(data, dict):
        raise WorkoutError(
            [Problem("", _line(tree, ()), "a workout file must be a mapping (name:, phases:, …)")],
            source,
        )
    programs = data.get("programs")
    names = set(programs) if isinstance(programs, dict) else set()
    problems: list[Problem] = []
    spec: WorkoutSpec | None = None
    try:
        spec = WorkoutSpec.model_validate(data, context={"programs": names})
    except ValidationError as e:
        problems.extend(_pydantic_problems(e, tree, data))
    rule_problems, warnings = workout_problems(data)
    problems.extend(_with_lines(rule_problems, tree))
    found_warnings = _with_lines(warnings, tree)
    if problems or spec is None:
        raise WorkoutError(_dedupe(problems), source, found_warnings)
    return _to_workout(spec, tuple(found_warnings))


#: The most values a workout file may expand to (a YAML alias "bomb" expands to billions).
MAX_VALUES = 100_000


class _TooBig(Exception):
    """The file expands (through YAML aliases) to more values than any workout has."""


def _plain(node: object, budget: list[int] | None = None) -> object:
    """ruamel's round-trip nodes as plain Python values (keys made strings).

    Counts every value it makes: aliases expand, so a small file can stand for
    billions of values; past MAX_VALUES it raises `_TooBig`.
    """
    if budget is None:
        budget = [MAX_VALUES]
    budget[0] -= 1
    if budget[0] < 0:
        raise _TooBig
    if isinstance(node, dict):
        return {_key(k): _plain(v, budget) for k, v in node.items()}
    if isinstance(node, list | tuple):
        return [_plain(v, budget) for v in node]
    if isinstance(node, bool) or node is None:
        return node
    if isinstance(node, int):
        return bool(node) if type(node).__name__ == "ScalarBoolean" else int(node)
    if isinstance(node, float):
        return float(node)
    if isinstance(node, str):
        return str(node)
    return node


def _key(k: object) -> str:
    return k if isinstance(k, str) else str(k)


def _clean_loc(loc: Iterable[int | str]) -> tuple[int | str, ...]:
    out: list[int | str] = []
    for part in loc:
        if part == "[key]":
            continue
        # the union tags pydantic puts in a path: a phase's kind after its index, and
        # `name`/`inline` after `program` (an exercise's own `name` field stays)
        if isinstance(part, str) and part in _TAGS and out and out[-1] != "channels":
            prev = out[-1]
            if (isinstance(prev, int) and part in _PHASE_TAGS) or prev == "program":
                continue
        out.append(part)
    return tuple(out)


def format_path(loc: Iterable[int | str]) -> str:
    """`('phases', 1, 'exercises', 0, 'program')` -> `phases[1].exercises[0].program`."""
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _line(tree: object, loc: tuple[int | str, ...]) -> int | None:
    """1-based line of the deepest node of `loc` that exists in the YAML tree."""
    node, line = tree, None
    if isinstance(node, CommentedMap | CommentedSeq):
        line = node.lc.line + 1
    for part in loc:
        try:
            if isinstance(node, CommentedMap) and part in node:
                line = node.lc.key(part)[0] + 1
                node = node[part]
            elif isinstance(node, CommentedSeq) and isinstance(part, int) and 0 <= part < len(node):
                line = node.lc.item(part)[0] + 1
                node = node[part]
            else:
                break
        except (KeyError, IndexError, TypeError, AttributeError):
            break
    return line


_FRIENDLY = {
    "missing": "required, but missing",
    "string_type": "must be text",
    "float_parsing": "must be a number",
    "float_type": "must be a number",
    "int_parsing": "must be a number (a whole number)",
    "int_type": "must be a number (a whole number)",
    "int_from_float": "must be a whole number",
    "bool_parsing": "must be true or false",
    "bool_type": "must be true or false",
    "dict_type": "must be a mapping (key: value lines)",
    "list_type": "must be a list",
    "model_type": "must be a mapping (key: value lines)",
    "model_attributes_type": "must be a mapping (key: value lines)",
    "finite_number": "must be a finite number",
}


def _message(err: Any, loc: tuple[int | str, ...]) -> str:
    kind = err["type"]
    ctx = err.get("ctx") or {}
    field = loc[-1] if loc else ""
    if kind == "extra_forbidden":
        allowed = _allowed_fields(loc[:-1])
        close = difflib.get_close_matches(str(field), allowed, n=1, cutoff=0.6)
        hint = f" — did you mean '{close[0]}'?" if close else ""
        return f"unknown field '{field}'{hint}"
    if kind in ("greater_than_equal", "less_than_equal", "greater_than", "less_than"):
        words = {
            "greater_than_equal": "at least",
            "less_than_equal": "at most",
            "greater_than": "more than",
            "less_than": "less than",
        }[kind]
        bound = next(iter(ctx.values()))
        return f"must be {words} {bound:g} (got {err['input']!r})"
    if kind == "too_short":
        if field == "exercises":
            return "the suit block is empty: add at least one exercise"
        if field == "channels":
            return "an exercise must name at least one muscle group"
        if field == "phases":
            return "a workout needs at least one phase"
        return "must not be empty"
    if kind == "union_tag_not_found":
        return "kind is missing: it must be one of: warmup, suit, stretch"
    if kind in ("union_tag_invalid", "literal_error"):
        found = ctx.get("tag") if kind == "union_tag_invalid" else err.get("input")
        return f"kind must be one of: warmup, suit, stretch (found {str(found)[:40]!r})"
    if kind in _FRIENDLY:
        return _FRIENDLY[kind]
    return str(err["msg"])


def _allowed_fields(loc: tuple[int | str, ...]) -> list[str]:
    model: Any = WorkoutSpec
    in_program = bool(loc) and loc[-1] == "program"
    if in_program or (len(loc) >= 2 and loc[0] == "programs"):
        model = ProgramSpec
    elif "exercises" in loc:
        model = ExerciseSpec
    elif loc and loc[0] == "phases":
        return sorted(set(SuitSpec.model_fields) | {"duration"})
    return list(model.model_fields)


def _pydantic_problems(e: ValidationError, tree: object, data: object) -> list[Problem]:
    out = []
    for err in e.errors(include_url=False):
        loc = _clean_loc(err["loc"])
        if err["type"] == "union_tag_invalid" or err["type"] == "union_tag_not_found":
            loc = (*loc, "kind")
        message = _message(err, loc)
        if err["type"] == "level_type" and len(loc) >= 2:
            message = f"{_exercise(data, loc[:-2])}, channel {loc[-1]}: {message}"
        out.append(Problem(format_path(loc), _line(tree, loc), message))
    return out


def _exercise(data: object, loc: tuple[int | str, ...]) -> str:
    """`exercise 'Squat'` for the exercise at `loc` (its number when the name is unusable)."""
    node = data
    for part in loc:
        if isinstance(node, dict) and isinstance(part, str):
            node = node.get(part)
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            node = node[part]
        else:
            node = None
    name = node.get("name") if isinstance(node, dict) else None
    if isinstance(name, str) and name and unshowable(name) is None:
        return f"exercise '{name[:60]}'"
    number = loc[-1] if loc and isinstance(loc[-1], int) else None
    return f"exercise {number + 1}" if number is not None else "an exercise"


def _with_lines(problems: list[tuple[tuple[int | str, ...], str]], tree: object) -> list[Problem]:
    return [Problem(format_path(loc), _line(tree, loc), msg) for loc, msg in problems]


def _dedupe(problems: list[Problem]) -> list[Problem]:
    seen: set[Problem] = set()
    out = []
    for p in problems:
        if p not in seen:
            seen.add(p)
            out.append(p)
    return sorted(out, key=lambda p: (p.line or 0, p.path))


def _program(spec: ProgramSpec) -> Program:
    return Program(
        frequency_hz=spec.frequency_hz,
        pulse_width_us=spec.pulse_width_us,
        impulse_s=spec.impulse_s or 0.0,
        pause_s=spec.pause_s,
        ramp_up_s=spec.ramp_up_s,
        ramp_down_s=spec.ramp_down_s,
        continuous=spec.continuous,
    )


def _to_workout(spec: WorkoutSpec, warnings: tuple[Problem, ...]) -> Workout:
    programs = {name: _program(p) for name, p in spec.programs.items()}
    phases = []
    for ph in spec.phases:
        if isinstance(ph, SuitSpec):
            exercises = tuple(
                Exercise(
                    name=ex.name,
                    duration_s=ex.duration,
                    program=programs[ex.program]
                    if isinstance(ex.program, str)
                    else _program(ex.program),
                    program_name=ex.program if isinstance(ex.program, str) else None,
                    channels={parse_channel_key(k): v for k, v in ex.channels.items()},
                    cues=tuple(ex.cues),
                )
                for ex in ph.exercises
            )
            phases.append(
                Phase(
                    PhaseKind.SUIT, sum(e.duration_s for e in exercises), tuple(ph.cues), exercises
                )
            )
        else:
            phases.append(Phase(PhaseKind(ph.kind), ph.duration, tuple(ph.cues)))
    return Workout(spec.name, tuple(phases), programs, spec.description, warnings)
