"""MQTT topics and the broker URL. Pure: no network."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from urllib.parse import parse_qs, unquote, urlsplit

_SEGMENT = re.compile(r"^[A-Za-z0-9_.\-]+$")


class MqttConfigError(ValueError):
    """A broker URL or topic setting that cannot be used."""


@dataclass(frozen=True)
class Topics:
    """Every topic of one room, under `ems/<site>/<room>` by default."""

    prefix: str

    @classmethod
    def for_room(cls, site: str = "studio", room: str = "room-1") -> Topics:
        for name, value in (("site", site), ("room", room)):
            if not _SEGMENT.match(value):
                raise MqttConfigError(f"{name} '{value}' may use letters, digits, '.', '_' and '-'")
        return cls(f"ems/{site}/{room}")

    @property
    def state(self) -> str:
        return f"{self.prefix}/state"

    @property
    def events(self) -> str:
        return f"{self.prefix}/events"

    @property
    def commands(self) -> str:
        return f"{self.prefix}/commands"

    @property
    def commands_from_any(self) -> str:
        """Commands from each tablet on a topic of its own (`…/commands/from/<client id>`)."""
        return f"{self.prefix}/commands/from/+"

    def commands_from(self, client_id: str) -> str:
        return f"{self.prefix}/commands/from/{client_id}"

    @property
    def estop(self) -> str:
        """The e-stop's own topic, read over a connection of its own: nothing queues before it."""
        return f"{self.prefix}/estop"

    @property
    def results(self) -> str:
        return f"{self.prefix}/commands/result"

    @property
    def online(self) -> str:
        return f"{self.prefix}/online"

    def telemetry(self, client: str) -> str:
        safe = re.sub(r"[^A-Za-z0-9_.\-]", "_", client)
        return f"{self.prefix}/clients/{safe}/telemetry"


@dataclass(frozen=True)
class BrokerUrl:
    """`mqtt://[user[:password]@]host[:port]` or `mqtts://…` (TLS).

    User and password may also come from SUITCTL_MQTT_USERNAME and
    SUITCTL_MQTT_PASSWORD; `str()` never shows the password.
    """

    host: str
    port: int
    tls: bool
    username: str | None
    password: str | None = None
    ca_file: str | None = None

    def __str__(self) -> str:
        scheme = "mqtts" if self.tls else "mqtt"
        user = (
            f"{self.username}:***@"
            if self.username and self.password
            else (f"{self.username}@" if self.username else "")
        )
        return f"{scheme}://{user}{self.host}:{self.port}"

    @classmethod
    def parse(cls, url: str) -> BrokerUrl:
        parts = urlsplit(url)
        if parts.scheme not in ("mqtt", "mqtts"):
            raise MqttConfigError(f"broker URL must start with mqtt:// or mqtts://, not {url!r}")
        if not parts.hostname:
            raise MqttConfigError("broker URL has no host")
        tls = parts.scheme == "mqtts"
        try:
            port = parts.port or (8883 if tls else 1883)
        except ValueError:
            raise MqttConfigError("broker URL has a bad port") from None
        username = (
            unquote(parts.username) if parts.username else os.environ.get("SUITCTL_MQTT_USERNAME")
        )
        password = (
            unquote(parts.password) if parts.password else os.environ.get("SUITCTL_MQTT_PASSWORD")
        )
        ca = parse_qs(parts.query).get("ca", [None])[0]
        return cls(parts.hostname, port, tls, username, password, ca)
