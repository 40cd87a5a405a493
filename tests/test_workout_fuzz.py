"""Property tests: the loader only ever raises the project's validation error."""

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

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
