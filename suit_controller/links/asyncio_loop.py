"""trio-asyncio's loop, running the asyncio callbacks that are ready in batches.

bleak (and bumble, in simulation) are asyncio libraries; trio-asyncio runs
their callbacks in one Trio task that takes them from a queue one at a time,
with a Trio checkpoint (a cancel scope, a channel receive, a trip through
Trio's scheduler) for each. A control frame written over BLE is about ten
asyncio callbacks, so at 40 Hz × 20 suits the scheduler went round eight
thousand times a second for them (cProfile of a class over bumble: half of
the CPU in trio-asyncio's loop and Trio's scheduler, not in the callbacks).

`batch_callbacks(loop)` makes the loop run every callback already queued (up
to `BATCH` of them) before it yields to Trio again, as asyncio's own loop runs
every ready callback in one iteration. Order is unchanged (one FIFO, timers
as before); only the checkpoints between callbacks that were ready together
go. `BATCH` bounds how long the engine's tasks wait behind a burst
(a callback here is tens of µs). It also remembers which callback functions
passed asyncio's "not a coroutine function" check, which asyncio otherwise
repeats through `inspect` on every callback.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

import trio
import trio_asyncio

#: Most asyncio callbacks run in a row without a Trio checkpoint.
BATCH = 32


def _ready(loop: Any) -> bool:
    """Whether the loop has a callback queued or a timer due (without blocking)."""
    if loop._q_recv.statistics().current_buffer_used:
        return True
    timers = loop._timers
    return bool(timers) and timers[0]._when <= loop.time()


def _remembering_check(check: Callable[[Any, str], None]) -> Callable[[Any, str], None]:
    """asyncio's check that a callback is not a coroutine function, remembered per function.

    asyncio asks `inspect` on every `call_soon` (a tenth of the loop's cost here);
    a plain function or bound method whose code passed once passes again. Anything
    else (partials, callable objects) is checked every time, as before.
    """
    passed: set[Any] = set()

    def checked(callback: Any, method: str) -> None:
        code = getattr(getattr(callback, "__func__", callback), "__code__", None)
        if code is not None and code in passed:
            return
        check(callback, method)
        if code is not None:
            passed.add(code)

    return checked


def batch_callbacks(loop: Any) -> bool:
    """Make a trio-asyncio loop run ready callbacks in batches (once; see the module doc).

    Returns whether the loop batches now (False for a loop that is not trio-asyncio's,
    or one whose internals this version does not know: it is left as it is).
    """
    if getattr(loop, "_suit_controller_batches", False):
        return True
    one: Callable[..., Awaitable[None]] | None = getattr(loop, "_main_loop_one", None)
    if one is None or not all(hasattr(loop, a) for a in ("_q_recv", "_timers", "time")):
        return False

    async def main_loop_one(no_wait: bool = False) -> None:
        await one(no_wait)  # the first waits (a checkpoint) as trio-asyncio's does
        for _ in range(BATCH - 1):
            if not _ready(loop) or loop._stopped.is_set():
                return
            with contextlib.suppress(trio.WouldBlock):
                await one(True)  # ready: no wait, no checkpoint for a plain callback

    loop._main_loop_one = main_loop_one
    check = getattr(loop, "_check_callback", None)
    if check is not None:
        loop._check_callback = _remembering_check(check)
    loop._suit_controller_batches = True
    return True


def batch_current_loop() -> bool:
    """`batch_callbacks` on the trio-asyncio loop of the calling Trio task, if any."""
    loop = trio_asyncio.current_loop.get()
    return False if loop is None else batch_callbacks(loop)
