"""Fault injection for simulated classes, from a short text a trainer can type.

`--faults "drop:client=2,at=8m,for=5s; detach:client=1,channel=quads,at=10m;
battery:client=3,at=1m,pct=10; latency:client=all,ms=30,jitter=10; loss:client=2,pct=5;
loss:client=all,at=50s,for=0.04s,pct=100; unplug:adapter=sim-hci1,at=5m,for=30s"` (a loss
with `for` ends after that time; `unplug` pulls out one of the controller's simulated
Bluetooth adapters, with `--link ble`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from suit_controller.actions import AFTER_PLAN_MAX_S
from workouts.durations import format_duration, parse_duration

KINDS = {
    "drop": {"client", "at", "for"},
    "detach": {"client", "channel", "at", "for"},
    "battery": {"client", "at", "pct"},
    "latency": {"client", "at", "ms", "jitter"},
    "loss": {"client", "at", "pct", "for"},
    "unplug": {"adapter", "at", "for"},
}


class FaultSpecError(ValueError):
    """A --faults text that cannot be understood; the message says where."""


@dataclass(frozen=True)
class Fault:
    """One fault: what, to which client (None = all), when, with what parameters."""

    kind: str
    client: int | None
    at_s: float = 0.0
    params: dict[str, str] = field(default_factory=dict)

    def seconds(self, key: str, default: float) -> float:
        return parse_duration(self.params[key]) if key in self.params else default

    def number(self, key: str, default: float) -> float:
        return float(self.params[key]) if key in self.params else default


def _when(seconds: float) -> str:
    return format_duration(seconds) if seconds < 1e7 else f"{seconds:g} s"


def parse_faults(
    spec: str, clients: int | None = None, *, class_end_s: float | None = None
) -> list[Fault]:
    """Parse a fault spec; raises FaultSpecError naming the bad part.

    With `clients` (the class size), a fault for a client the class does not have is
    refused too: it would otherwise never happen, and the run would look clean. With
    `class_end_s` (the plan's length), so is a fault after the class, by the rule for
    actions: at most `AFTER_PLAN_MAX_S` after the plan's end (class time counts pauses)."""
    faults = []
    for part in (p.strip() for p in spec.split(";")):
        if not part:
            continue
        kind, _, rest = part.partition(":")
        kind = kind.strip()
        if kind not in KINDS:
            raise FaultSpecError(f"'{part}': unknown fault '{kind}' (use {', '.join(KINDS)})")
        params: dict[str, str] = {}
        for item in (i.strip() for i in rest.split(",") if i.strip()):
            key, eq, value = item.partition("=")
            if not eq or key.strip() not in KINDS[kind]:
                allowed = ", ".join(sorted(KINDS[kind]))
                raise FaultSpecError(f"'{part}': '{item}' is not one of {allowed} as key=value")
            if key.strip() in params:
                raise FaultSpecError(f"'{part}': {key.strip()} is given twice: give each key once")
            params[key.strip()] = value.strip()
        client_text = params.pop("client", "all")
        client: int | None
        if client_text == "all":
            client = None
        else:
            try:
                client = int(client_text)
            except ValueError:
                raise FaultSpecError(f"'{part}': client must be a number or 'all'") from None
            if client < 1:
                raise FaultSpecError(f"'{part}': clients are numbered from 1")
            if clients is not None and client > clients:
                raise FaultSpecError(
                    f"'{part}': the class has {clients} client(s), numbered 1 to {clients}"
                )
        try:
            at = parse_duration(params.pop("at", "0"))
            for key in ("for",):
                if key in params:
                    parse_duration(params[key])
            for key in ("pct", "ms", "jitter"):
                if key in params:
                    float(params[key])
        except ValueError as e:
            raise FaultSpecError(f"'{part}': {e}") from None
        if class_end_s is not None and at > class_end_s + AFTER_PLAN_MAX_S:
            raise FaultSpecError(
                f"'{part}': at {_when(at)} is after the class: it ends at "
                f"{format_duration(class_end_s)}, and a fault may come at most "
                f"{format_duration(AFTER_PLAN_MAX_S)} later (it would never happen)"
            )
        if kind == "detach" and "channel" not in params:
            raise FaultSpecError(f"'{part}': detach needs channel=NAME")
        faults.append(Fault(kind, client, at, params))
    return faults
