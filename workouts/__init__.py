"""Workouts: the file format, its validator, the compiler to a `Plan`, the built-in library."""

from workouts.durations import format_duration, parse_duration
from workouts.library import BUILTIN_PREFIX, builtin_names, builtin_text, load_workout
from workouts.loader import load_workout_data, load_workout_file, load_workout_text
from workouts.model import Exercise, Phase, PhaseKind, Problem, Workout, WorkoutError
from workouts.plan import Plan, Segment, Summary, compile_workout
from workouts.schema import json_schema

__all__ = [
    "BUILTIN_PREFIX",
    "Exercise",
    "Phase",
    "PhaseKind",
    "Plan",
    "Problem",
    "Segment",
    "Summary",
    "Workout",
    "WorkoutError",
    "builtin_names",
    "builtin_text",
    "compile_workout",
    "format_duration",
    "json_schema",
    "load_workout",
    "load_workout_data",
    "load_workout_file",
    "load_workout_text",
    "parse_duration",
]
