"""Emergency stop over MQTT: from a tablet's publish until every simulated suit is at zero."""

from __future__ import annotations

import random
import tempfile
import time
from pathlib import Path
from typing import Any

import trio
import trio.lowlevel
import trio_asyncio

from benchmarks.common import percentiles_ms, plan35
from suit_controller.cli.simclass import SimulatedClass
from suit_controller.commands import Reset, Resume
from suit_controller.mqtt import BrokerUrl, Topics
from suit_controller.mqtt.bridge import MqttBridge, TrioSafeClient


def run_mqtt_estop(n_suits: int = 20, trials: int = 100, seed: int = 1) -> dict[str, Any]:
    from tests.mqtt_broker import MOSQUITTO, Broker, login

    if MOSQUITTO is None:
        return {"skipped": "mosquitto is not installed"}
    rng = random.Random(seed)
    samples: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        broker = Broker(Path(tmp))
        broker.start()
        try:
            sc = SimulatedClass(plan35(), n_suits, intensity_mA=60.0, body=False)
            bridge = MqttBridge(sc.session, BrokerUrl.parse(broker.url()), Topics.for_room())
            sc.companions = [bridge.run]

            async def main() -> None:
                async with trio_asyncio.open_loop(), trio.open_nursery() as nursery:
                    nursery.start_soon(sc.run)
                    user, password = login("tablet-room-1")
                    tablet = TrioSafeClient(
                        "127.0.0.1",
                        broker.port,
                        username=user,
                        password=password,
                        timeout=5,
                    )
                    async with trio_asyncio.aio_as_trio(tablet):
                        while not bridge.connected:  # noqa: ASYNC110 - harness polls a flag
                            await trio.sleep(0.05)
                        await trio.sleep(0.5)
                        sc.session.clock.seek(6 * 60.0 + 1.0)
                        for _ in range(trials):
                            await trio.sleep(rng.uniform(0.05, 0.3))
                            t0 = time.perf_counter()
                            await trio_asyncio.aio_as_trio(tablet.publish)(
                                "ems/studio/room-1/commands", b'{"do":"estop"}', qos=1
                            )
                            with trio.fail_after(2.0):
                                while any(s.firmware.applied_mA.any() for s in sc.suits):
                                    await trio.lowlevel.checkpoint()
                                while sc.session.state.value != "estopped":
                                    await trio.lowlevel.checkpoint()
                            samples.append(time.perf_counter() - t0)
                            await sc.session.execute(Reset(), source="bench")
                            await sc.session.execute(Resume(), source="bench")
                    nursery.cancel_scope.cancel()

            trio.run(main)
        finally:
            broker.stop()
    return {
        "suits": n_suits,
        "trials": len(samples),
        "qos": 1,
        "tcp_nodelay": True,
        **percentiles_ms(samples),
        "target_p99_ms": 3.0,  # issue 15: through a real Mosquitto on loopback
    }
