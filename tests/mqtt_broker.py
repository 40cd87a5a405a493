"""A real Mosquitto broker for tests, on a free loopback port, with the shipped ACLs."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MOSQUITTO = shutil.which("mosquitto") or (
    "/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None
)
PASSWD = shutil.which("mosquitto_passwd") or "/usr/bin/mosquitto_passwd"
#: Accounts: a tablet's username carries the room (the shipped ACL's patterns need it);
#: every room's controller logs in as `suitctl`, the only account that may write what a
#: controller publishes (state, online, results).
USERS = {
    "suitctl": "c-secret",
    "room-1": "r1-secret",
    "room-2": "r2-secret",
    "dashboard": "d-secret",
}
#: Who logs in as which account: tablets with the room's, controllers with `suitctl`.
LOGINS = {
    "controller-room-1": "suitctl",
    "tablet-room-1": "room-1",
    "controller-room-2": "suitctl",
    "tablet-room-2": "room-2",
}


def login(who: str) -> tuple[str, str]:
    """(username, password) for a role such as 'tablet-room-1' or an account name."""
    user = LOGINS.get(who, who)
    return user, USERS[user]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Broker:
    """A Mosquitto process; `restart()` stops and starts it on the same port."""

    workdir: Path
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None
    #: keep retained messages and sessions across a restart (the shipped config's persistence,
    #: saved on stop); off unless asked, in a working directory of the test's own
    persistent: bool = False

    def write_config(self) -> Path:
        passwd = self.workdir / "passwd"
        passwd.write_text("")
        for user, password in USERS.items():
            subprocess.run(
                [PASSWD, "-b", str(passwd), user, password], check=True, capture_output=True
            )
        shipped = (ROOT / "deploy" / "mosquitto" / "mosquitto.conf").read_text()
        conf = shipped.replace("listener 1883 127.0.0.1", f"listener {self.port} 127.0.0.1")
        conf = conf.replace("/etc/mosquitto/suit-controller.passwd", str(passwd))
        conf = conf.replace(
            "/etc/mosquitto/suit-controller.acl", str(ROOT / "deploy" / "mosquitto" / "acl")
        )
        assert "\npersistence true\n" in conf  # the shipped config keeps sessions (M3)
        if self.persistent:
            conf += f"persistence_location {self.workdir}/\n"
        else:
            conf = conf.replace("\npersistence true\n", "\npersistence false\n")
        if os.getuid() == 0:  # mosquitto drops root for its own user, who cannot read tmp dirs
            conf += "user root\n"
        path = self.workdir / "mosquitto.conf"
        path.write_text(conf)
        return path

    def start(self) -> None:
        conf = self.workdir / "mosquitto.conf"
        if not conf.exists():
            conf = self.write_config()
        assert MOSQUITTO is not None
        self.proc = subprocess.Popen(
            [MOSQUITTO, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("mosquitto did not start")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
            self.proc = None

    def url(self, user: str | None = "controller-room-1") -> str:
        if user is None:
            return f"mqtt://127.0.0.1:{self.port}"
        name, password = login(user)
        return f"mqtt://{name}:{password}@127.0.0.1:{self.port}"
