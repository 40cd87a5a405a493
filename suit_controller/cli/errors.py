"""Turning user-caused errors into readable messages and exit codes at the CLI edge."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.markup import escape

from suit_controller.commands import printable
from workouts import Plan, Workout, WorkoutError, compile_workout, load_workout

err_console = Console(stderr=True, soft_wrap=True)

EXIT_INVALID = 1
EXIT_USAGE = 2


def shown(text: str) -> str:
    """A user's text for a rich console: control characters, ANSI escapes, bidi overrides and
    lone surrogates as \\uXXXX, and rich markup (`[red]`) shown as written, never obeyed."""
    return escape(printable(text, limit=4000))


def print_problems(error: WorkoutError) -> None:
    """Print every problem of a workout file, one a line."""
    err_console.print(f"[bold red]{shown(error.source)}[/]: {len(error.problems)} problem(s)")
    for p in error.problems:
        where = f"line {p.line}: " if p.line else ""
        err_console.print(
            f"  [red]error[/] {where}[cyan]{shown(p.path or '(file)')}[/]: {shown(p.message)}",
            highlight=False,
        )
    for p in error.warnings:
        where = f"line {p.line}: " if p.line else ""
        err_console.print(
            f"  [yellow]warning[/] {where}[cyan]{shown(p.path)}[/]: {shown(p.message)}",
            highlight=False,
        )


def open_workout(ref: str) -> tuple[Workout, Plan]:
    """Load and compile a workout or exit: 2 if it cannot be read, 1 if it is invalid."""
    try:
        workout = load_workout(ref if ref.startswith("builtin:") else Path(ref))
    except KeyError as e:
        err_console.print(f"[red]error[/]: {e.args[0]}")
        raise SystemExit(EXIT_USAGE) from None
    except OSError as e:
        err_console.print(f"[red]error[/]: cannot read {ref}: {e.strerror or e}")
        raise SystemExit(EXIT_USAGE) from None
    except WorkoutError as e:
        print_problems(e)
        raise SystemExit(EXIT_INVALID) from None
    return workout, compile_workout(workout)


class FiniteFloatRange(click.FloatRange):
    """click's FloatRange that refuses NaN and infinity by name (NaN compares false with any
    bound, so a plain range lets `--rate nan` through)."""

    name = "finite float range"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        number = click.FLOAT.convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number", param, ctx)
        return super().convert(number, param, ctx)
