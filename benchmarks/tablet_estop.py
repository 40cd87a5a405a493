"""A trainer's tablet e-stop button in a process of its own, for `mqtt_estop`.

One MQTT connection (TCP_NODELAY), no thread: paho writes a publish in the
call itself, so the time printed is when the e-stop's bytes left for the
broker. Reads trial numbers on stdin; for each, publishes one e-stop on the
e-stop topic at QoS 1 and prints the system-wide monotonic time just before
the publish. Usage: python -m benchmarks.tablet_estop PORT USER PASSWORD ESTOP_TOPIC
"""

from __future__ import annotations

import os
import select
import socket
import sys
import time

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion


def main() -> None:
    port, user, password, estop = sys.argv[1:5]
    button = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="tablet-1-estop")
    button.username_pw_set(user, password)
    button.connect("127.0.0.1", int(port), keepalive=60)
    sock = button.socket()
    assert isinstance(sock, socket.socket)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    while not button.is_connected():
        button.loop(timeout=0.1)
    print("ready", flush=True)
    stdin = sys.stdin.fileno()
    pending = b""
    while True:
        readable, _, _ = select.select([stdin, sock], [], [], 1.0)
        if sock in readable:
            button.loop_read()  # PUBACKs
        button.loop_misc()  # keepalive
        if stdin in readable:
            data = os.read(stdin, 4096)
            if not data:
                break
            pending += data
            while b"\n" in pending:
                _, _, pending = pending.partition(b"\n")
                t0 = time.monotonic()
                button.publish(estop, b'{"id": "stop"}', qos=1)  # written in this call
                print(t0, flush=True)
    button.disconnect()


if __name__ == "__main__":
    main()
