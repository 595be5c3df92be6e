"""Errors raised by the protocol layer.

`CommitmentRejected` is what peers' malformed input produces: the validator records its `reason`
per miner. `ProtocolVersionMismatch` is not a `ValueError` on purpose, so pydantic does not fold
it into a validation error and a node that reads another version stops with this exact message.
"""

from blockzero.protocol.version import PROTOCOL_VERSION


class CommitmentRejected(ValueError):
    """Chain text that is not one of ours: `rejected commitment: oversize (131 > 128 bytes)`."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"rejected commitment: {reason}")
        self.reason = reason


class ProtocolVersionMismatch(RuntimeError):
    """Input of another protocol version: `x.yaml has protocol version 2 but this node ...`."""

    def __init__(self, found: object, source: str) -> None:
        super().__init__(
            f"{source} has protocol version {found!r} but this node speaks version "
            f"{PROTOCOL_VERSION}: run the blockzero release that matches the subnet"
        )
        self.found = found
        self.source = source
