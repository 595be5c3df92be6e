"""Pure rules every node computes alike: no network, no chain, no clock.

The only I/O here is reading and writing the protocol's own files (registry, protocol config).
"""
