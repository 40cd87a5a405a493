"""Fuzzing: every parser of user or peer input only ever raises the project's own error.

Run quickly in `make test`; `make bench` runs the same properties with the
`long` hypothesis profile (10,000 examples each) through `benchmarks.fuzz`.
"""

import contextlib
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from suit_controller.actions import ActionsError, load_actions_text
from suit_controller.commands import CommandRefused, parse_command
from suit_controller.protocol import RemoteProtocolError, decode_control, decode_status, encode
from suit_controller.protocol import SetLevels as _SetLevels
from workouts import WorkoutError, load_workout_data, load_workout_text

from .workout_files import GOOD

scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12)
keys = st.sampled_from(
    [
        "name",
        "phases",
        "programs",
        "kind",
        "duration",
        "exercises",
        "program",
        "channels",
        "frequency_hz",
        "pulse_width_us",
        "impulse_s",
        "pause_s",
        "ramp_up_s",
        "ramp_down_s",
        "continuous",
        "cues",
        "quads",
        "neck",
        "suit",
        "warmup",
        "stretch",
    ]
) | st.text(max_size=8)
nested = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=5),
    max_leaves=30,
)


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(nested)
def test_arbitrary_nested_data_only_raises_workout_error(data: object) -> None:
    try:
        load_workout_data(data)
    except WorkoutError as e:
        assert e.problems


@given(st.text(max_size=200))
def test_arbitrary_text_only_raises_workout_error(text: str) -> None:
    try:
        load_workout_text(text)
    except WorkoutError as e:
        assert e.problems


@given(st.integers(0, len(GOOD) - 1), st.integers(0, len(GOOD)), st.text(max_size=10))
def test_mutated_good_file_only_raises_workout_error(start: int, length: int, insert: str) -> None:
    text = GOOD[:start] + insert + GOOD[start + length :]
    try:
        load_workout_text(text)
    except WorkoutError as e:
        assert e.problems


@given(st.binary(max_size=64))
def test_fuzz_protocol_decoders(data: bytes) -> None:
    for decode in (decode_control, decode_status):
        with contextlib.suppress(RemoteProtocolError):
            decode(data)


@given(
    st.lists(st.floats(0, 120), min_size=1, max_size=32),
    st.integers(0, 2**32 - 1),
    st.integers(0, 60),
    st.integers(0, 255),
)
def test_fuzz_protocol_corrupted_frames(
    levels: list[float], counter: int, pos: int, value: int
) -> None:
    raw = bytearray(encode(_SetLevels(counter, 0, tuple(levels))))
    raw[pos % len(raw)] = value
    with contextlib.suppress(RemoteProtocolError):
        decode_control(bytes(raw))


command_keys = st.sampled_from(["do", "client", "channel", "mA", "delta_mA", "at"]) | st.text(
    max_size=6
)
command_values = (
    st.sampled_from(
        [
            "start",
            "pause",
            "resume",
            "skip",
            "stop",
            "estop",
            "reset",
            "set_intensity",
            "quads",
            "neck",
        ]
    )
    | st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=8)
    | st.lists(st.integers(), max_size=3)
)


@given(st.dictionaries(command_keys, command_values, max_size=6) | nested)
def test_fuzz_command_parser(data: Any) -> None:
    try:
        parse_command(data)
    except CommandRefused as e:
        assert str(e)


@given(st.text(max_size=200))
def test_fuzz_actions_files(text: str) -> None:
    try:
        load_actions_text(text)
    except ActionsError as e:
        assert str(e)


@given(
    st.binary(max_size=300)
    | st.builds(
        lambda d: __import__("json").dumps(d).encode(),
        st.dictionaries(command_keys, command_values, max_size=6),
    )
)
def test_fuzz_mqtt_command_payloads(payload: bytes) -> None:
    from suit_controller.mqtt.payloads import parse_command_payload

    try:
        parse_command_payload(payload)
    except CommandRefused as e:
        assert str(e)
