"""Simulated clients: each with their own thresholds, tolerance and strength (seeded)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from channels.layouts import SuitLayout
from channels.muscles import MuscleGroup
from channels.program import FloatArray
from sim.body.thresholds import MOTOR_CHRONAXIE_US, PAIN_CHRONAXIE_US, SENSORY_CHRONAXIE_US

#: Relative maximal force of each group (quadriceps = 1, the Ding parameters' muscle).
GROUP_STRENGTH = {
    MuscleGroup.QUADS: 1.0,
    MuscleGroup.GLUTES: 0.9,
    MuscleGroup.HAMSTRINGS: 0.7,
    MuscleGroup.CALVES: 0.5,
    MuscleGroup.ADDUCTORS: 0.5,
    MuscleGroup.ABS: 0.4,
    MuscleGroup.OBLIQUES: 0.3,
    MuscleGroup.LOWER_BACK: 0.5,
    MuscleGroup.UPPER_BACK: 0.5,
    MuscleGroup.LATS: 0.5,
    MuscleGroup.CHEST: 0.45,
    MuscleGroup.SHOULDERS: 0.3,
    MuscleGroup.ARMS: 0.3,
    MuscleGroup.BICEPS: 0.2,
    MuscleGroup.TRICEPS: 0.2,
}


@dataclass(frozen=True)
class Population:
    """Thresholds and strengths for clients × channels (mA at the given chronaxies)."""

    sensory_rheobase_mA: FloatArray
    motor_rheobase_mA: FloatArray
    pain_rheobase_mA: FloatArray
    strength: FloatArray  # force scale, 1 = the reference quadriceps
    tolerance_cr10: FloatArray  # per client: the rating above which they ask for less
    contact: FloatArray  # contact fraction per client and channel (1 = full)

    @property
    def shape(self) -> tuple[int, int]:
        n_clients, n_channels = self.motor_rheobase_mA.shape
        return n_clients, n_channels

    def thresholds_mA(self, pulse_width_us: float) -> tuple[FloatArray, FloatArray, FloatArray]:
        """(sensory, motor, tolerance) thresholds at a pulse width, mA."""
        pw = pulse_width_us
        return (
            self.sensory_rheobase_mA * (1 + SENSORY_CHRONAXIE_US / pw),
            self.motor_rheobase_mA * (1 + MOTOR_CHRONAXIE_US / pw),
            self.pain_rheobase_mA * (1 + PAIN_CHRONAXIE_US / pw),
        )


def make_population(n_clients: int, layout: SuitLayout, seed: int = 0) -> Population:
    """Draw clients: at 350 µs, sensory 3-10 mA, motor 15-30 mA, tolerance 50-120 mA."""
    rng = np.random.default_rng(seed)
    n = len(layout)
    shape = (n_clients, n)
    client_scale = rng.lognormal(0.0, 0.15, size=(n_clients, 1))
    sensory_350 = rng.uniform(3, 10, size=shape)
    motor_350 = rng.uniform(15, 30, size=shape) * client_scale
    tol_350 = np.clip(
        rng.uniform(50, 120, size=(n_clients, 1)) * rng.lognormal(0, 0.1, shape),
        motor_350 * 1.8,
        None,
    )
    group = np.array([GROUP_STRENGTH.get(c.group, 0.5) for c in layout.channels])
    strength = group[None, :] * rng.lognormal(0.0, 0.2, size=(n_clients, 1))
    return Population(
        sensory_rheobase_mA=sensory_350 / (1 + SENSORY_CHRONAXIE_US / 350.0),
        motor_rheobase_mA=motor_350 / (1 + MOTOR_CHRONAXIE_US / 350.0),
        pain_rheobase_mA=tol_350 / (1 + PAIN_CHRONAXIE_US / 350.0),
        strength=strength,
        tolerance_cr10=rng.uniform(7.0, 8.5, size=n_clients),
        contact=np.ones(shape),
    )
