"""Shared pieces of the benchmarks: percentiles, the output line, instrumented classes."""

from __future__ import annotations

import json
import os
import platform
import resource
import time
from pathlib import Path
from typing import Any

import numpy as np

from workouts import Plan, compile_workout, load_workout_file

HERE = Path(__file__).parent


def plan35() -> Plan:
    """The 35-minute benchmark class."""
    return compile_workout(load_workout_file(HERE / "class35.yaml"))


def percentiles_ms(samples_s: list[float] | np.ndarray, prefix: str = "") -> dict[str, float]:
    """p50, p99, p99.9 and max of samples in seconds, as milliseconds."""
    a = np.asarray(samples_s, dtype=np.float64) * 1000.0
    if a.size == 0:
        return {}
    return {
        f"{prefix}p50_ms": round(float(np.percentile(a, 50)), 4),
        f"{prefix}p99_ms": round(float(np.percentile(a, 99)), 4),
        f"{prefix}p99_9_ms": round(float(np.percentile(a, 99.9)), 4),
        f"{prefix}max_ms": round(float(a.max()), 4),
    }


def cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def emit(bench: str, **fields: Any) -> None:
    """Print one benchmark result as a JSON line."""
    line = {
        "bench": bench,
        **fields,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "date": time.strftime("%Y-%m-%d"),
    }
    print(json.dumps(line), flush=True)
