"""The physics and the limits: muscle groups, suit layouts, programs, envelopes, safety."""

from channels.layouts import DEFAULT_LAYOUT, LAYOUTS, Channel, SuitLayout
from channels.limits import (
    CHARGE_PER_PHASE_MAX_UC,
    CURRENT_DENSITY_MAX_MA_CM2,
    DEVICE_MAX_MA,
    channel_cap_mA,
    charge_per_phase_uC,
    current_density_mA_cm2,
    limit_output,
    rms_current_mA,
)
from channels.muscles import (
    ABDOMINAL_GROUPS,
    FORBIDDEN_LOCATIONS,
    ChannelKey,
    LocationError,
    MuscleGroup,
    parse_channel_key,
)
from channels.program import Program, ProgramError

__all__ = [
    "ABDOMINAL_GROUPS",
    "CHARGE_PER_PHASE_MAX_UC",
    "CURRENT_DENSITY_MAX_MA_CM2",
    "DEFAULT_LAYOUT",
    "DEVICE_MAX_MA",
    "FORBIDDEN_LOCATIONS",
    "LAYOUTS",
    "Channel",
    "ChannelKey",
    "LocationError",
    "MuscleGroup",
    "Program",
    "ProgramError",
    "SuitLayout",
    "channel_cap_mA",
    "charge_per_phase_uC",
    "current_density_mA_cm2",
    "limit_output",
    "parse_channel_key",
    "rms_current_mA",
]
