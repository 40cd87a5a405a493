"""`suitctl sim run` as a trainer runs it: actions, faults, the session record."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from channels.user_files import MAX_USER_FILE_BYTES
from sim.faults import FaultSpecError, parse_faults
from suit_controller.actions import ActionsError, load_actions_text
from suit_controller.cli import suitctl
from suit_controller.commands import EmergencyStop, SetIntensity

from .simclass_helpers import SHORT

ACTIONS = """\
- {at: 5s, do: set_intensity, client: 2, channel: quads, mA: 30}
- {at: 6s, do: set_intensity, client: 9, mA: 10}
- {at: 15s, do: estop}
- {at: 20s, do: reset}
- {at: 21s, do: resume}
"""


def sim_run(tmp_path: Path, *extra: str) -> tuple[int, str, dict[str, object] | None]:
    workout = tmp_path / "short.yaml"
    workout.write_text(SHORT)
    out = tmp_path / "out"
    result = CliRunner().invoke(
        suitctl,
        ["sim", "run", str(workout), "--clients", "3", "--virtual", "--out", str(out), *extra],
    )
    rec_path = out / "session.json"
    rec = json.loads(rec_path.read_text()) if rec_path.exists() else None
    return result.exit_code, result.output, rec


def test_sim_run_writes_the_session_record(tmp_path: Path) -> None:
    code, output, rec = sim_run(tmp_path)
    assert code == 0, output
    assert rec is not None and rec["ended"] == "finished"
    quads = rec["clients"][0]["channels"]["quads"]  # type: ignore[index]
    assert set(quads) == {"charge_uC", "stim_s", "max_mA", "contractions", "max_uC_per_phase"}
    assert quads["contractions"] == 5 and quads["max_mA"] == 40.0  # the default intensity
    assert rec["clients"][0]["channels"]["calves"]["stim_s"] == 0  # type: ignore[index]
    kinds = {e["kind"] for e in rec["events"]}  # type: ignore[union-attr]
    assert {"started", "segment", "ended"} <= kinds
    assert "class finished" in output


def test_sim_run_with_actions(tmp_path: Path) -> None:
    actions = tmp_path / "actions.yaml"
    actions.write_text(ACTIONS)
    code, output, rec = sim_run(tmp_path, "--actions", str(actions), "--intensity", "20")
    assert code == 0, output
    assert rec is not None and rec["ended"] == "finished"
    events = rec["events"]
    refused = [e for e in events if e["kind"] == "command_refused"]  # type: ignore[union-attr]
    assert len(refused) == 1 and "no client 9" in refused[0]["message"]
    assert any(e["kind"] == "estop" and e["t"] == 15.0 for e in events)  # type: ignore[union-attr]
    assert rec["clients"][1]["channels"]["quads"]["max_mA"] == 30.0  # type: ignore[index]
    assert rec["clients"][0]["channels"]["quads"]["max_mA"] == 20.0  # type: ignore[index]


def test_an_estop_nobody_resets_ends_a_scripted_class_as_estopped(tmp_path: Path) -> None:
    actions = tmp_path / "actions.yaml"
    actions.write_text("- {at: 15s, do: estop}\n")
    code, _, rec = sim_run(tmp_path, "--actions", str(actions))
    assert code == 0
    assert rec is not None and rec["ended"] == "estopped"


def test_sim_run_with_a_dropped_suit(tmp_path: Path) -> None:
    code, output, rec = sim_run(tmp_path, "--faults", "drop:client=2,at=12s,for=2s")
    assert code == 0, output
    assert rec is not None
    c2 = rec["clients"][1]  # type: ignore[index]
    assert c2["watchdog_trips"] == 1 and c2["link_drops"] == 1 and c2["reconnects"] == 1
    assert rec["clients"][0]["watchdog_trips"] == 0  # type: ignore[index]


@pytest.mark.parametrize(
    ("args", "code", "fragment"),
    [
        (["--actions", "/no/such/file"], 2, "cannot read"),
        (["--faults", "explode:client=1"], 1, "unknown fault"),
        (["--virtual", "--speed", "2"], 2, "exclude each other"),
    ],
)
def test_bad_input_is_a_readable_error(
    tmp_path: Path, args: list[str], code: int, fragment: str
) -> None:
    got, output, _ = sim_run(tmp_path, *args)
    assert got == code
    assert fragment in output
    assert "Traceback" not in output


def test_actions_parsing() -> None:
    actions = load_actions_text(ACTIONS)
    assert [a.at_s for a in actions] == [5, 6, 15, 20, 21]
    assert actions[0].command == SetIntensity(client=2, channel="quads", mA=30)
    assert isinstance(actions[2].command, EmergencyStop)
    with pytest.raises(ActionsError, match=r"\[0\].*'do' must be one of"):
        load_actions_text("- {at: 1s, do: dance}\n- {at: 2s, do: estop}")
    with pytest.raises(ActionsError, match=r"\[0\]: .*mA"):
        load_actions_text("- {at: 1s, do: set_intensity, mA: 500}")
    with pytest.raises(ActionsError, match="not a duration"):
        load_actions_text("- {at: soon, do: estop}")


def test_fault_spec_parsing() -> None:
    faults = parse_faults(
        "drop:client=2,at=8m,for=5s; detach:client=1,channel=quads,at=10m;latency:ms=30,jitter=10"
    )
    assert [(f.kind, f.client, f.at_s) for f in faults] == [
        ("drop", 2, 480),
        ("detach", 1, 600),
        ("latency", None, 0),
    ]
    for bad, why in [
        ("drop:client=x", "client must be"),
        ("detach:client=1", "needs channel"),
        ("loss:pct=5,foo=1", "not one of"),
        ("drop:at=tomorrow", "not a duration"),
    ]:
        with pytest.raises(FaultSpecError, match=why):
            parse_faults(bad)


@pytest.mark.parametrize(("signame", "code"), [("SIGINT", 130), ("SIGTERM", 143)])
def test_a_signal_stops_every_suit_before_exit(tmp_path: Path, signame: str, code: int) -> None:
    import os
    import signal
    import subprocess
    import sys
    import time

    out = tmp_path / "out"
    workout = tmp_path / "short.yaml"
    workout.write_text(SHORT)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "suit_controller",
            "sim",
            "run",
            str(workout),
            "--clients",
            "3",
            "--speed",
            "5",
            "--out",
            str(out),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        # a background job of a non-interactive shell inherits SIGINT ignored: give the
        # controller the disposition a trainer's terminal gives it
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.monotonic() + 60
    assert proc.stdout is not None
    for line in proc.stdout:  # wait until the suit block is running
        if "suit: Squat" in line or time.monotonic() > deadline:
            break
    time.sleep(0.5)
    os.kill(proc.pid, getattr(signal, signame))
    rest, _ = proc.communicate(timeout=60)
    assert proc.returncode == code
    rec = json.loads((out / "session.json").read_text())
    assert rec["ended"] == "interrupted"
    # the duration runs up to the signal (it was recorded as -0.108 s): past the 10 s warm-up
    assert 10.0 < rec["class_s"] < 60.0 and rec["plan_s"] > 10.0
    assert f"class interrupted after {rec['class_s'] / 60:.1f} min" in rest
    for client in rec["clients"]:
        assert client["outputs_zero_at_end"] is True
        assert client["suit_state_at_end"] == "STOPPED"


def test_an_action_after_the_class_is_refused_before_the_class_starts(tmp_path: Path) -> None:
    with pytest.raises(ActionsError, match=r"\[0\]: at 31m41s is after the class"):
        load_actions_text("- {at: 31m41s, do: stop}", class_end_s=100.0)
    assert load_actions_text("- {at: 31m40s, do: stop}", class_end_s=100.0)[0].at_s == 1900.0
    actions = tmp_path / "actions.yaml"
    actions.write_text("- {at: 15s, do: estop}\n- {at: 1e308, do: reset}\n")
    code, output, rec = sim_run(tmp_path, "--actions", str(actions))
    assert code == 1 and rec is None  # nothing ran
    assert "[1]: at 1e+308 s is after the class" in output and "Traceback" not in output


def test_an_estop_nobody_resets_ends_the_class_even_with_actions_still_to_come(
    tmp_path: Path,
) -> None:
    actions = tmp_path / "actions.yaml"
    actions.write_text("- {at: 15s, do: estop}\n- {at: 3m, do: set_intensity, mA: 10}\n")
    code, output, rec = sim_run(tmp_path, "--actions", str(actions))
    assert code == 0, output
    assert rec is not None and rec["ended"] == "estopped"
    ended = [e for e in rec["events"] if e["kind"] == "ended"]  # type: ignore[union-attr]
    # class time (virtual, not a timing): the e-stop at 15 s, a 10 s grace, checked each second
    assert 25.0 <= ended[0]["t"] <= 26.0


def test_a_pause_no_action_resumes_ends_a_scripted_class_as_stopped(tmp_path: Path) -> None:
    actions = tmp_path / "actions.yaml"
    actions.write_text("- {at: 15s, do: pause}\n- {at: 20s, do: set_intensity, mA: 10}\n")
    code, output, rec = sim_run(tmp_path, "--actions", str(actions))
    assert code == 0, output
    assert rec is not None and rec["ended"] == "stopped"
    ended = [e for e in rec["events"] if e["kind"] == "ended"]  # type: ignore[union-attr]
    assert 25.0 <= ended[0]["t"] <= 27.0  # class time: the pause, a 10 s grace, each second


def test_a_pause_a_later_action_resumes_keeps_the_scripted_class(tmp_path: Path) -> None:
    actions = tmp_path / "actions.yaml"
    actions.write_text("- {at: 12s, do: pause}\n- {at: 40s, do: resume}\n")
    code, output, rec = sim_run(tmp_path, "--actions", str(actions))
    assert code == 0, output
    assert rec is not None and rec["ended"] == "finished", output


# Review of issue 12, F9: a fault for a client the class does not have, or a key given
# twice, was accepted silently: the fault never happened and the run looked clean.
@pytest.mark.parametrize(
    ("faults", "why"),
    [
        (
            "drop:client=99999999999999999999,at=1s,for=1s",
            "the class has 3 client(s), numbered 1 to 3",
        ),
        ("drop:client=4,at=1s,for=1s", "the class has 3 client(s), numbered 1 to 3"),
        ("drop:client=2,at=1s,for=1s,for=2s", "for is given twice"),
        ("loss:client=1,pct=5,pct=90", "pct is given twice"),
        ("drop:client=2,client=3,at=1s", "client is given twice"),
    ],
)
def test_sim_run_refuses_a_fault_for_a_missing_client_or_a_repeated_key(
    tmp_path: Path, faults: str, why: str
) -> None:
    code, output, rec = sim_run(tmp_path, "--faults", faults)
    assert code == 1, output
    assert why in " ".join(output.split()), output
    assert "Traceback" not in output
    assert rec is None  # refused before the class starts: nothing ran


def test_a_fault_after_the_class_is_refused_before_the_class_starts(tmp_path: Path) -> None:
    """Review 5, L5: `at=999h` in a short class never happened and nothing said so."""
    code, output, rec = sim_run(tmp_path, "--faults", "drop:client=1,at=999h,for=5s")
    assert code == 1 and rec is None, output
    flat = " ".join(output.split())
    assert "at 59940m is after the class: it ends at" in flat, output
    assert "a fault may come at most 30m later" in flat and "Traceback" not in output
    plan_end = 100.0
    assert parse_faults("drop:client=1,at=31m40s", 1, class_end_s=plan_end)  # 30 min of pauses
    with pytest.raises(FaultSpecError, match="after the class"):
        parse_faults("drop:client=1,at=1901s", 1, class_end_s=plan_end)


@pytest.mark.parametrize("where", ["/dev/zero", "big"])
def test_an_actions_file_too_big_or_endless_is_refused_unread(tmp_path: Path, where: str) -> None:
    """Review 5, L1: `--actions /dev/zero` read the whole device into memory."""
    if where == "big":
        big = tmp_path / "big.yaml"
        big.write_text("- {at: 1s, do: pause}\n" + "#" * MAX_USER_FILE_BYTES + "\n")
        where = str(big)
    code, output, rec = sim_run(tmp_path, "--actions", where)
    assert code == 1 and rec is None, output
    assert "an actions file is at most 1024 kB" in " ".join(output.split()), output
    assert "Traceback" not in output


def test_a_fault_for_the_last_client_is_accepted() -> None:
    (fault,) = parse_faults("drop:client=3,at=1s,for=1s", clients=3)
    assert fault.client == 3
    with pytest.raises(FaultSpecError, match="numbered 1 to 2"):
        parse_faults("drop:client=3,at=1s,for=1s", clients=2)


def test_a_class_that_fails_after_check_in_leaves_no_running_record(tmp_path: Path) -> None:
    """The class is opened in the records at check-in; a set-up error after it (a bad
    `--mqtt` URL) must not leave it `running`, holding its client by the rest-day rule."""
    from sqlalchemy import select

    from suit_controller.studio import schema
    from suit_controller.studio.store import Store

    db = str(tmp_path / "studio.db")
    runner = CliRunner()
    for args in (["clients", "add", "Ana", "--member-id", "A1"], ["clients", "screen", "A1"]):
        extra = ["--by", "Tom", "--none"] if "screen" in args else []
        r = runner.invoke(suitctl, [*args, *extra, "--db", db])
        assert r.exit_code == 0, r.output
    workout = tmp_path / "short.yaml"
    workout.write_text(SHORT)
    run = ["sim", "run", str(workout), "--client", "A1", "--trainer", "Tom", "--virtual"]
    run += ["--db", db]
    r = runner.invoke(
        suitctl,
        [*run, "--mqtt", "ftp://nowhere", "--out", str(tmp_path / "o")],
    )
    assert r.exit_code != 0 and "Traceback" not in r.output, r.output
    assert "mqtt" in r.output.lower(), r.output
    store = Store(db)
    try:
        assert store.sessions_of("A1") == []
        with store.engine.connect() as c:
            assert c.execute(select(schema.classes.c.status)).all() == []
    finally:
        store.close()
    # and the same client can take a class at once
    r = runner.invoke(
        suitctl,
        [*run, "--out", str(tmp_path / "o2")],
    )
    assert r.exit_code == 0, r.output


def test_an_action_with_an_unreadable_key_names_that_key_not_another_field(
    tmp_path: Path,
) -> None:
    """Review 5, L2: a lone surrogate as an extra key was reported against the valid `do`."""
    actions = tmp_path / "odd.yaml"
    actions.write_text('- {at: 1s, do: set_intensity, client: 1, mA: 5, "\\ud800": 1}\n')
    code, out, rec = sim_run(tmp_path, "--actions", str(actions))
    assert code != 0 and rec is None and "Traceback" not in out, out
    assert "is not a field of an action" in out and "'\\ud800'" in out, out
    assert "do:" not in out, out
