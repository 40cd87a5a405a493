"""Replay over MQTT: a consumer asks for every event of a running class (2,000 events)
through a real Mosquitto and waits for the last answer."""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path
from typing import Any

import trio
import trio_asyncio

from benchmarks.common import percentiles_ms, plan35
from suit_controller.cli.simclass import SimulatedClass
from suit_controller.commands import SetIntensity
from suit_controller.mqtt import BrokerUrl, Topics
from suit_controller.mqtt.bridge import MqttBridge, TrioSafeClient

#: The target: a consumer catches up on 2,000 missed events within a second.
TARGET_S = 1.0


def run_mqtt_replay(n_events: int = 2000, trials: int = 5) -> dict[str, Any]:
    from tests.mqtt_broker import MOSQUITTO, Broker, login

    if MOSQUITTO is None:
        return {"skipped": "mosquitto is not installed"}
    samples: list[float] = []
    counts: list[int] = []
    with tempfile.TemporaryDirectory() as tmp:
        broker = Broker(Path(tmp))
        broker.start()
        try:
            sc = SimulatedClass(plan35(), 2, intensity_mA=20.0, body=False)
            bridge = MqttBridge(sc.session, BrokerUrl.parse(broker.url()), Topics.for_room())
            sc.companions = [bridge.run]

            async def main() -> None:
                async with trio_asyncio.open_loop(), trio.open_nursery() as nursery:
                    nursery.start_soon(sc.run)
                    user, password = login("dashboard")
                    desk = TrioSafeClient(
                        "127.0.0.1", broker.port, username=user, password=password, timeout=5
                    )
                    async with trio_asyncio.aio_as_trio(desk):
                        result = "ems/studio/room-1/events/replay/result"
                        await trio_asyncio.aio_as_trio(desk.subscribe)(result, qos=1)
                        while bridge.last_seq < n_events:
                            await sc.session.execute(
                                SetIntensity(client=1, mA=20 + bridge.last_seq % 5), "bench"
                            )
                        while bridge.pending:  # noqa: ASYNC110 - harness polls a flag
                            await trio.sleep(0.05)
                        messages = trio_asyncio.aio_as_trio(desk.messages)
                        for k in range(trials):
                            t0 = time.perf_counter()
                            await trio_asyncio.aio_as_trio(desk.publish)(
                                "ems/studio/room-1/events/replay",
                                json.dumps({"id": f"b{k}", "after_seq": 0}).encode(),
                                qos=1,
                            )
                            got = 0
                            with trio.fail_after(30):
                                async for m in messages:
                                    doc = json.loads(m.payload)
                                    got += len(doc["events"])
                                    if not doc["more"]:
                                        break
                            samples.append(time.perf_counter() - t0)
                            counts.append(got)
                    nursery.cancel_scope.cancel()

            trio.run(main)
        finally:
            broker.stop()
    p = percentiles_ms(samples)
    return {
        "events": min(counts) if counts else 0,
        "trials": len(samples),
        **p,
        "target_s": TARGET_S,
    }
