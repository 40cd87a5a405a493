"""What keeps ticks on time beside the faces: the set-up frozen out of garbage collection."""

from __future__ import annotations

import gc

from suit_controller.ticks import settled_memory


def test_the_set_up_is_frozen_during_the_class_and_released_after() -> None:
    class Cycle:
        def __init__(self) -> None:
            self.me = self

    before = gc.get_freeze_count()
    kept = Cycle()
    with settled_memory():
        assert gc.get_freeze_count() > before  # a full collection no longer scans `kept`
        assert gc.is_tracked(kept)
    assert gc.get_freeze_count() == 0  # a long-lived program can collect it again
