"""Protocol errors say whose fault it was (as h11 does)."""


class ProtocolError(Exception):
    """Base of every suit-protocol error."""


class LocalProtocolError(ProtocolError):
    """We tried to encode something the protocol cannot carry (a bug or a bad value of ours)."""


class RemoteProtocolError(ProtocolError):
    """The peer sent bytes that are not a valid frame: wrong length, CRC, version or value."""
