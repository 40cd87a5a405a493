"""A suit that holds another key than the studio's records (reset, enrolled elsewhere, records
lost or old): the controller notices from its status, tells the trainer what to do, and
sends it nothing more; the suit's outputs stay at zero throughout."""

from __future__ import annotations

import dataclasses
import re
from importlib import resources

import pytest
import trio
import trio.testing

from sim.c_firmware import unavailable_reason
from suit_controller.driver import LATE_TOLD_EVERY_S, LinkState, SuitDriver
from suit_controller.protocol import (
    ControllerConnection,
    ControllerLate,
    Faults,
    PulseProgram,
    StatusReport,
    SuitKeyMismatch,
    SuitState,
    encode_status,
)
from suit_controller.protocol.connection import (
    ARM_ARRIVAL_S,
    KEY_MISMATCH_TEXT,
    NOT_ENROLLED_HERE_TEXT,
    NOT_HEARD_REPORTS,
    ConnectionState,
)
from suit_controller.protocol.enrollment import encode_enroll, new_studio_id, new_suit_key
from suit_controller.records import SessionEvent
from suit_controller.web.words import trainer_message

from .simclass_helpers import short_plan
from .studio_helpers import eventually

#: A version 1 status (tests/test_connection.py).
OLD_VERSION_STATUS = bytes.fromhex("18070001570000051428283200ff0b14f0fe56a3")

needs_c = pytest.mark.skipif(unavailable_reason() is not None, reason=str(unavailable_reason()))


def status(
    counter: int, faults: Faults = Faults.NONE, state: SuitState = SuitState.IDLE, at: float = 0.0
) -> bytes:
    """A status the suit made at `at` s (its clock; read at once unless the test says)."""
    return encode_status(
        StatusReport(
            counter=counter,
            clock_ms=round(at * 1000),
            state=state,
            battery_pct=90,
            faults=faults,
            program=PulseProgram(0, 85, 350),
            first_channel=0,
            levels_mA=(0.0,),
            impedance_ohm=(800.0,),
        )
    )


@pytest.mark.parametrize("signed", [True, False])
def test_a_suit_that_never_counts_our_arm_is_refused_after_a_few_reports(signed: bool) -> None:
    key = new_suit_key()
    conn = (
        ControllerConnection(1, key=key.key, key_id=key.key_id)
        if signed
        else ControllerConnection(1)
    )
    conn.connected()
    conn.receive_data(status(7), 0.0)
    assert conn.frames_to_send(bytes([20]), 0.0)  # ARM (counter 8) and levels
    flag = Faults.BAD_FRAME if signed else Faults.NONE
    # reports made before the ARM could arrive (ARM_ARRIVAL_S) are no evidence
    for t in (0.2, 0.4):
        assert conn.receive_data(status(7, flag, at=t), t) == []
    first = ARM_ARRIVAL_S + 0.1
    for i in range(NOT_HEARD_REPORTS - 1):
        t = first + 0.2 * i
        assert conn.receive_data(status(7, flag, at=t), t) == []
    t = first + 0.2 * (NOT_HEARD_REPORTS - 1)
    events = conn.receive_data(status(7, flag, at=t), t)
    assert events == [SuitKeyMismatch(signed)]
    assert conn.state is ConnectionState.REFUSED and not conn.frames_to_send(bytes([20]), 1.0)
    assert conn.refusal == (KEY_MISMATCH_TEXT if signed else NOT_ENROLLED_HERE_TEXT)
    stop = conn.stop_frame()  # a stop still goes out, unsigned: any suit honours that
    assert stop is not None and stop[0] == 0x23 and stop[5] == 0


def test_a_late_status_or_a_signed_frame_only_delayed_is_not_a_mismatch() -> None:
    key = new_suit_key()
    conn = ControllerConnection(1, key=key.key, key_id=key.key_id)
    conn.connected()
    conn.receive_data(status(7), 0.0)
    conn.frames_to_send(bytes([20]), 0.0)
    for i in range(NOT_HEARD_REPORTS + 2):  # not counted yet, but nothing refused: late
        t = 0.2 * (i + 1)
        assert conn.receive_data(status(7, at=t), t) == []
    # two flagged, then one that counts the ARM: the count starts again
    for i in range(NOT_HEARD_REPORTS - 1):
        t = 2 + 0.2 * i
        assert conn.receive_data(status(7, Faults.BAD_FRAME, at=t), t) == []
    conn.receive_data(status(9, state=SuitState.ARMED, at=3.0), 3.0)
    for i in range(NOT_HEARD_REPORTS - 1):
        t = 4 + 0.2 * i
        assert conn.receive_data(status(9, Faults.BAD_FRAME, SuitState.ARMED, at=t), t) == []
    assert conn.state is ConnectionState.ARMED


def test_an_unsigned_suit_is_refused_after_three_reports_made_once_the_arm_could_arrive() -> None:
    """Status comes at least every 200 ms: three reports made after the ARM could have
    arrived (ARM_ARRIVAL_S) that do not count it (not two) before the suit is refused, so
    a suit only slow to report is not refused. The event is a record that cannot be
    changed after the fact."""
    conn = ControllerConnection(1)
    conn.connected()
    conn.receive_data(status(7), 0.0)
    conn.frames_to_send(bytes([20]), 0.0)  # ARM 8 at 0 s
    t0 = ARM_ARRIVAL_S
    assert conn.receive_data(status(7, at=0.01), 0.01) == []  # made before it could arrive
    assert conn.receive_data(status(7, at=t0), t0) == []
    assert conn.receive_data(status(7, at=t0 + 0.2), t0 + 0.2) == []
    assert conn.state is ConnectionState.ARMED and conn.stop_frame() is not None
    (event,) = conn.receive_data(status(7, at=t0 + 0.4), t0 + 0.4)
    assert event == SuitKeyMismatch(signed=False) and conn.state is ConnectionState.REFUSED
    with pytest.raises(dataclasses.FrozenInstanceError):
        event.signed = True  # type: ignore[misc]


def test_a_suit_refused_for_another_reason_after_a_reconnect_is_sent_no_stop() -> None:
    """Only a suit refused for its key gets the unsigned STOP_ALL; after a reconnect the
    count starts again, so a suit then refused for its protocol version is sent nothing."""
    conn = ControllerConnection(1)
    conn.connected()
    conn.receive_data(status(7), 0.0)
    conn.frames_to_send(bytes([20]), 0.0)
    for i in range(NOT_HEARD_REPORTS):
        t = ARM_ARRIVAL_S + 0.2 * i
        conn.receive_data(status(7, at=t), t)
    assert conn.state is ConnectionState.REFUSED and conn.stop_frame() is not None
    conn.lost()
    conn.connected()
    assert conn.receive_data(OLD_VERSION_STATUS, 2.0) != []
    assert conn.state is ConnectionState.REFUSED and conn.stop_frame() is None


@pytest.mark.parametrize("firmware", ["python", pytest.param("c", marks=needs_c)])
async def test_a_class_on_a_suit_enrolled_elsewhere_tells_the_trainer_the_way_out(
    firmware: str, autojump_clock: trio.testing.MockClock
) -> None:
    from suit_controller.cli.simclass import SimulatedClass

    sc = SimulatedClass(
        short_plan(), 2, intensity_mA=20.0, body=False, authenticated=True, firmware=firmware
    )
    # suit 1 was factory reset and enrolled in another studio since the records were made
    auth = sc.suits[0].firmware.auth
    auth.factory_reset()
    assert auth.handle(encode_enroll(new_studio_id(), new_suit_key())) is None
    assert await sc.run() == "finished"
    events = sc.session.events.events
    told = [e for e in events if e.kind == "suit_key_mismatch"]
    assert len(told) == 1 and told[0].message.startswith("SIM-01: the suit does not accept")
    assert "factory reset" in told[0].message and "suits enroll" in told[0].message  # the CLI
    assert sc.suits[0].firmware.max_seen_mA.max() == 0.0  # never stimulated
    assert sc.suits[1].firmware.max_seen_mA.max() == 20.0  # the other client's class went on
    msg = trainer_message(told[0])
    assert msg is not None and msg.severity == "stop"
    assert "does not recognise this studio" in msg.text
    assert "factory reset" in msg.action and "enroll it again" in msg.action


def test_the_trainer_message_names_the_client() -> None:
    e = SessionEvent(3.0, "suit_key_mismatch", "SIM-02: the suit does not accept …", "Ana")
    msg = trainer_message(e)
    assert msg is not None and msg.text.startswith("Ana's suit does not recognise this studio")


async def test_a_suit_refused_for_its_key_is_shown_refused_not_connected(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """The console's card (the snapshot's `link`) says the suit cannot be used, while the
    other client's suit stays connected."""
    from suit_controller.cli.simclass import SimulatedClass

    sc = SimulatedClass(short_plan(), 2, intensity_mA=20.0, body=False, authenticated=True)
    auth = sc.suits[0].firmware.auth
    auth.factory_reset()
    assert auth.handle(encode_enroll(new_studio_id(), new_suit_key())) is None

    def links() -> list[str]:
        return [c["link"] for c in sc.session.snapshot()["clients"]]

    async with trio.open_nursery() as nursery:
        nursery.start_soon(sc.run)
        await eventually(lambda: links() == ["refused", "connected"])
        assert sc.session.drivers[0].connection.refusal  # the reason the trainer is told
        assert sc.session.snapshot()["clients"][0]["link"] == LinkState.REFUSED.value
        nursery.cancel_scope.cancel()
    assert sc.suits[0].firmware.max_seen_mA.max() == 0.0


def test_the_console_has_a_word_for_every_link_state() -> None:
    """A link state the console's script has no word for would break its cards."""
    script = resources.files("suit_controller.web").joinpath("static/app.js").read_text()
    block = re.search(r"const LINK_WORDS = \{(.*?)\n\};", script, re.S)
    assert block is not None
    worded = set(re.findall(r"^\s*(\w+): \{ icon:", block.group(1), re.M))
    assert {s.value for s in LinkState} <= worded, {s.value for s in LinkState} - worded
    assert re.search(r'refused: \{ icon: "[^"]+", text: "Not usable', block.group(1))


def test_a_late_controller_is_told_as_the_computer_falling_behind_not_the_suit() -> None:
    """Review 5, M1: the driver words `ControllerLate` for the trainer, at most every 30 s."""
    told: list[tuple[str, str]] = []

    class Link:
        address = "SIM-03"

    async def main() -> None:
        driver = SuitDriver(
            Link(),  # type: ignore[arg-type]
            1,
            on_event=lambda kind, message: told.append((kind, message)),
            on_connected=lambda: None,
            on_lost=lambda: None,
        )
        driver._handle([ControllerLate(0.84)])
        await trio.sleep(LATE_TOLD_EVERY_S - 1)
        driver._handle([ControllerLate(2.0)])  # within 30 s: not told again
        await trio.sleep(1)
        driver._handle([ControllerLate(0.6)])
        await trio.sleep(LATE_TOLD_EVERY_S)
        driver._handle([ControllerLate(0.4, sending=True)])

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
    assert [k for k, _ in told] == ["controller_late"] * 3
    assert told[0][1].startswith("SIM-03: the controller read the suit's status 0.8 s after")
    assert "not at fault" in told[1][1] and "0.6 s" in told[1][1]
    assert "the controller sent the suit nothing for 0.4 s, so it stopped by itself" in told[2][1]
    msg = trainer_message(SessionEvent(3.0, "controller_late", told[0][1], "Ana"))
    assert msg is not None and msg.severity == "warning"
    assert msg.text.startswith("This computer is falling behind: it heard Ana's suit late")
    assert "not at fault" in msg.text and "recognise" not in msg.text
    assert "Close other programs" in msg.action
    sending = trainer_message(SessionEvent(9.0, "controller_late", told[2][1], "Ana"))
    assert sending is not None and sending.text == (
        "This computer is falling behind: Ana's suit stopped by itself, sent nothing in time "
        "(the suit is not at fault)"
    )
