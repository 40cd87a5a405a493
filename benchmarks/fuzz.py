"""The long fuzzing run: the properties of tests/test_fuzz.py with 10,000 examples each."""

from __future__ import annotations

import contextlib
import json
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


class _Count:
    def __init__(self) -> None:
        self.passed: list[str] = []
        self.failed: list[str] = []

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when == "call":
            (self.passed if report.passed else self.failed).append(report.nodeid)


def main() -> None:
    count = _Count()
    t = time.perf_counter()
    with contextlib.redirect_stdout(sys.stderr):  # stdout carries only the JSON line
        code = pytest.main(
            [
                str(ROOT / "tests" / "test_fuzz.py"),
                "--hypothesis-profile=long",
                "-q",
                "-p",
                "no:cacheprovider",
                "--no-header",
                "-o",
                "addopts=",
            ],
            plugins=[count],
        )
    print(
        json.dumps(
            {
                "bench": "fuzz",
                "examples_per_property": 10_000,
                "properties": len(count.passed) + len(count.failed),
                "failed": count.failed,
                "wall_s": round(time.perf_counter() - t, 1),
            }
        ),
        flush=True,
    )
    sys.exit(int(code))


if __name__ == "__main__":
    main()
