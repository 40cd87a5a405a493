"""The simulated body: recruitment, Ding force and fatigue, sensation, contact."""

from sim.body.ding import DingMuscles, DingParameters, fatigue_run, train_peak_force
from sim.body.population import Population, make_population
from sim.body.simulate import BodyResult, simulate_body

__all__ = [
    "BodyResult",
    "DingMuscles",
    "DingParameters",
    "Population",
    "fatigue_run",
    "make_population",
    "simulate_body",
    "train_peak_force",
]
