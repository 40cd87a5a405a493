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
    def room(self) -> str:
        """The room's segment of the prefix (`ems/<site>/<room>`)."""
        return self.prefix.rsplit("/", 1)[-1]

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

    def where_to_send(self) -> str:
        """Where tablets send commands and e-stops, for the operator (one line)."""
        return (
            f"commands on {self.commands_from('<client id>')}, e-stops on {self.estop} "
            "(an empty payload will do: one above the broker's message_size_limit never "
            "arrives, unanswered)"
        )

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

    @property
    def events_replay(self) -> str:
        """Where a consumer asks for a class's events after a seq (docs/mqtt.md)."""
        return f"{self.prefix}/events/replay"

    @property
    def events_replay_result(self) -> str:
        return f"{self.prefix}/events/replay/result"

    def telemetry(self, client_id: str) -> str:
        """A client's telemetry, by its id (a UUID: never a name)."""
        safe = re.sub(r"[^A-Za-z0-9_.\-]", "_", client_id)
        return f"{self.prefix}/clients/{safe}/telemetry"

    @property
    def replies_prefix(self) -> str:
        """Where v5 response topics must be (`…/replies/<client id>`); nothing else is."""
        return f"{self.prefix}/replies"

    @property
    def inputs(self) -> tuple[str, ...]:
        """Every topic filter the controller reads: it never publishes an answer on one."""
        return (
            self.commands,
            self.commands_from_any,
            self.estop,
            self.events_replay,
        )


@dataclass(frozen=True)
class BrokerUrl:
    """`mqtt://[user[:password]@]host[:port]` or `mqtts://…` (TLS).

    User and password may also come from SUITCTL_MQTT_USERNAME and
    SUITCTL_MQTT_PASSWORD; `str()` never shows the password. With TLS,
    `?ca=FILE` names a private CA and `&cert=FILE&key=FILE` a client
    certificate and its key (a broker with `require_certificate true`).
    """

    host: str
    port: int
    tls: bool
    username: str | None
    password: str | None = None
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None

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
        query = parse_qs(parts.query)
        unknown = sorted(set(query) - {"ca", "cert", "key"})
        if unknown:
            raise MqttConfigError(
                f"broker URL: unknown option(s) {', '.join(unknown)} (ca, cert, key)"
            )
        ca, cert, key = (query.get(k, [None])[0] for k in ("ca", "cert", "key"))
        return cls(parts.hostname, port, tls, username, password).with_tls_files(ca, cert, key)

    def with_tls_files(
        self, ca: str | None = None, cert: str | None = None, key: str | None = None
    ) -> BrokerUrl:
        """This URL with a CA file and a client certificate and key (None: keep)."""
        ca, cert, key = ca or self.ca_file, cert or self.cert_file, key or self.key_file
        if (ca or cert or key) and not self.tls:
            raise MqttConfigError("a CA, a client certificate or a key needs mqtts://")
        if key and not cert:
            raise MqttConfigError("a client key needs its certificate (cert)")
        for what, path in (("CA", ca), ("client certificate", cert), ("client key", key)):
            if path is not None and not os.path.isfile(path):
                raise MqttConfigError(f"the {what} file {path} does not exist")
        return BrokerUrl(
            self.host, self.port, self.tls, self.username, self.password, ca, cert, key
        )
