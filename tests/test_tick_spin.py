"""The tick source's spin (`suit_controller/ticks.py`): Trio reads its sockets during it,
except in its last `SPIN_BLIND_S`, so an e-stop's bytes are no longer left unread for up
to `SPIN_MARGIN_S` before every tick. No timing is asserted: only what ran before the tick."""

from __future__ import annotations

import socket
import threading

import pytest
import trio
import trio.testing

from suit_controller import ticks


async def test_the_spin_reads_sockets_until_its_last_stretch(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Bytes sent (from another thread) 0.1 s into a 1 s spin are read before the tick
    (a spin that held the thread throughout read them after it)."""
    monkeypatch.setattr(ticks, "SPIN_MARGIN_S", 2.0)  # the whole wait below is spin
    monkeypatch.setattr(ticks, "SPIN_BLIND_S", 0.0)
    order: list[str] = []
    a, b = socket.socketpair()
    with a, trio.socket.from_stdlib_socket(b) as tb:

        async def reader() -> None:
            await tb.recv(16)
            order.append("read")

        async with trio.open_nursery() as nursery:
            nursery.start_soon(reader)
            await trio.testing.wait_all_tasks_blocked()
            tablet = threading.Timer(0.1, a.send, args=(b'{"do":"estop"}',))
            tablet.start()
            await ticks.TickSource(precise=True).sleep_until(trio.current_time() + 1.0)
            order.append("tick")
            tablet.join()
    assert order == ["read", "tick"]
