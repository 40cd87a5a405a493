"""S6 and the muscle-group vocabulary."""

import pytest

from channels import DEFAULT_LAYOUT, Channel, LocationError, MuscleGroup, parse_channel_key


@pytest.mark.parametrize("name", ["neck", "throat", "groin", "Neck", "neck_left", "groin_right"])
def test_forbidden_locations_are_refused_with_that_reason(name: str) -> None:
    with pytest.raises(LocationError, match="forbidden electrode location"):
        parse_channel_key(name)


def test_unknown_group_suggests_the_nearest() -> None:
    with pytest.raises(LocationError, match="did you mean 'hamstrings'"):
        parse_channel_key("hamstring")


def test_sides() -> None:
    k = parse_channel_key("chest_left")
    assert (k.group, k.side) == (MuscleGroup.CHEST, "left")
    assert str(k) == "chest_left"
    assert DEFAULT_LAYOUT.select(k) == [DEFAULT_LAYOUT.index("chest_left")]
    both = DEFAULT_LAYOUT.select(parse_channel_key("chest"))
    assert sorted(both) == sorted(
        [DEFAULT_LAYOUT.index("chest_left"), DEFAULT_LAYOUT.index("chest_right")]
    )


def test_default_layout_covers_what_the_design_asks() -> None:
    assert len(DEFAULT_LAYOUT) == 12
    groups = {c.group for c in DEFAULT_LAYOUT.channels}
    for g in [
        "quads",
        "hamstrings",
        "glutes",
        "abs",
        "lower_back",
        "upper_back",
        "lats",
        "arms",
        "calves",
        "chest",
    ]:
        assert MuscleGroup(g) in groups
    assert {"chest_left", "chest_right"} <= set(DEFAULT_LAYOUT.names)


def test_a_layout_channel_can_never_sit_on_a_forbidden_location() -> None:
    with pytest.raises(ValueError, match="forbidden"):
        Channel("neck", MuscleGroup.SHOULDERS, None, 50.0, 50.0)
