"""The Ding model's loops over muscles in C (`ding.c`), built on first use, loaded with ctypes.

Theory of operation
-------------------
A class is simulated pulse by pulse (about 60,000 pulses for 35 minutes at
85 Hz) over every client's every channel; with numpy each of the thirty-odd
array operations of a step costs about a microsecond whatever the size of the
arrays, so the loop was bound by numpy's per-call cost, not by arithmetic.
`ding.c` does a whole step (or pulse, or fatigue update) in one call, with the
numpy code's operations in the same order (see its header).

The library is built with the system C compiler (``$CC``, else ``cc``) into
``sim/body/build/`` (or the temporary directory if that is read-only), named
by a hash of its source so an edited source is rebuilt, and atomically
renamed into place so parallel processes (the designer's workers) can build
at once. Without a compiler, or with ``SUIT_BODY_KERNEL=numpy``, the body
model runs on numpy alone: same results, slower.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from functools import cache
from pathlib import Path

SOURCE = Path(__file__).with_name("ding.c")
_SUFFIX = ".dylib" if sys.platform == "darwin" else ".dll" if os.name == "nt" else ".so"
_FLAGS = ["-std=c99", "-O2", "-fPIC", "-shared", "-ffp-contract=off", "-fno-fast-math"]
_FLAGS += ["-Wall", "-Wextra", "-Werror"]


class DingState(ctypes.Structure):
    """`ding_state` of ding.c: the muscles' arrays (float64, contiguous, length n)."""

    _fields_ = [
        ("n", ctypes.c_size_t),
        *(
            (name, ctypes.POINTER(ctypes.c_double))
            for name in ("s", "cn", "force", "a", "km", "tau1", "last_pulse", "f_sum", "r0_minus_1")
        ),
    ]


def _build_dirs() -> list[Path]:
    return [SOURCE.parent / "build", Path(tempfile.gettempdir()) / "suit-controller-body"]


def _build(source: bytes) -> Path | None:
    tag = hashlib.sha256(source + " ".join(_FLAGS).encode()).hexdigest()[:16]
    name = f"libding-{tag}{_SUFFIX}"
    for folder in _build_dirs():
        if (folder / name).is_file():
            return folder / name
    cc = shutil.which(os.environ.get("CC", "cc"))
    if cc is None:
        return None
    for folder in _build_dirs():
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError:
            continue
        target = folder / name
        partial = folder / f"{name}.{os.getpid()}.tmp"
        c_file = folder / f"{name}.{os.getpid()}.c"  # exactly the source that was hashed
        try:
            c_file.write_bytes(source)
        except OSError:
            continue  # not writable: the next folder
        cmd = [cc, *_FLAGS, str(c_file), "-o", str(partial), "-lm"]
        try:
            done = subprocess.run(cmd, capture_output=True, check=False, timeout=60)
        except (OSError, subprocess.TimeoutExpired):
            done = None
        finally:
            c_file.unlink(missing_ok=True)
        if done is None or done.returncode != 0:
            partial.unlink(missing_ok=True)
            return None  # no working compiler, or it refused the source: numpy it is
        os.replace(partial, target)  # atomic: a parallel loader sees the whole file or none
        return target
    return None


@cache
def library() -> ctypes.CDLL | None:
    """The compiled kernel, or None (no compiler, build failed, or SUIT_BODY_KERNEL=numpy)."""
    if os.environ.get("SUIT_BODY_KERNEL", "").lower() == "numpy":
        return None
    try:
        path = _build(SOURCE.read_bytes())
        if path is None:
            return None
        lib = ctypes.CDLL(str(path))
    except OSError:
        return None
    state = ctypes.POINTER(DingState)
    d, i = ctypes.c_double, ctypes.c_int
    lib.ding_step.argtypes = [state, d, d, d, d, d, d, i]
    lib.ding_step.restype = None
    lib.ding_pulse.argtypes = [state, d, ctypes.c_void_p, d]
    lib.ding_pulse.restype = None
    lib.ding_settle.argtypes = [state, *([d] * 10)]
    lib.ding_settle.restype = None
    v, L = ctypes.c_void_p, ctypes.c_long
    lib.ding_run.argtypes = [state, v, v, v, L, L, L, d, L, v, v, v, i, v, v, v, L]
    lib.ding_run.restype = L
    return lib
