"""Hub port (publish and fetch files as immutable revisions) and its two adapters.

``HfHub`` lives in :mod:`blockzero.hub.hf_hub` and is not imported here, so using the local hub
does not import huggingface_hub.
"""

from blockzero.hub.errors import (
    FileNotFound,
    HubError,
    HubRefused,
    HubTimeout,
    HubUnavailable,
    InvalidPath,
    InvalidRepoId,
    InvalidRevision,
    RevisionNotFound,
    TooLarge,
)
from blockzero.hub.local_hub import LocalHub
from blockzero.hub.port import Hub, Revision

__all__ = [
    "FileNotFound",
    "Hub",
    "HubError",
    "HubRefused",
    "HubTimeout",
    "HubUnavailable",
    "InvalidPath",
    "InvalidRepoId",
    "InvalidRevision",
    "LocalHub",
    "Revision",
    "RevisionNotFound",
    "TooLarge",
]
