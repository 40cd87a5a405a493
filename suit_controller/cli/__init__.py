"""The `suitctl` command line."""

from suit_controller.cli.main import main, suitctl

__all__ = ["main", "suitctl"]
