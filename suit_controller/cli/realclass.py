"""Moved to `suit_controller.realclass`; kept until every importer moves."""

from suit_controller.realclass import RealClass

__all__ = ["RealClass"]
