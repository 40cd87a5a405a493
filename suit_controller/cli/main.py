"""`suitctl`: the root command group. Subcommands live in their own modules."""

from __future__ import annotations

import click

from suit_controller.cli.workout import workout


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="suit-controller")
def suitctl() -> None:
    """Run whole-body EMS classes: workouts, simulated and real suits."""


suitctl.add_command(workout)


def _register_optional() -> None:
    from suit_controller.cli.clients import clients
    from suit_controller.cli.hardware import class_, suits
    from suit_controller.cli.security import enroll  # noqa: F401  (adds suits' commands)
    from suit_controller.cli.serve import serve, users
    from suit_controller.cli.sim import sim

    suitctl.add_command(sim)
    suitctl.add_command(clients)
    suitctl.add_command(suits)
    suitctl.add_command(class_)
    suitctl.add_command(serve)
    suitctl.add_command(users)


_register_optional()


def main() -> None:
    """Console-script entry point."""
    suitctl(prog_name="suitctl")
