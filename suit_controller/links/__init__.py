"""Links to suits: one interface, a backend per transport."""

from suit_controller.links.base import ConnectFailed, LinkError, LinkLost, SuitLink
from suit_controller.links.inprocess import InProcessDevice, InProcessLink

__all__ = ["ConnectFailed", "InProcessDevice", "InProcessLink", "LinkError", "LinkLost", "SuitLink"]
