"""deploy/: the systemd unit (checked by systemd-analyze) and the container recipe (not built here)."""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import click
import pytest
from ruamel.yaml import YAML

from suit_controller.cli import suitctl

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
UNIT = DEPLOY / "systemd" / "suit-controller@.service"
SUITCTL = Path(sys.executable).parent / "suitctl"


def unit_settings() -> dict[str, str]:
    settings = {}
    for line in UNIT.read_text().splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            key, _, value = line.partition("=")
            settings[key] = value
    return settings


def test_the_systemd_unit_verifies(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed (scripts/system-deps.sh installs systemd)")
    # an instance of the template, with the installed suitctl in place of /opt/…
    unit = tmp_path / "suit-controller@room-1.service"
    unit.write_text(UNIT.read_text().replace("/opt/suit-controller/bin/suitctl", str(SUITCTL)))
    result = subprocess.run(
        [analyze, "verify", "--man=no", str(unit)], capture_output=True, text=True, cwd=tmp_path
    )
    about_unit = [line for line in result.stderr.splitlines() if unit.name in line]
    assert result.returncode == 0 and about_unit == [], result.stderr


def test_the_unit_never_restarts_a_class_and_stops_it_with_sigterm() -> None:
    s = unit_settings()
    assert s["Restart"] == "no" and s["KillSignal"] == "SIGTERM"
    assert s["SuccessExitStatus"] == "143"  # what suitctl exits with after SIGTERM


def test_the_units_command_line_is_one_suitctl_accepts() -> None:
    """ExecStart with the example room file's SUITCTL_CLASS parses as `suitctl class run`."""
    env = {}
    for line in (DEPLOY / "systemd" / "room.env.example").read_text().splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            env[key] = value
    command = unit_settings()["ExecStart"].replace("$SUITCTL_CLASS", env["SUITCTL_CLASS"])
    argv = shlex.split(command.replace("%i", "room-1"))
    assert argv[0] == "/opt/suit-controller/bin/suitctl" and argv[1:3] == ["class", "run"]
    group = suitctl.get_command(click.Context(suitctl), "class")
    assert isinstance(group, click.Group)
    run = group.commands["run"]
    ctx = run.make_context("run", argv[3:])
    assert ctx.params["room"] == "room-1" and ctx.params["trainers"] == ("Tom",)
    assert ctx.params["client_suits"] == ("M-1001=C4:7F:51:00:00:01", "M-1002=C4:7F:51:00:00:02")
    assert ctx.params["mqtt_url"].startswith("mqtt://suitctl:")


def test_the_container_recipe_says_it_is_not_built_here_and_its_files_exist() -> None:
    containerfile = (DEPLOY / "container" / "Containerfile").read_text()
    compose_text = (DEPLOY / "container" / "compose.yaml").read_text()
    for text in (containerfile, compose_text):
        assert text.startswith("# NOT BUILT HERE")
    assert "'/src[postgresql]'" in containerfile
    assert 'postgresql = ["psycopg' in (ROOT / "pyproject.toml").read_text()
    compose = YAML(typ="safe").load(compose_text)
    assert set(compose["services"]) == {"mosquitto", "controller", "studio"}
    assert compose["services"]["controller"]["restart"] == "no"
    studio = compose["services"]["studio"]  # `suitctl serve`, restarted on failure only
    assert studio["restart"] == "on-failure:5" and studio["stop_signal"] == "SIGTERM"
    assert "exec suitctl serve" in studio["entrypoint"][-1]
    assert "/healthz" in " ".join(studio["healthcheck"]["test"])
    assert compose["services"]["controller"]["stop_signal"] == "SIGTERM"
    made_by_you = {"./passwd"}  # the recipe's comment says how
    for service in compose["services"].values():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith(".") and source not in made_by_you:
                assert (DEPLOY / "container" / source).resolve().exists(), source
    build = compose["services"]["controller"]["build"]
    assert (DEPLOY / "container" / build["context"] / build["dockerfile"]).resolve().exists()
