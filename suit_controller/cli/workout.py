"""`suitctl workout …`: validate, show, list and describe workout files."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from suit_controller.cli.errors import (
    EXIT_INVALID,
    EXIT_USAGE,
    err_console,
    open_workout,
    print_problems,
    shown,
)
from workouts import (
    PhaseKind,
    WorkoutError,
    builtin_names,
    compile_workout,
    format_duration,
    json_schema,
    load_workout,
)

console = Console(soft_wrap=True)


@click.group()
def workout() -> None:
    """Validate, show and list workouts (files or builtin:NAME)."""


@workout.command()
@click.argument("ref", metavar="FILE|builtin:NAME")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of text.")
def validate(ref: str, as_json: bool) -> None:
    """Check a workout. Exit 0 valid (warnings allowed), 1 invalid, 2 unreadable."""
    try:
        w = load_workout(ref if ref.startswith("builtin:") else Path(ref))
    except KeyError as e:
        _fail_read(as_json, str(e.args[0]))
    except OSError as e:
        _fail_read(as_json, f"cannot read {ref}: {e.strerror or e}")
    except WorkoutError as e:
        if as_json:
            print(
                json.dumps(
                    {
                        "valid": False,
                        "errors": [p.as_dict() for p in e.problems],
                        "warnings": [p.as_dict() for p in e.warnings],
                        "summary": None,
                    }
                )
            )
        else:
            print_problems(e)
        sys.exit(EXIT_INVALID)
    summary = compile_workout(w).summary()
    if as_json:
        print(
            json.dumps(
                {
                    "valid": True,
                    "errors": [],
                    "warnings": [p.as_dict() for p in w.warnings],
                    "summary": summary.as_dict(),
                }
            )
        )
        return
    for p in w.warnings:
        where = f"line {p.line}: " if p.line else ""
        err_console.print(
            f"  [yellow]warning[/] {where}[cyan]{shown(p.path)}[/]: {shown(p.message)}",
            highlight=False,
        )
    console.print(
        f"[green]valid[/]: {w.name} — {format_duration(summary.total_s)} in all, "
        f"{format_duration(summary.suit_s)} in the suit, {summary.exercises} exercises, "
        f"{summary.contractions} contractions"
    )


def _fail_read(as_json: bool, message: str) -> None:
    if as_json:
        print(
            json.dumps(
                {
                    "valid": False,
                    "errors": [{"path": "", "line": None, "message": message}],
                    "warnings": [],
                    "summary": None,
                }
            )
        )
    else:
        err_console.print(f"[red]error[/]: {message}")
    sys.exit(EXIT_USAGE)


@workout.command()
@click.argument("ref", metavar="FILE|builtin:NAME")
def show(ref: str) -> None:
    """Print the workout's timeline as a table."""
    w, plan = open_workout(ref)
    table = Table(title=f"{w.name} — {format_duration(plan.total_s)}", show_lines=False)
    for col in ("start", "end", "phase", "exercise", "program", "channels", "cues"):
        table.add_column(col)
    for seg in plan.segments:
        program = ""
        if seg.program is not None:
            p = seg.program
            rhythm = "continuous" if p.continuous else f"{p.impulse_s:g}s on / {p.pause_s:g}s off"
            program = f"{p.frequency_hz:g} Hz, {p.pulse_width_us:g} µs, {rhythm}"
        channels = ", ".join(
            f"{name} {w_:.1f}"
            for name, w_ in zip(plan.layout.names, seg.weights, strict=True)
            if w_ > 0
        )
        name = seg.name if seg.kind is PhaseKind.SUIT else "—"
        table.add_row(
            format_duration(seg.start_s),
            format_duration(seg.end_s),
            seg.kind.value,
            name,
            program,
            channels,
            ", ".join(seg.cues),
        )
    console.print(table)
    s = plan.summary()
    console.print(
        f"{s.exercises} exercises, {s.contractions} contractions, "
        f"{format_duration(s.suit_s)} in the suit"
    )


@workout.command("list")
def list_() -> None:
    """List the built-in workouts."""
    table = Table(title="Built-in workouts")
    table.add_column("name", no_wrap=True)
    for col in ("title", "total", "suit", "exercises", "contractions"):
        table.add_column(col)
    for name in builtin_names():
        try:
            w = load_workout(f"builtin:{name}")
        except WorkoutError as e:  # a broken built-in is a bug, but list the rest
            table.add_row(f"builtin:{name}", f"[red]invalid: {e.problems[0]}[/]", "", "", "", "")
            continue
        s = compile_workout(w).summary()
        table.add_row(
            f"builtin:{name}",
            w.name,
            format_duration(s.total_s),
            format_duration(s.suit_s),
            str(s.exercises),
            str(s.contractions),
        )
    console.print(table)


@workout.command()
def schema() -> None:
    """Print the JSON Schema of the workout file format."""
    print(json.dumps(json_schema(), indent=2))


__all__ = ["EXIT_INVALID", "EXIT_USAGE", "workout"]
