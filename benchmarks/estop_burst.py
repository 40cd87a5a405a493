"""E-stop under a burst: one tablet publishes 1,000 set_intensity commands on the commands
topic at QoS 1, then an e-stop; the latency runs from the e-stop's publish until the simulated
firmware of every suit reports zero. Every result of the burst must come back."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiomqtt
import trio
import trio.lowlevel
import trio_asyncio

from benchmarks.common import percentiles_ms, plan35
from sim.suit import SimulatedSuit
from suit_controller.cli.simclass import SimulatedClass
from suit_controller.commands import Reset, Resume
from suit_controller.mqtt import BrokerUrl, Topics
from suit_controller.mqtt.bridge import MqttBridge, TrioSafeClient
from suit_controller.protocol import SuitState
from suit_controller.session import ClassState

BURST = 1000


def accounted(results: list[dict[str, Any]]) -> int:
    """Commands answered: one per result, N per summary ("N commands refused: …").

    Past a source's rate limit the bridge answers the first refusal, then one
    summary a second, not one result per refused command.
    """
    return sum(
        int(r["message"].split()[0])
        if r.get("id") is None and "commands refused:" in r["message"]
        else 1
        for r in results
    )


def stopped(suit: SimulatedSuit) -> bool:
    """The suit's firmware has taken STOP_ALL: state STOPPED, every output zero."""
    return suit.firmware.state is SuitState.STOPPED and not suit.firmware.applied_mA.any()


def run_estop_under_burst(n_suits: int = 20, trials: int = 20) -> dict[str, Any]:
    from tests.mqtt_broker import MOSQUITTO, Broker, login

    if MOSQUITTO is None:
        return {"skipped": "mosquitto is not installed"}
    samples: list[float] = []
    executed_before_estop: list[int] = []
    answers_published: list[int] = []
    latched: list[float] = []
    refused_by_rate_limit = 0
    with tempfile.TemporaryDirectory() as tmp:
        broker = Broker(Path(tmp))
        broker.start()
        try:
            sc = SimulatedClass(plan35(), n_suits, intensity_mA=60.0, body=False)
            bridge = MqttBridge(sc.session, BrokerUrl.parse(broker.url()), Topics.for_room())
            sc.companions = [bridge.run]
            topics = Topics.for_room()

            async def main() -> None:
                nonlocal refused_by_rate_limit
                async with trio_asyncio.open_loop(), trio.open_nursery() as nursery:
                    nursery.start_soon(sc.run)
                    user, password = login("tablet-room-1")
                    # the tablet is a process of its own, as a real tablet is a device of its own
                    tablet = await trio.lowlevel.open_process(
                        [
                            sys.executable,
                            "-m",
                            "benchmarks.tablet_burst",
                            str(broker.port),
                            user,
                            password,
                            topics.commands_from("tablet-1"),  # the tablet's client id
                            topics.estop,
                            str(BURST),
                            str(n_suits),
                        ],
                        stdin=subprocess.PIPE,
                        stdout=subprocess.PIPE,
                    )
                    assert tablet.stdin is not None and tablet.stdout is not None
                    lines = LineReader(tablet.stdout)
                    assert await lines.next() == "ready"
                    reader = TrioSafeClient(
                        "127.0.0.1", broker.port, username=user, password=password, timeout=5
                    )
                    results: list[dict[str, Any]] = []
                    async with trio_asyncio.aio_as_trio(reader):
                        await trio_asyncio.aio_as_trio(reader.subscribe)(topics.results, qos=1)

                        async def collect() -> None:
                            with contextlib.suppress(aiomqtt.MqttError):  # closed at the end
                                async for m in trio_asyncio.aio_as_trio(reader.messages):
                                    results.append(json.loads(bytes(m.payload)))

                        nursery.start_soon(collect)
                        while not (bridge.connected and bridge.estop_connected):  # noqa: ASYNC110
                            await trio.sleep(0.05)
                        await trio.sleep(0.5)
                        sc.session._plan_base = 6 * 60.0 + 1.0
                        for trial in range(trials):
                            with trio.fail_after(10):  # every suit stimulating before the burst
                                while not all(s.firmware.applied_mA.any() for s in sc.suits):  # noqa: ASYNC110
                                    await trio.sleep(0.01)
                            results.clear()
                            executed = sc.session.desk.taken
                            await tablet.stdin.send_all(f"{trial}\n".encode())
                            t0 = float(await lines.next())
                            with trio.fail_after(5.0):
                                while sc.session.state is not ClassState.ESTOPPED:
                                    await trio.lowlevel.checkpoint()
                                latched.append(time.monotonic() - t0)
                                while not all(stopped(s) for s in sc.suits):
                                    await trio.lowlevel.checkpoint()
                            samples.append(time.monotonic() - t0)
                            executed_before_estop.append(sc.session.desk.taken - executed)
                            with trio.fail_after(60):  # every command of the burst is answered
                                while accounted(results) < BURST + 1:  # noqa: ASYNC110
                                    await trio.sleep(0.02)
                            answers_published.append(len(results))
                            refused_by_rate_limit += accounted(
                                [r for r in results if "a second from" in r["message"]]
                            )
                            await sc.session.execute(Reset(), source="bench")
                            await sc.session.execute(Resume(), source="bench")
                            sc.session._plan_base = 6 * 60.0 + 1.0
                    await tablet.stdin.aclose()
                    with trio.move_on_after(5):
                        await tablet.wait()
                    tablet.kill()
                    nursery.cancel_scope.cancel()

            trio.run(main)
        finally:
            broker.stop()
    stats = percentiles_ms(samples)
    return {
        "suits": n_suits,
        "trials": len(samples),
        "burst": BURST,
        "qos": 1,
        "results_received_per_trial": BURST + 1,  # accounted for: one by one or summarised
        "answers_published_per_trial_max": max(answers_published, default=0),
        "refused_by_rate_limit": refused_by_rate_limit,
        "commands_taken_until_all_zero_min": min(executed_before_estop, default=0),
        **stats,
        "latched": percentiles_ms(latched),
        "target_p99_ms": 50.0,
        "ok": bool(stats) and stats["p99_ms"] <= 50.0,
    }


class LineReader:
    """Lines from a Trio receive stream."""

    def __init__(self, stream: trio.abc.ReceiveStream) -> None:
        self.stream = stream
        self.buffer = b""

    async def next(self) -> str:
        while b"\n" not in self.buffer:
            data = await self.stream.receive_some()
            if not data:
                raise EOFError("the tablet process ended")
            self.buffer += data
        line, _, self.buffer = self.buffer.partition(b"\n")
        return line.decode().strip()
