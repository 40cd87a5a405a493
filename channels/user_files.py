"""Files a user hands the controller (workouts, actions, a password file): read bounded.

A path can name a device or a pipe that never ends (`/dev/zero`, a fifo) or a file far
larger than any real one; reading it whole would use up the machine's memory before any
check ran (outside review 5, L1). Every such file is read through `read_user_file`,
which reads at most `MAX_USER_FILE_BYTES` + 1 bytes and refuses a larger one with a
clear reason (`UserFileTooBig`), never a traceback.
"""

from __future__ import annotations

from pathlib import Path

#: The largest file a user may hand the controller, bytes (1 MiB). The largest workout
#: in the library is under 2 kB and a designer's longest about 20 kB; an actions file
#: for a 2-hour class with an action every second is about 0.5 MB. 1 MiB keeps all of
#: them with room and bounds the memory and the YAML parse (a few seconds at most).
MAX_USER_FILE_BYTES = 1 << 20


class UserFileTooBig(ValueError):
    """A file larger than `MAX_USER_FILE_BYTES` (or one that never ends): not read."""


def read_user_file(path: str | Path, what: str, limit: int = MAX_USER_FILE_BYTES) -> bytes:
    """The bytes of `path`, read at most `limit` + 1 of them. Raises OSError, UserFileTooBig.

    `what` names the file for the message ("a workout file", "an actions file").
    """
    with Path(path).open("rb") as f:
        data = f.read(limit + 1)
    if len(data) > limit:
        raise UserFileTooBig(
            f"{what} is at most {limit // 1024} kB; this one is larger "
            "(or never ends, like a device or a pipe): not read"
        )
    return data
