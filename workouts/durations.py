"""Durations as trainers write them: `90`, `"90s"`, `"6m"`, `"1m30s"`, `"1h"`."""

from __future__ import annotations

import math
import re

# ASCII digits only (no "1_0", no other scripts' digits), each unit at most once, in order
_NUMBER = r"[0-9]+(?:\.[0-9]+)?"
_PLAIN = re.compile(rf"^{_NUMBER}$")
_WHOLE = re.compile(
    rf"^(?:(?P<h>{_NUMBER})\s*h)?\s*(?:(?P<m>{_NUMBER})\s*m)?\s*(?:(?P<s>{_NUMBER})\s*s)?$"
)
_UNIT_S = {"h": 3600.0, "m": 60.0, "s": 1.0}

DURATION_HELP = "use seconds (90) or a text like '90s', '6m' or '1m30s'"


def parse_duration(value: object) -> float:
    """Seconds from a number or a duration text; raises ValueError with a trainer's hint."""
    if isinstance(value, bool):
        raise ValueError(f"not a duration: {DURATION_HELP}")
    if isinstance(value, int | float):
        try:
            seconds = float(value)
        except OverflowError:  # an integer of hundreds of digits
            raise ValueError(f"a duration this long is not a class: {DURATION_HELP}") from None
    elif isinstance(value, str):
        text = value.strip().lower()
        whole = _WHOLE.match(text)
        if _PLAIN.match(text):
            seconds = float(text)
        elif text and whole is not None:
            seconds = sum(float(n) * _UNIT_S[u] for u, n in whole.groupdict().items() if n)
        else:
            raise ValueError(f"'{value}' is not a duration: {DURATION_HELP}")
    else:
        raise ValueError(f"not a duration: {DURATION_HELP}")
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"a duration must be zero or more seconds: {DURATION_HELP}")
    return seconds


def format_duration(seconds: float) -> str:
    """`1m30s`, `6m`, `45s`, `12.5s`."""
    if seconds < 60 or seconds != int(seconds):
        return f"{seconds:g}s" if seconds < 60 else f"{int(seconds // 60)}m{seconds % 60:g}s"
    m, s = divmod(int(seconds), 60)
    return f"{m}m" if s == 0 else f"{m}m{s}s"
