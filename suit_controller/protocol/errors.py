"""Protocol errors say whose fault it was (as h11 does)."""


class ProtocolError(Exception):
    """Base of every suit-protocol error."""


class LocalProtocolError(ProtocolError):
    """We tried to encode something the protocol cannot carry (a bug or a bad value of ours)."""


class RemoteProtocolError(ProtocolError):
    """The peer sent bytes that are not a valid frame: wrong length, CRC, version or value."""


class UnsupportedVersion(RemoteProtocolError):
    """A well-formed frame of another protocol version: the suit needs a firmware update."""

    def __init__(self, version: int) -> None:
        self.version = version
        if version < 2:
            message = (
                f"this suit speaks suit protocol version {version}; "
                "update its firmware to version 2"
            )
        else:
            message = (
                f"this suit speaks suit protocol version {version}, newer than this "
                "controller's version 2; update the controller"
            )
        super().__init__(message)
