"""The suit firmware in portable C (`firmware/`), loaded with ctypes.

Theory of operation
-------------------
`firmware/` is the suit side of suit protocol version 2 as a suit maker would
flash it: C99, no OS, no heap, no floating point. This module builds it into a
shared library (`firmware/build/libems_suit.so`, with the system C compiler,
no sanitizers) and offers it to Python as :class:`CSuitFirmware`, with the
surface of the simulated suit's Python firmware, so a simulated suit, the soak
and the conformance kit can run on the C core itself.

Time: the C core runs on a millisecond clock (the suit's, u32). Seconds from
the caller become ``floor(round(now · 10⁶) / 1000)`` ms, so a watchdog
deadline read back as seconds trips when passed back in. The clock starts at
0 (power on); `now` must lie in [0, 2³² ms).

The hardware interface is played by Python: ``set_channel`` calls record what
each output delivers (charge, time on, peak, contractions, as measured at the
suit), ``notify`` collects status frames, and an optional `verify_tag`
callable fills the authentication hook.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import IntEnum, IntFlag
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from channels.limits import CHARGE_PER_PHASE_MAX_UC, DEVICE_MAX_MA, LEVEL_STEP_MA, WATCHDOG_S
from sim.firmware import ChannelTotals
from suit_controller.protocol import SuitState
from suit_controller.protocol.enrollment import Refusal, SuitKey

#: The C sources (absent from an installed wheel: then the C firmware is unavailable).
FIRMWARE_DIR = Path(__file__).resolve().parent.parent / "firmware"
_SUFFIX = ".dylib" if sys.platform == "darwin" else ".dll" if os.name == "nt" else ".so"
#: Where `make -C firmware lib` (and :func:`build_library`) put the shared library.
LIBRARY = FIRMWARE_DIR / "build" / f"libems_suit{_SUFFIX}"
_SOURCES = ("src/ems_frame.c", "src/ems_suit.c", "src/ems_auth.c")
_HEADER = "include/ems_suit.h"

MAX_CHANNELS = 32
#: The ATT payload protocol version 2 needs (ATT MTU 67).
ATT_PAYLOAD_MIN = 64
#: The smallest payload a status can be split into (one channel a frame).
ATT_PAYLOAD_ONE_CHANNEL = 22
_CLOCK_LIMIT_MS = 1 << 32
#: Contact impedance on the wire: 20 Ω units; 255 = open.
IMPEDANCE_UNIT_OHM = 20.0
IMPEDANCE_OPEN = 255


class FirmwareUnavailable(RuntimeError):
    """The C firmware cannot be built or loaded here (no compiler, no sources)."""


class Reception(IntEnum):
    """What the firmware did with a control frame (`ems_rx_t`)."""

    APPLIED = 0  # valid and fresh: the state table handled it
    IGNORED = 1  # valid and fresh, nothing to do in this state
    STALE = 2  # counter not newer than the last accepted: dropped, no flag
    PROGRAM_MISMATCH = 3  # SET_LEVELS for another program: dropped, flagged
    BAD_LENGTH = 4
    BAD_CRC = 5
    BAD_VERSION = 6
    BAD_TYPE = 7
    BAD_PAYLOAD = 8  # a field out of range
    BAD_TAG = 9  # key id 0 with a non-zero tag
    UNAUTHENTICATED = 10  # the tag hook refused it, or no key is enrolled

    @property
    def corrupt(self) -> bool:
        """True if the frame was dropped as corrupt (and BAD_FRAME raised)."""
        return self >= Reception.BAD_LENGTH


class SuitFault(IntFlag):
    """Fault flags of protocol version 2 status frames (as the C header defines them)."""

    NONE = 0
    WATCHDOG = 0x01
    LOW_BATTERY = 0x02
    ELECTRODE_OPEN = 0x04
    LEVEL_CLAMPED = 0x08
    BAD_FRAME = 0x10
    PROGRAM_MISMATCH = 0x20
    CHARGE_CLAMPED = 0x40


@dataclass(frozen=True)
class ActiveProgram:
    """The pulse program the suit applies (id 0 = its power-on default)."""

    program_id: int
    frequency_hz: int
    pulse_width_us: int


# -- the C structs, mirrored (sizes checked against the library when it loads) ------------------


class _Config(ctypes.Structure):
    _fields_ = [
        ("n_channels", ctypes.c_uint8),
        ("max_level_code", ctypes.c_uint8),
        ("watchdog_ms", ctypes.c_uint16),
        ("charge_limit", ctypes.c_uint32),
        ("att_payload", ctypes.c_uint16),
        ("status_period_ms", ctypes.c_uint16),
        ("default_frequency_hz", ctypes.c_uint8),
        ("default_pulse_width_us", ctypes.c_uint16),
    ]


_SetChannel = ctypes.CFUNCTYPE(
    None, ctypes.c_void_p, ctypes.c_uint8, ctypes.c_uint8, ctypes.c_uint16, ctypes.c_uint8
)
_Notify = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.POINTER(ctypes.c_uint8), ctypes.c_uint16)
_VerifyTag = ctypes.CFUNCTYPE(
    ctypes.c_bool,
    ctypes.c_void_p,
    ctypes.c_uint8,
    ctypes.POINTER(ctypes.c_uint8),
    ctypes.c_uint16,
    ctypes.POINTER(ctypes.c_uint8),
)


if TYPE_CHECKING:
    _Bytes = ctypes._Pointer[ctypes.c_uint8]  # what a callback receives for `const uint8_t *`


class _Hardware(ctypes.Structure):
    _fields_ = [
        ("set_channel", _SetChannel),
        ("notify", _Notify),
        ("verify_tag", _VerifyTag),
        ("ctx", ctypes.c_void_p),
    ]


_Store = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_void_p)


class _Auth(ctypes.Structure):
    _fields_ = [
        ("enrolled", ctypes.c_bool),
        ("key_id", ctypes.c_uint8),
        ("key", ctypes.c_uint8 * 32),
        ("studio_id", ctypes.c_uint8 * 16),
        ("store", _Store),
        ("store_ctx", ctypes.c_void_p),
        ("refused", ctypes.c_uint32),
    ]


class _Control(ctypes.Structure):
    _fields_ = [
        ("type", ctypes.c_uint8),
        ("counter", ctypes.c_uint32),
        ("key_id", ctypes.c_uint8),
        ("program_id", ctypes.c_uint8),
        ("n_levels", ctypes.c_uint8),
        ("levels", ctypes.c_uint8 * MAX_CHANNELS),
        ("frequency_hz", ctypes.c_uint8),
        ("pulse_width_us", ctypes.c_uint16),
        ("tag", ctypes.c_uint8 * 8),
    ]


class _Status(ctypes.Structure):
    _fields_ = [
        ("counter", ctypes.c_uint32),
        ("clock_ms", ctypes.c_uint32),
        ("state", ctypes.c_uint8),
        ("battery_pct", ctypes.c_uint8),
        ("faults", ctypes.c_uint8),
        ("program_id", ctypes.c_uint8),
        ("frequency_hz", ctypes.c_uint8),
        ("pulse_width_us", ctypes.c_uint16),
        ("n_channels", ctypes.c_uint8),
        ("levels", ctypes.c_uint8 * MAX_CHANNELS),
        ("impedance", ctypes.c_uint8 * MAX_CHANNELS),
    ]


# -- building and loading -----------------------------------------------------------------------


def compiler() -> str | None:
    """The system C compiler ($CC, else cc), or None."""
    return shutil.which(os.environ.get("CC", "cc"))


def build_library() -> Path:
    """Build the shared library if it is missing or older than its sources; its path."""
    sources = [FIRMWARE_DIR / s for s in (*_SOURCES, _HEADER)]
    if not all(s.is_file() for s in sources):
        raise FirmwareUnavailable(f"the C firmware's sources are not in {FIRMWARE_DIR}")
    if LIBRARY.is_file() and LIBRARY.stat().st_mtime >= max(s.stat().st_mtime for s in sources):
        return LIBRARY
    cc = compiler()
    if cc is None:
        raise FirmwareUnavailable(
            "no C compiler to build the C firmware (install gcc: scripts/system-deps.sh)"
        )
    LIBRARY.parent.mkdir(parents=True, exist_ok=True)
    partial = LIBRARY.with_name(f"{LIBRARY.name}.{os.getpid()}.tmp")
    cmd = [cc, "-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic", "-O2", "-fPIC"]
    cmd += ["-shared", "-I", str(FIRMWARE_DIR / "include")]
    cmd += [str(FIRMWARE_DIR / s) for s in _SOURCES] + ["-o", str(partial)]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        partial.unlink(missing_ok=True)
        raise FirmwareUnavailable(f"building the C firmware failed:\n{done.stderr.strip()}")
    os.replace(partial, LIBRARY)  # atomic: a parallel loader sees the old or the new one
    return LIBRARY


def _declare(lib: ctypes.CDLL) -> None:
    p, u8, u16, u32 = ctypes.c_void_p, ctypes.c_uint8, ctypes.c_uint16, ctypes.c_uint32
    size_t, b = ctypes.c_size_t, ctypes.c_bool
    pu8, pu16, pu32 = (ctypes.POINTER(t) for t in (u8, u16, u32))
    signatures: dict[str, tuple[object, list[object]]] = {
        "ems_crc16": (u16, [ctypes.c_char_p, size_t]),
        "ems_decode_control": (ctypes.c_int, [ctypes.c_char_p, size_t, ctypes.POINTER(_Control)]),
        "ems_encode_status": (size_t, [ctypes.POINTER(_Status), u8, u16, pu8, size_t, pu8]),
        "ems_config_default": (None, [ctypes.POINTER(_Config), u8]),
        "ems_suit_init": (b, [p, ctypes.POINTER(_Config), ctypes.POINTER(_Hardware), u32]),
        "ems_suit_receive": (ctypes.c_int, [p, ctypes.c_char_p, size_t, u32]),
        "ems_suit_receive_stop": (ctypes.c_int, [p, ctypes.c_char_p, size_t, u32]),
        "ems_suit_refused_frames": (u32, [p]),
        "ems_auth_init": (None, [ctypes.POINTER(_Auth), _Store, p]),
        "ems_auth_handle": (ctypes.c_int, [ctypes.POINTER(_Auth), ctypes.c_char_p, size_t]),
        "ems_auth_factory_reset": (None, [ctypes.POINTER(_Auth)]),
        "ems_auth_sizeof": (size_t, []),
        "ems_hmac_sha256": (None, [ctypes.c_char_p, size_t, ctypes.c_char_p, size_t, pu8]),
        "ems_suit_tick": (b, [p, u32]),
        "ems_suit_watchdog_deadline": (b, [p, pu32]),
        "ems_suit_notifications_enabled": (None, [p, u32]),
        "ems_suit_notifications_disabled": (None, [p]),
        "ems_suit_set_att_payload": (b, [p, u16]),
        "ems_suit_send_status": (u8, [p, u32]),
        "ems_suit_set_contact": (None, [p, u8, u8, u32]),
        "ems_suit_set_battery": (None, [p, u8]),
        "ems_suit_set_watchdog_ms": (b, [p, u16]),
        "ems_suit_state": (ctypes.c_int, [p]),
        "ems_suit_faults": (u8, [p]),
        "ems_suit_level": (u8, [p, u8]),
        "ems_suit_impedance": (u8, [p, u8]),
        "ems_suit_battery": (u8, [p]),
        "ems_suit_program": (None, [p, pu8, pu8, pu16]),
        "ems_suit_last_counter": (u32, [p]),
        "ems_suit_last_feed": (b, [p, pu32]),
        "ems_suit_bad_frames": (u32, [p]),
        "ems_suit_stale_frames": (u32, [p]),
        "ems_suit_mismatched_frames": (u32, [p]),
        "ems_suit_watchdog_trips": (u32, [p]),
        "ems_suit_charge_clamps": (u32, [p]),
        "ems_suit_sizeof": (size_t, []),
        "ems_config_sizeof": (size_t, []),
        "ems_hw_sizeof": (size_t, []),
        "ems_control_sizeof": (size_t, []),
        "ems_status_sizeof": (size_t, []),
    }
    for name, (restype, argtypes) in signatures.items():
        fn = getattr(lib, name)
        fn.restype = restype
        fn.argtypes = argtypes


@cache
def load_library() -> ctypes.CDLL:
    """The C firmware, built if needed; raises FirmwareUnavailable with the reason."""
    try:
        lib = ctypes.CDLL(str(build_library()))
    except OSError as exc:
        raise FirmwareUnavailable(f"cannot load the C firmware: {exc}") from exc
    _declare(lib)
    for struct, size in (
        (_Config, lib.ems_config_sizeof()),
        (_Hardware, lib.ems_hw_sizeof()),
        (_Control, lib.ems_control_sizeof()),
        (_Status, lib.ems_status_sizeof()),
        (_Auth, lib.ems_auth_sizeof()),
    ):
        if ctypes.sizeof(struct) != size:
            raise FirmwareUnavailable(
                f"{struct.__name__} is {ctypes.sizeof(struct)} bytes here, {size} in C: "
                "sim/c_firmware.py no longer mirrors firmware/include/ems_suit.h"
            )
    return lib


def unavailable_reason() -> str | None:
    """Why the C firmware cannot run here, or None if it can."""
    try:
        load_library()
    except FirmwareUnavailable as exc:
        return str(exc)
    return None


# -- the codec, for tests against golden vectors ------------------------------------------------


@dataclass(frozen=True)
class DecodedControl:
    """A control frame as the C codec read it."""

    type: int
    counter: int
    key_id: int
    program_id: int
    levels: tuple[int, ...]  # level codes (0.5 mA)
    frequency_hz: int
    pulse_width_us: int
    tag: bytes


def crc16(data: bytes) -> int:
    """The C firmware's CRC-16/CCITT-FALSE."""
    return int(load_library().ems_crc16(data, len(data)))


def decode_control(data: bytes) -> DecodedControl | Reception:
    """Decode one control frame with the C codec: the frame, or why it is corrupt."""
    out = _Control()
    result = Reception(load_library().ems_decode_control(data, len(data), ctypes.byref(out)))
    if result is not Reception.APPLIED:
        return result
    return DecodedControl(
        out.type,
        out.counter,
        out.key_id,
        out.program_id,
        tuple(out.levels[: out.n_levels]),
        out.frequency_hz,
        out.pulse_width_us,
        bytes(out.tag),
    )


def encode_status(
    *,
    counter: int,
    clock_ms: int,
    state: int,
    battery_pct: int,
    faults: int,
    program: ActiveProgram,
    levels: Sequence[int],
    impedance: Sequence[int],
    first_channel: int = 0,
    att_payload: int = ATT_PAYLOAD_MIN,
) -> list[bytes]:
    """Status frames as the C codec splits a report (levels and impedance as codes).

    `levels` and `impedance` are channels `first_channel` onwards; the frames
    cover exactly those.
    """
    n = first_channel + len(levels)
    if len(levels) != len(impedance) or not levels or first_channel < 0 or n > MAX_CHANNELS:
        raise ValueError(f"a status carries channels 0..{MAX_CHANNELS - 1}, one impedance each")
    st = _Status(counter, clock_ms, state, battery_pct, faults, program.program_id)
    st.frequency_hz, st.pulse_width_us, st.n_channels = (
        program.frequency_hz,
        program.pulse_width_us,
        n,
    )
    st.levels[first_channel:n] = list(levels)
    st.impedance[first_channel:n] = list(impedance)
    return _split(load_library(), st, att_payload, first_channel)


def _split(lib: ctypes.CDLL, st: _Status, att_payload: int, first: int) -> list[bytes]:
    frames: list[bytes] = []
    buf = (ctypes.c_uint8 * (20 + 2 * MAX_CHANNELS))()
    n = ctypes.c_uint8()
    while first < st.n_channels:
        size = lib.ems_encode_status(ctypes.byref(st), first, att_payload, buf, len(buf), n)
        if size == 0:
            raise ValueError(f"an ATT payload of {att_payload} bytes cannot carry a status")
        frames.append(bytes(buf[:size]))
        first += n.value
    return frames


# -- the suit -----------------------------------------------------------------------------------


def _clock_ms(now: float) -> int:
    ms = round(now * 1_000_000) // 1000
    if not 0 <= ms < _CLOCK_LIMIT_MS:
        raise ValueError(f"the suit's clock runs from 0 to 2**32 ms; {now} s is outside it")
    return ms


def _impedance_code(ohm: float | None) -> int:
    if ohm is None:
        return IMPEDANCE_OPEN
    return min(254, max(1, round(ohm / IMPEDANCE_UNIT_OHM)))


class CAuth:
    """The C core's authentication layer (`ems_auth_t`, firmware/src/ems_auth.c).

    The same surface as the Python suit's `SuitAuth`: the enrolled key, the
    enrollment messages, the factory reset. The C suit verifies frames with
    `ems_auth_verify_tag` over this struct; `stored` counts the key storage
    hook's calls (what a real suit writes to flash).
    """

    def __init__(self, lib: ctypes.CDLL, suit: ctypes.Array[ctypes.c_uint64]) -> None:
        self._lib = lib
        self._suit = suit
        self.struct = _Auth()
        self.stored = 0
        self._store = _Store(self._on_store)  # must outlive the struct that points at it
        lib.ems_auth_init(ctypes.byref(self.struct), self._store, None)
        #: Enrollment messages refused, by reason.
        self.refusals: list[Refusal] = []

    def _on_store(self, _ctx: object, _auth: object) -> None:
        self.stored += 1

    @property
    def enrolled(self) -> bool:
        return bool(self.struct.enrolled)

    @property
    def key(self) -> SuitKey | None:
        if not self.struct.enrolled:
            return None
        return SuitKey(int(self.struct.key_id), bytes(self.struct.key))

    @property
    def studio_id(self) -> bytes | None:
        return bytes(self.struct.studio_id) if self.struct.enrolled else None

    @property
    def keys(self) -> dict[int, bytes]:
        key = self.key
        return {} if key is None else {key.key_id: key.key}

    @property
    def refused_frames(self) -> int:
        """Unsigned frames the enrolled suit refused (the C suit counts them)."""
        return int(self._lib.ems_suit_refused_frames(self._suit))

    def handle(self, data: bytes) -> Refusal | None:
        """An enrollment message; None if done, else why it was refused (nothing changed)."""
        code = int(self._lib.ems_auth_handle(ctypes.byref(self.struct), data, len(data)))
        if code == 0:
            return None
        refusal = Refusal(code)
        self.refusals.append(refusal)
        return refusal

    def factory_reset(self) -> None:
        """The suit's reset button: forget the studio and its key."""
        self._lib.ems_auth_factory_reset(ctypes.byref(self.struct))


def hmac_sha256(key: bytes, message: bytes) -> bytes:
    """HMAC-SHA-256 by the C core (for tests against RFC 4231 and Python's hmac)."""
    out = (ctypes.c_uint8 * 32)()
    load_library().ems_hmac_sha256(key, len(key), message, len(message), out)
    return bytes(out)


class CSuitFirmware:
    """The device side of the protocol for one suit, run by the C core.

    A drop-in for the simulated suit's Python firmware: `receive`,
    `check_watchdog`, `status_frames`, `state`, `applied_mA`, `totals`,
    `detach`/`attach`, `set_battery`, `watchdog_deadline`, `watchdog_s`.
    """

    def __init__(
        self,
        n_channels: int = 12,
        *,
        max_mA: float = DEVICE_MAX_MA,
        watchdog_s: float = WATCHDOG_S,
        charge_limit_uC: float = CHARGE_PER_PHASE_MAX_UC,
        contact_ohm: float = 800.0,
        att_payload: int = ATT_PAYLOAD_MIN,
        verify_tag: Callable[[int, bytes, bytes], bool] | None = None,
    ) -> None:
        if not 1 <= n_channels <= MAX_CHANNELS:
            raise ValueError(f"a suit has 1..{MAX_CHANNELS} channels, not {n_channels}")
        self._lib = load_library()
        self.n_channels = n_channels
        cfg = _Config()
        self._lib.ems_config_default(ctypes.byref(cfg), n_channels)
        cfg.max_level_code = int(max_mA / LEVEL_STEP_MA)  # rounds down, never up
        cfg.watchdog_ms = self._watchdog_ms(watchdog_s)
        # Q (µC) = I (mA) · PW (µs) / 1000 = code · PW / 2000
        cfg.charge_limit = int(charge_limit_uC * 1000 / LEVEL_STEP_MA)
        cfg.att_payload = att_payload
        self._now = 0.0
        self.applied_mA = np.zeros(n_channels)
        self.frequency_hz = np.zeros(n_channels)
        self.pulse_width_us = np.zeros(n_channels)
        self.charge_uC = np.zeros(n_channels)
        self.stim_s = np.zeros(n_channels)
        self.max_seen_mA = np.zeros(n_channels)
        #: the highest charge of one phase each output applied, at its active pulse width, µC
        self.max_uC_per_phase = np.zeros(n_channels)
        self.contractions = np.zeros(n_channels, dtype=np.int64)
        self._since = 0.0
        self._outbox: list[bytes] = []
        self.notifications: list[bytes] = []
        self._verify = verify_tag
        self._clamps_seen = 0
        size = self._lib.ems_suit_sizeof()
        self._suit = (ctypes.c_uint64 * ((size + 7) // 8))()  # 8-byte aligned storage
        #: The C core's authentication layer: its key, checked by `ems_auth_verify_tag`
        #: (unless a `verify_tag` callable stands in for it, as the hook's own tests do).
        self.auth = CAuth(self._lib, self._suit)
        # the callbacks must outlive the C struct that points at them
        self._callbacks = (
            _SetChannel(self._on_set_channel),
            _Notify(self._on_notify),
            _VerifyTag(self._on_verify_tag)
            if verify_tag is not None
            else ctypes.cast(self._lib.ems_auth_verify_tag, _VerifyTag),
        )
        ctx = None if verify_tag is not None else ctypes.addressof(self.auth.struct)
        hw = _Hardware(*self._callbacks, ctx)
        if not self._lib.ems_suit_init(self._suit, ctypes.byref(cfg), ctypes.byref(hw), 0):
            raise ValueError(
                f"the C firmware refused this suit: {n_channels} channels, "
                f"max {max_mA} mA, watchdog {watchdog_s} s, ATT payload {att_payload}"
            )
        for ch in range(n_channels):
            self._lib.ems_suit_set_contact(self._suit, ch, _impedance_code(contact_ohm), 0)

    @staticmethod
    def _watchdog_ms(watchdog_s: float) -> int:
        ms = round(watchdog_s * 1000)
        if not 1 <= ms <= 0xFFFF:
            raise ValueError(f"the C firmware's watchdog runs 1..65535 ms, not {watchdog_s} s")
        return ms

    # -- the hardware, played by Python ---------------------------------------------------------
    def _on_set_channel(self, _ctx: object, ch: int, code: int, us: int, hz: int) -> None:
        self._account(self._now)
        mA = code * LEVEL_STEP_MA
        if mA > 0 and self.applied_mA[ch] <= 0:
            self.contractions[ch] += 1
        self.applied_mA[ch] = mA
        self.max_seen_mA[ch] = max(self.max_seen_mA[ch], mA)
        self.pulse_width_us[ch] = us
        self.frequency_hz[ch] = hz
        self.max_uC_per_phase[ch] = max(self.max_uC_per_phase[ch], mA * us / 1000.0)

    def _on_notify(self, _ctx: object, frame: _Bytes, length: int) -> None:
        self._outbox.append(ctypes.string_at(frame, length))

    def _on_verify_tag(
        self, _ctx: object, key_id: int, signed: _Bytes, length: int, tag: _Bytes
    ) -> bool:
        if self._verify is None:  # not registered with C then; kept for the type checker
            return False
        message = ctypes.string_at(signed, length)
        return bool(self._verify(key_id, message, ctypes.string_at(tag, 8)))

    def _account(self, now: float) -> None:
        dt = now - self._since
        if dt > 0:
            self.stim_s += (self.applied_mA > 0) * dt
            self.charge_uC += (
                self.applied_mA * self.pulse_width_us / 1000.0 * self.frequency_hz * dt
            )
        self._since = max(self._since, now)

    def _at(self, now: float) -> int:
        self._now = now
        return _clock_ms(now)

    def _collect(self) -> list[bytes]:
        frames, self._outbox = self._outbox, []
        return frames

    # -- frames and time ------------------------------------------------------------------------
    def receive(self, data: bytes, now: float) -> Reception:
        """Handle one control frame's bytes (a write to the control characteristic)."""
        self.check_watchdog(now)
        result = Reception(self._lib.ems_suit_receive(self._suit, data, len(data), self._at(now)))
        self.notifications += self._collect()
        return result

    def receive_stop(self, data: bytes, now: float) -> bool:
        """Bytes written to the stop characteristic: only a well-formed STOP_ALL acts
        (whatever its counter, key id and tag; `ems_suit_receive_stop`)."""
        self.check_watchdog(now)
        result = self._lib.ems_suit_receive_stop(self._suit, data, len(data), self._at(now))
        self.notifications += self._collect()
        return Reception(result) is Reception.APPLIED

    def check_watchdog(self, now: float) -> bool:
        """Trip the watchdog if its time is up (at its deadline); True if it tripped now."""
        deadline = self.watchdog_deadline
        if deadline is None or now < deadline:
            return False
        tripped = bool(self._lib.ems_suit_tick(self._suit, self._at(deadline)))
        self.notifications += self._collect()
        return tripped

    def tick(self, now: float) -> None:
        """Run the suit's clock: the watchdog, and the periodic status when notifying."""
        self.check_watchdog(now)
        self._lib.ems_suit_tick(self._suit, self._at(now))
        self.notifications += self._collect()

    @property
    def watchdog_deadline(self) -> float | None:
        """When the watchdog trips if no frame feeds it (None when it cannot trip)."""
        ms = ctypes.c_uint32()
        if not self._lib.ems_suit_watchdog_deadline(self._suit, ctypes.byref(ms)):
            return None
        return ms.value / 1000

    @property
    def last_feed(self) -> float | None:
        """When SET_LEVELS, HEARTBEAT or ARM last fed the watchdog, s (None if never)."""
        ms = ctypes.c_uint32()
        if not self._lib.ems_suit_last_feed(self._suit, ctypes.byref(ms)):
            return None
        return ms.value / 1000

    @property
    def watchdog_s(self) -> float:
        """The watchdog time, s (S4; settable)."""
        return int(self._lib.ems_suit_watchdog_ms(self._suit)) / 1000

    @watchdog_s.setter
    def watchdog_s(self, seconds: float) -> None:
        self._lib.ems_suit_set_watchdog_ms(self._suit, self._watchdog_ms(seconds))

    # -- status ---------------------------------------------------------------------------------
    def status_frames(
        self, att_payload: int = ATT_PAYLOAD_MIN, now: float | None = None
    ) -> list[bytes]:
        """One status report split to the ATT payload; clears BAD_FRAME and PROGRAM_MISMATCH.

        The clock is read at `now`, else at the last event.
        """
        if not self._lib.ems_suit_set_att_payload(self._suit, att_payload):
            raise ValueError(
                f"an ATT payload of {att_payload} bytes cannot carry a status "
                f"(at least {ATT_PAYLOAD_ONE_CHANNEL}; protocol version 2 needs {ATT_PAYLOAD_MIN})"
            )
        self.notifications += self._collect()
        at = max(self._now, self._since) if now is None else now
        self._lib.ems_suit_send_status(self._suit, self._at(at))
        return self._collect()

    def enable_notifications(self, now: float) -> list[bytes]:
        """The controller enabled notifications: the status sent at once.

        From then on the suit also notifies by itself (state or program change,
        `tick` every 200 ms); those frames gather in `notifications`.
        """
        self.notifications += self._collect()
        self._lib.ems_suit_notifications_enabled(self._suit, self._at(now))
        return self._collect()

    def disable_notifications(self) -> None:
        """The link is gone: no more notifications by itself."""
        self._lib.ems_suit_notifications_disabled(self._suit)

    def disconnected(self) -> None:
        """The link dropped: no more notifications; outputs stay until the watchdog trips."""
        self.disable_notifications()

    def take_notifications(self) -> list[bytes]:
        """The status frames the suit notified by itself since the last call."""
        frames, self.notifications = self.notifications, []
        return frames

    # -- what the suit reports ------------------------------------------------------------------
    @property
    def state(self) -> SuitState:
        return SuitState(self._lib.ems_suit_state(self._suit))

    @property
    def faults(self) -> SuitFault:
        return SuitFault(self._lib.ems_suit_faults(self._suit))

    @property
    def applied_codes(self) -> tuple[int, ...]:
        """The level code (0.5 mA) each output carries, as the C core holds it."""
        return tuple(int(self._lib.ems_suit_level(self._suit, ch)) for ch in range(self.n_channels))

    @property
    def program(self) -> ActiveProgram:
        pid, hz, us = ctypes.c_uint8(), ctypes.c_uint8(), ctypes.c_uint16()
        self._lib.ems_suit_program(
            self._suit, ctypes.byref(pid), ctypes.byref(hz), ctypes.byref(us)
        )
        return ActiveProgram(pid.value, hz.value, us.value)

    @property
    def last_counter(self) -> int:
        """The last accepted control frame counter (0 at power on)."""
        return int(self._lib.ems_suit_last_counter(self._suit))

    @property
    def bad_frames(self) -> int:
        return int(self._lib.ems_suit_bad_frames(self._suit))

    @property
    def stale_frames(self) -> int:
        return int(self._lib.ems_suit_stale_frames(self._suit))

    @property
    def mismatched_frames(self) -> int:
        return int(self._lib.ems_suit_mismatched_frames(self._suit))

    @property
    def watchdog_trips(self) -> int:
        return int(self._lib.ems_suit_watchdog_trips(self._suit))

    @property
    def charge_clamps(self) -> int:
        """SET_LEVELS frames the suit's own charge limit clamped (settable, as a baseline)."""
        return int(self._lib.ems_suit_charge_clamps(self._suit)) - self._clamps_seen

    @charge_clamps.setter
    def charge_clamps(self, value: int) -> None:
        self._clamps_seen = int(self._lib.ems_suit_charge_clamps(self._suit)) - value

    @property
    def battery_pct(self) -> int:
        return int(self._lib.ems_suit_battery(self._suit))

    @property
    def impedance_ohm(self) -> list[float | None]:
        """Contact impedance per channel, Ω (None: no contact)."""
        codes = (int(self._lib.ems_suit_impedance(self._suit, ch)) for ch in range(self.n_channels))
        return [None if c == IMPEDANCE_OPEN else c * IMPEDANCE_UNIT_OHM for c in codes]

    def totals(self, now: float) -> list[ChannelTotals]:
        """Per-channel totals up to `now`, as measured at the suit."""
        self._account(now)
        return [
            ChannelTotals(
                float(self.charge_uC[i]),
                float(self.stim_s[i]),
                float(self.max_seen_mA[i]),
                int(self.contractions[i]),
            )
            for i in range(self.n_channels)
        ]

    # -- the body and the hardware --------------------------------------------------------------
    def _channel(self, channel: int) -> int:
        if not 0 <= channel < self.n_channels:
            raise ValueError(f"this suit has channels 0..{self.n_channels - 1}, not {channel}")
        return channel

    def detach(self, channel: int, now: float) -> None:
        """An electrode comes loose: no current on that channel, shown in the status."""
        ms = self._at(now)
        self._lib.ems_suit_set_contact(self._suit, self._channel(channel), IMPEDANCE_OPEN, ms)
        self.notifications += self._collect()

    def attach(self, channel: int, ohm: float = 800.0) -> None:
        """The electrode has contact again (levels resume with the next frame)."""
        ms = self._at(max(self._now, self._since))
        code = _impedance_code(ohm)
        self._lib.ems_suit_set_contact(self._suit, self._channel(channel), code, ms)
        self.notifications += self._collect()

    def set_battery(self, pct: int) -> None:
        """Battery level, percent (0..100); LOW_BATTERY under 15 %."""
        self._lib.ems_suit_set_battery(self._suit, max(0, min(100, pct)))
