"""The built-in workouts shipped as data files, addressed as `builtin:NAME`."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from workouts.loader import load_workout_file, load_workout_text
from workouts.model import Workout

BUILTIN_PREFIX = "builtin:"


def builtin_names() -> list[str]:
    """Names of the built-in workouts (`classic_strength`, …)."""
    files = resources.files("workouts").joinpath("library")
    return sorted(p.name.removesuffix(".yaml") for p in files.iterdir() if p.name.endswith(".yaml"))


def builtin_text(name: str) -> str:
    """The YAML text of a built-in workout (raises KeyError for an unknown name)."""
    if name not in builtin_names():
        raise KeyError(f"no built-in workout '{name}' (have: {', '.join(builtin_names())})")
    return resources.files("workouts").joinpath("library", f"{name}.yaml").read_text("utf-8")


def load_workout(ref: str | Path) -> Workout:
    """Load `builtin:NAME` or a file path. Raises KeyError, OSError or WorkoutError."""
    text = str(ref)
    if text.startswith(BUILTIN_PREFIX):
        name = text.removeprefix(BUILTIN_PREFIX)
        return load_workout_text(builtin_text(name), source=text)
    return load_workout_file(ref)
