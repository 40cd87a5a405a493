"""`suitctl` imports a command's module only when that command runs.

`sim plan` is what a trainer testing a workout waits for: it must not load
the Bluetooth stack or the studio's web server (most of a second each).
"""

from __future__ import annotations

import subprocess
import sys

import click

from suit_controller.cli import suitctl
from suit_controller.cli.main import LAZY_COMMANDS

PROBE = """
import sys, click
from suit_controller.cli import suitctl
suitctl.get_command(click.Context(suitctl), {name!r})
print(",".join(m for m in ("bumble", "hypercorn", "bleak") if m in sys.modules))
"""


def loaded_by(name: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", PROBE.format(name=name)],
        capture_output=True, text=True, check=True, timeout=120,
    )  # fmt: skip
    return {m for m in out.stdout.strip().split(",") if m}


def test_sim_and_workout_do_not_load_the_radio_or_the_web_server() -> None:
    assert loaded_by("sim") == set()
    assert loaded_by("workout") == set()


def test_serve_still_loads_its_web_server() -> None:
    # the probe can see a heavy import: the test above could fail
    assert "hypercorn" in loaded_by("serve")


def test_every_command_is_listed_and_found() -> None:
    ctx = click.Context(suitctl)
    assert set(suitctl.list_commands(ctx)) == set(LAZY_COMMANDS)
    for name in LAZY_COMMANDS:
        command = suitctl.get_command(ctx, name)
        assert isinstance(command, click.Command) and command.name is not None
    suits = suitctl.get_command(ctx, "suits")
    assert isinstance(suits, click.Group)
    assert "enroll" in suits.list_commands(ctx)  # added by a companion module
    assert suitctl.get_command(ctx, "no-such-command") is None
