"""What authentication costs per control frame: bytes, microseconds, air time, pairing.

* bytes: the key id and the 8-byte tag of every control frame (version 2 carries
  them always; an unsigned frame has key id 0 and a zero tag), against the
  whole frame;
* µs: signing one 12-channel SET_LEVELS frame (the controller, per suit per
  tick) and verifying it (`decode_control` with the suit's key, as the
  simulated suit does), against the same without a key: median of many;
* air time on LE 1M PHY, with and without the link layer's 4-byte MIC of an
  encrypted link: preamble 1 + access address 4 + header 2 + L2CAP 4 + ATT 3
  + frame + (MIC 4) + CRC 3 bytes at 1 µs a bit;
* the radio budget: 40 frames a second per suit, 20 suits in a room;
* bumble, real clock: the first connection of a suit (LE Secure Connections
  pairing with the passkey, then the enrollment write) and a reconnect that
  re-encrypts with the bond, to its first status.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

import trio
import trio_asyncio

from suit_controller.protocol import ControllerConnection, decode_control, encode_levels
from suit_controller.protocol.enrollment import new_studio_id, new_suit_key

RATE_HZ = 40
ROOM_SUITS = 20
LL_OVERHEAD = 1 + 4 + 2 + 4 + 3 + 3  # preamble, access address, header, L2CAP, ATT, CRC
MIC = 4
AUTH_BYTES = 1 + 8  # key id and tag


def _median_us(fn: Any, n: int = 20000) -> float:
    samples = []
    for _ in range(5):
        t = time.perf_counter()
        for _ in range(n):
            fn()
        samples.append((time.perf_counter() - t) / n * 1e6)
    return round(statistics.median(samples), 2)


def _air_us(frame_len: int, encrypted: bool) -> int:
    return (LL_OVERHEAD + frame_len + (MIC if encrypted else 0)) * 8


def run_frame_costs() -> dict[str, Any]:
    key = new_suit_key()
    codes = bytes(range(12))
    signed = encode_levels(1, 0, codes, key.key, key.key_id)
    plain = encode_levels(1, 0, codes)
    keys = {key.key_id: key.key}
    frame_len = len(signed)
    plain_air, secure_air = _air_us(frame_len - AUTH_BYTES, False), _air_us(frame_len, True)
    sign_us = _median_us(lambda: encode_levels(1, 0, codes, key.key, key.key_id))
    encode_us = _median_us(lambda: encode_levels(1, 0, codes))
    verify_us = _median_us(lambda: decode_control(signed, keys))
    decode_us = _median_us(lambda: decode_control(plain))
    return {
        "frame_bytes": frame_len,
        "auth_bytes": AUTH_BYTES,
        "auth_share_pct": round(100 * AUTH_BYTES / frame_len, 1),
        "sign_us": sign_us,
        "encode_unsigned_us": encode_us,
        "sign_extra_us": round(sign_us - encode_us, 2),
        "verify_us": verify_us,
        "decode_unsigned_us": decode_us,
        "verify_extra_us": round(verify_us - decode_us, 2),
        "air_us_without_auth": plain_air,
        "air_us_with_auth_and_encryption": secure_air,
        "air_extra_us": secure_air - plain_air,
        "room": {
            "suits": ROOM_SUITS,
            "rate_hz": RATE_HZ,
            "auth_bytes_per_s": AUTH_BYTES * RATE_HZ * ROOM_SUITS,
            "air_ms_per_s_with_auth": round(secure_air * RATE_HZ * ROOM_SUITS / 1000, 1),
            "air_ms_per_s_without": round(plain_air * RATE_HZ * ROOM_SUITS / 1000, 1),
            "controller_cpu_us_per_s": round(sign_us * RATE_HZ * ROOM_SUITS, 0),
        },
    }


def run_pairing_costs(n: int = 3) -> dict[str, Any]:
    """Real clock, bumble: enroll (pair + key) and reconnect (re-encrypt) to the first status."""
    from sim.ble_world import BleRoom
    from sim.suit import SimulatedSuit
    from suit_controller.enrollment import enroll_suit
    from suit_controller.links.ble import BleLink

    enroll_s: list[float] = []
    reconnect_s: list[float] = []

    async def main() -> None:
        async with trio_asyncio.open_loop(), trio.open_nursery() as nursery:
            suits = [SimulatedSuit(f"SIM-{i + 1:02d}") for i in range(n)]
            for s in suits:
                await nursery.start(s.run)
            room = BleRoom(suits)
            await nursery.start(room.run)
            studio = new_studio_id()
            for suit, address in zip(suits, room.addresses, strict=True):
                t = time.perf_counter()
                key = await enroll_suit(address, suit.setup_code, studio, **room.client_kwargs())
                enroll_s.append(time.perf_counter() - t)
                link = BleLink(address, suit_key=key, **room.client_kwargs())
                conn = ControllerConnection(12, key=key.key, key_id=key.key_id)
                t = time.perf_counter()
                await link.connect()
                conn.connected(link.att_payload)
                while not conn.can_send:
                    conn.receive_data(await link.receive(), trio.current_time())
                reconnect_s.append(time.perf_counter() - t)
                await link.aclose()
            nursery.cancel_scope.cancel()

    trio.run(main)
    return {
        "suits": n,
        "enroll_ms_median": round(statistics.median(enroll_s) * 1000, 1),
        "reconnect_reencrypt_ms_median": round(statistics.median(reconnect_s) * 1000, 1),
    }
