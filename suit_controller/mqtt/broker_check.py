"""The controller speaks MQTT v5 only: what it says when a broker refuses v5, and the check
made before a class starts.

With MQTT 3.1.1 a broker forwards a retained message published while the controller is
subscribed with the retain flag cleared, and 3.1.1 has no way to ask it not to: a retained
command published during a class would be carried out (review finding F1). MQTT v5's
"retain as published" keeps the flag, so the controller refuses such a command. So there is
no fallback to 3.1.1 (docs/mqtt.md, "MQTT v5 is required").
"""

from __future__ import annotations

import ssl
import threading
import uuid
from typing import Any

from paho.mqtt.client import Client, MQTTv5
from paho.mqtt.enums import CallbackAPIVersion

from suit_controller.mqtt.topics import BrokerUrl

#: How long the check before a class waits for the broker's answer. A broker that does not
#: answer in time is not refused: the class starts and the bridge keeps trying (the class
#: never waits for the broker).
CHECK_TIMEOUT_S = 3.0


def protocol_refused(error: BaseException | Any) -> bool:
    """True when a CONNACK (or an error carrying its code) refuses the MQTT version.

    MQTT 3.1.1's CONNACK code 1 and MQTT v5's reason code 132 both mean
    "unacceptable / unsupported protocol version".
    """
    rc = getattr(error, "rc", error)
    value = getattr(rc, "value", rc)
    return value in (1, 132) or "protocol version" in str(error).lower()


def v5_refused_message(broker: BrokerUrl, answer: str) -> str:
    """What the operator reads when the broker refuses MQTT v5 (names the refusal and the fix)."""
    return (
        f"the MQTT broker at {broker.host}:{broker.port} refused MQTT v5 "
        f"(its CONNACK: {answer}). The controller speaks MQTT v5 only: with MQTT 3.1.1 a "
        "retained command published during a class would be carried out. Upgrade the broker "
        "to one that speaks MQTT v5 (Mosquitto 1.6 or later does), or run without --mqtt"
    )


def broker_refuses_v5(broker: BrokerUrl, timeout_s: float = CHECK_TIMEOUT_S) -> str | None:
    """Connect once with MQTT v5; the operator's message if the broker refuses the version.

    None when the broker accepts v5, and also when it cannot be reached, refuses the login
    or does not answer in time: those are not this check's business (the bridge reports
    them and keeps trying while the class goes on).
    """
    answer: list[Any] = []
    done = threading.Event()

    def on_connect(client: Any, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        answer.append(reason)
        done.set()

    client = Client(
        CallbackAPIVersion.VERSION2,
        client_id=f"suit-controller-check-{uuid.uuid4().hex[:12]}",
        protocol=MQTTv5,
    )
    client.on_connect = on_connect
    client.connect_timeout = timeout_s
    if broker.username is not None:
        client.username_pw_set(broker.username, broker.password)
    if broker.tls:
        context = ssl.create_default_context(cafile=broker.ca_file)
        if broker.cert_file:
            context.load_cert_chain(broker.cert_file, broker.key_file)
        client.tls_set_context(context)
    try:
        client.connect(broker.host, broker.port, keepalive=10)
        client.loop_start()
    except (OSError, ValueError):
        return None  # unreachable: the bridge will keep trying
    try:
        done.wait(timeout_s)
    finally:
        client.disconnect()
        client.loop_stop()
    if answer and protocol_refused(answer[0]):
        return v5_refused_message(broker, describe_answer(answer[0]))
    return None


def describe_answer(reason: Any) -> str:
    """A CONNACK code (paho's ReasonCode, or a bare number) as people read it, with its number."""
    value = getattr(reason, "value", reason)
    if hasattr(reason, "getName"):
        name = str(reason.getName())
    elif value == 1:  # MQTT 3.1.1's code
        name = "unacceptable protocol version"
    elif value == 132:
        name = "unsupported protocol version"
    else:
        name = "refused"
    return f"{name.lower()}, code {value}"
