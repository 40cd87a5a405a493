"""Every kind of class event, with what it means: the one list.

The MQTT event schema's `kind` enum and the table in docs/mqtt.md are made
from `EVENT_KINDS`; a test scans the sources for every kind that is emitted
and fails if one is missing here, and another validates every event
published during a real class against the schema.
"""

from __future__ import annotations

#: kind -> what a gym system should know about it.
EVENT_KINDS: dict[str, str] = {
    "started": "the class started (the trainer's start)",
    "segment": "a new segment of the workout began; data: segment (index), phase",
    "seek": "the plan was moved to another point; data: plan_t (s)",
    "command": "a command was carried out; data: source, command",
    "command_refused": "a command was refused; data: source; the message says why",
    "estop": "EMERGENCY STOP: every output is zero",
    "ended": "the class ended; data: ending (finished, stopped, estopped, interrupted)",
    "limit": "a client's channel was held at its cap (client)",
    "link_up": "a client's suit connected; its intensity ramps up from zero (client)",
    "link_lost": "a client's suit link was lost; the controller retries (client)",
    "suit_safe_state": "a suit stopped itself and is re-armed from zero (client)",
    "suit_refused": "a suit refused the controller; nothing is sent to it (client)",
    "suit_clamped": "a suit's own limit acted: it was asked for more than it allows (client)",
    "suit_key_mismatch": (
        "a suit does not recognise this studio's key (enrolled elsewhere, or reset); "
        "nothing but a stop is sent to it (client)"
    ),
    "controller_late": (
        "the controller read a suit's status late (its clock says so): this computer is "
        "falling behind, the suit is not at fault (client)"
    ),
    "program_unconfirmed": "a suit has not confirmed its program; its client is held at zero",
    "bad_notification": "a suit sent a notification that could not be read (ignored)",
    "client_request": "a client asked for less, e.g. through the hand sensor (client)",
    "slowed_down": (
        "a sped-up simulation slowed down: the computer could not keep up; "
        "data: speed (the new rate); nothing of the plan is skipped"
    ),
    "fault": "a simulated fault was injected (simulations only)",
    "interface_error": "an interface (MQTT, the console, a screen) failed; the class goes on",
    "observer_error": "a tick observer failed; the class goes on",
    "subscriber_error": "an event subscriber failed; the class goes on",
}
