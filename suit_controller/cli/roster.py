"""Moved to `suit_controller.studio.checkin`; kept until every importer moves."""

from suit_controller.studio.checkin import CheckIn, ClassRefused, check_in

__all__ = ["CheckIn", "ClassRefused", "check_in"]
