"""Which text a terminal or a page can show as itself: the one rule for every name.

It lives in `channels`, the lowest layer, so that every parser applies the same rule:
the workout loader (`workouts`, which may not import the runtime) as well as the
commands, the studio's records and the CLI (`suit_controller.commands` re-exports it).
"""

from __future__ import annotations

import unicodedata

#: Unicode categories a name may not hold: control (ESC, NUL, BEL), format (bidi overrides
#: such as U+202E, zero-width), lone surrogates, and line/paragraph separators.
UNSHOWABLE_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})


def unshowable(text: str) -> str | None:
    """The first character of `text` a terminal or page could not show as itself, as
    U+XXXX (None when every character is showable): names must not hold one."""
    for c in text:
        if unicodedata.category(c) in UNSHOWABLE_CATEGORIES:
            return f"U+{ord(c):04X}"
    return None


def refuse_unshowable(text: str, what: str = "a name") -> str:
    """`text` unchanged, or ValueError saying which character cannot be in `what`."""
    bad = unshowable(text)
    if bad is not None:
        raise ValueError(
            f"{what} cannot contain control or invisible characters (found {bad}): "
            "type it again with letters, digits and punctuation only"
        )
    return text
