"""A trainer's tablet in a process of its own (as on a real tablet), for `estop_under_burst`.

Reads trial numbers on stdin; for each, publishes BURST set_intensity commands on its own
commands topic (…/commands/from/tablet-1, its client id) at QoS 1, then an e-stop over its
e-stop button's own connection, and prints the
system-wide monotonic time of the e-stop's publish. Usage: python -m benchmarks.tablet_burst
PORT USER PASSWORD COMMANDS_TOPIC ESTOP_TOPIC BURST N_CLIENTS
"""

from __future__ import annotations

import json
import sys
import time

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion


def connect(port: int, user: str, password: str, client_id: str) -> mqtt.Client:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id)
    client.username_pw_set(user, password)
    client.max_inflight_messages_set(0)  # the whole burst leaves at once
    client.max_queued_messages_set(0)
    client.connect("127.0.0.1", port)
    client.loop_start()
    return client


def main() -> None:
    port, user, password, commands, estop = sys.argv[1:6]
    burst, n_clients = int(sys.argv[6]), int(sys.argv[7])
    tablet = connect(int(port), user, password, "tablet-1")
    button = connect(int(port), user, password, "tablet-1-estop")
    print("ready", flush=True)
    for line in sys.stdin:
        trial = int(line)
        for k in range(burst):
            doc = {"id": f"{trial}-{k}", "do": "set_intensity", "client": 1 + k % n_clients}
            tablet.publish(commands, json.dumps({**doc, "mA": 50 + k % 10}), qos=1)
        t0 = time.monotonic()
        button.publish(estop, b'{"id": "stop"}', qos=1)
        print(t0, flush=True)
    tablet.loop_stop()
    button.loop_stop()


if __name__ == "__main__":
    main()
