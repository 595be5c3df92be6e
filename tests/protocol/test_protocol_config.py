from pathlib import Path

import pytest
import yaml

from blockzero.protocol.config import ProtocolConfig
from blockzero.protocol.errors import ProtocolVersionMismatch
from blockzero.protocol.version import PROTOCOL_VERSION

PROTOCOL_YAML = Path(__file__).parents[2] / "configs" / "protocol.yaml"


def test_shipped_file_equals_builtin_defaults() -> None:
    data = yaml.safe_load(PROTOCOL_YAML.read_text())
    assert ProtocolConfig.model_validate(data) == ProtocolConfig(version=PROTOCOL_VERSION)


def test_other_version_is_refused_naming_the_source() -> None:
    data = yaml.safe_load(PROTOCOL_YAML.read_text()) | {"version": PROTOCOL_VERSION + 1}
    with pytest.raises(ProtocolVersionMismatch, match=r"x\.yaml has protocol version 2 .* 1"):
        ProtocolConfig.model_validate(data, context={"source": "x.yaml"})


def test_missing_version_is_refused() -> None:
    with pytest.raises(ValueError, match="version"):
        ProtocolConfig.model_validate({"cycle": {"length": 45}})
