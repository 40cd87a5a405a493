"""Moved to `sim.simclass`; kept until every importer moves."""

from sim.simclass import ESTOP_GRACE_S, SimulatedClass

__all__ = ["ESTOP_GRACE_S", "SimulatedClass"]
