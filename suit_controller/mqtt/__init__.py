"""Gym integration over MQTT: topics, payloads and the bridge (see docs/mqtt.md)."""

from suit_controller.mqtt.topics import BrokerUrl, MqttConfigError, Topics

__all__ = ["BrokerUrl", "MqttConfigError", "Topics"]
