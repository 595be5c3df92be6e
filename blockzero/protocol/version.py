"""The protocol version every wire format carries.

A node that reads a different version refuses the input and says so, instead of guessing.
"""

PROTOCOL_VERSION = 1
