"""`suitctl`: the root command group. Subcommands live in their own modules.

Each subcommand's module is imported only when that command runs (or when
`--help` lists them): `suitctl sim plan` need not load the studio's web
server, SQLAlchemy or the Bluetooth stack, which took most of a second of
start-up each (`python -X importtime`).
"""

from __future__ import annotations

import importlib
from typing import Any

import click

#: Command name -> "module:attribute"; imported when the command is asked for.
LAZY_COMMANDS: dict[str, str] = {
    "workout": "suit_controller.cli.workout:workout",
    "sim": "suit_controller.cli.sim:sim",
    "clients": "suit_controller.cli.clients:clients",
    "suits": "suit_controller.cli.hardware:suits",
    "class": "suit_controller.cli.hardware:class_",
    "serve": "suit_controller.cli.serve:serve",
    "users": "suit_controller.cli.serve:users",
    "mqtt": "suit_controller.cli.tablets:mqtt",
}

#: Modules that add subcommands to a group defined elsewhere (imported with it).
COMPANION_MODULES: dict[str, tuple[str, ...]] = {
    "suits": ("suit_controller.cli.security",),  # `suits enroll`, `suits keys`
}


class LazyGroup(click.Group):
    """A click group whose subcommands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *LAZY_COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.commands:
            return self.commands[cmd_name]
        target = LAZY_COMMANDS.get(cmd_name)
        if target is None:
            return None
        module_name, _, attribute = target.partition(":")
        command: Any = getattr(importlib.import_module(module_name), attribute)
        for companion in COMPANION_MODULES.get(cmd_name, ()):
            importlib.import_module(companion)
        if not isinstance(command, click.Command):  # pragma: no cover - a wiring mistake
            raise TypeError(f"{target} is not a click command")
        self.add_command(command, cmd_name)
        return command


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="suit-controller")
def suitctl() -> None:
    """Run whole-body EMS classes: workouts, simulated and real suits."""


def main() -> None:
    """Console-script entry point."""
    suitctl(prog_name="suitctl")
