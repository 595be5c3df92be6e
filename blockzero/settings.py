"""Node settings: one typed tree, filled from four layers in one place, `load_settings`.

Precedence, highest first: command-line flag > `BLOCKZERO_*` environment variable > YAML config
file > default. Every leaf `section.field` of `Settings` is reachable in each layer:

    file:  wallet: {name: alice}
    env:   BLOCKZERO_WALLET__NAME=alice
    flag:  --wallet.name alice   (or --wallet.name=alice; a bool flag alone means true)

plus the Bittensor spellings in `_ALIASES` (`--netuid`, `--subtensor.network`,
`--subtensor.chain_endpoint`) and `--network NAME`, where `local` selects the embedded chain and
hub and anything else a Bittensor network with the Hugging Face hub. Flags apply left to right,
so a later flag overrides an earlier one. Unknown keys in any layer are errors that name the key
and where it came from. Loading reads the config file and nothing else: no mkdir, no environment
writes, paths kept as given (`~` is expanded by whoever opens them).

Adding a section is one line in `Settings`; its fields get a file key, a variable and a flag.
"""

import difflib
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from blockzero.protocol.config import ProtocolConfig
from blockzero.protocol.version import PROTOCOL_VERSION

ENV_PREFIX = "BLOCKZERO_"
_NAME = r"[A-Za-z0-9_-][A-Za-z0-9_.-]*"
# blockzero.delta.codecs.CodecName, spelled out so loading settings does not import torch.
Codec = Literal["bf16", "fp32", "int8", "topk_int8"]


class SettingsError(ValueError):
    """Settings that cannot be used, e.g. `unknown setting 'wallet.nme' (flag --wallet.nme)`."""


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class NetworkSettings(_Section):
    """Which chain: the embedded local one, or Bittensor (`name` or an explicit `endpoint`)."""

    backend: Literal["local", "bittensor"] = "local"
    netuid: int = Field(default=1, ge=0, le=65535)
    name: Literal["finney", "test", "local", "archive", "devnet"] = "finney"
    endpoint: str | None = Field(default=None, pattern=r"^wss?://\S+$")


class WalletSettings(_Section):
    """A Bittensor wallet: `<path>/<name>/hotkeys/<hotkey>`, so names must be plain file names."""

    name: str = Field(default="default", pattern=f"^{_NAME}$")
    hotkey: str = Field(default="default", pattern=f"^{_NAME}$")
    path: Path = Path("~/.bittensor/wallets")


class HubSettings(_Section):
    """Where files go: a local directory hub, or Hugging Face (`endpoint` None: its default)."""

    backend: Literal["local", "hf"] = "local"
    local_root: Path = Path("~/.blockzero/hub")
    endpoint: str | None = Field(default=None, pattern=r"^https?://\S+$")
    repo_owner: str | None = Field(default=None, pattern=f"^{_NAME}$")


class PathsSettings(_Section):
    work_dir: Path = Path("~/.blockzero")


class ProtocolSettings(_Section):
    """`path` None: the built-in protocol, identical to `configs/protocol.yaml`."""

    path: Path | None = None


class MinerSettings(_Section):
    """The miner's knobs; docs/miner.md explains each and `blockzero miner --plan` checks memory."""

    registry: Path = Path("configs/groups/tiny-qwen3-moe.yaml")
    data: Path = Path("configs/data/local.yaml")
    repo_name: str = Field(default="blockzero-miner", pattern=f"^{_NAME}$")
    publisher: str | None = None
    mode: Literal["full_routing", "partial"] = "full_routing"
    frozen_dtype: Literal["float32", "bfloat16", "int8"] = "bfloat16"
    group_dtype: Literal["float32", "bfloat16"] = "float32"
    optimizer: Literal["adamw", "adamw8bit"] = "adamw"
    activation_checkpointing: bool = False
    device: Literal["auto", "cpu", "cuda"] = "auto"
    batch_size: int = Field(default=8, ge=1)
    lr: float = Field(default=1e-3, gt=0)
    headroom_s: float = Field(default=20.0, ge=0)
    min_train_s: float = Field(default=5.0, gt=0)
    block_time_s: float | None = Field(default=None, gt=0)
    gpu_memory_gib: float = Field(default=16.0, gt=0)
    max_stale_cycles: int = Field(default=0, ge=0)
    strategy: Literal[
        "honest", "zero", "noise", "sign_flip", "scale", "nan", "copy", "copy_noise"
    ] = "honest"
    copy_from: str | None = None
    codec: Codec = "bf16"
    density: float = Field(default=0.05, gt=0, le=0.1)


class LoggingSettings(_Section):
    debug: bool = False


class ValidatorSettings(_Section):
    """The validator's knobs (docs/validator.md). Validators must share the scoring fields
    (`eval_sequences` .. `replay_cycles`) for their scores to agree."""

    registry: Path = Path("configs/groups/tiny-qwen3-moe.yaml")
    data: Path = Path("configs/data/local.yaml")
    model_repo: str | None = Field(default=None, pattern=r"^[A-Za-z0-9._-]+/[A-Za-z0-9._-]+$")
    evidence_repo: str | None = Field(default=None, pattern=r"^[A-Za-z0-9._-]+/[A-Za-z0-9._-]+$")
    publisher: str | None = None
    device: str = "cpu"
    eval_sequences: int = Field(default=64, ge=4)
    batch_size: int = Field(default=32, ge=1)
    significance: float = Field(default=0.01, gt=0, lt=0.5)
    general_tolerance: float = Field(default=0.01, ge=0)
    max_delta_ratio: float = Field(default=0.5, gt=0)
    duplicate_cosine: float = Field(default=0.97, gt=0, le=1)
    min_gain: float = Field(default=0.001, ge=0)
    min_relative_gain: float = Field(default=0.25, ge=0, le=1)
    replay_cycles: int = Field(default=2, ge=0)
    max_submission_bytes: int = Field(default=1 << 30, gt=0)
    download_timeout_s: float = Field(default=60.0, gt=0)
    download_workers: int = Field(default=4, ge=1)
    # Plain averaging measured best over 3 short runs (docs/benchmarks.md, recipe sweep); a
    # momentum > 0 makes the outer step Nesterov SGD, as DiLoCo's long runs use.
    outer_lr: float = Field(default=1.0, gt=0)
    outer_momentum: float = Field(default=0.0, ge=0, lt=1)
    ema_alpha: float = Field(default=0.3, gt=0, le=1)
    codecs: list[Codec] = Field(default=["bf16", "fp32", "int8", "topk_int8"], min_length=1)
    max_density: float = Field(default=0.1, gt=0, le=1)

    @field_validator("codecs", mode="before")
    @classmethod
    def _comma_separated(cls, value: Any) -> Any:
        # Flags and environment variables arrive as one string: `--validator.codecs bf16,int8`.
        return value.split(",") if isinstance(value, str) else value


class Settings(BaseModel):
    """Everything a node is told at start. One line per section."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    network: NetworkSettings = NetworkSettings()
    wallet: WalletSettings = WalletSettings()
    hub: HubSettings = HubSettings()
    paths: PathsSettings = PathsSettings()
    protocol: ProtocolSettings = ProtocolSettings()
    logging: LoggingSettings = LoggingSettings()
    validator: ValidatorSettings = ValidatorSettings()
    miner: MinerSettings = MinerSettings()

    @field_validator("network")
    @classmethod
    def _netuid_explicit_on_bittensor(cls, network: NetworkSettings) -> NetworkSettings:
        # The default netuid suits the local chain; on a real network it would be someone else's.
        if network.backend == "bittensor" and "netuid" not in network.model_fields_set:
            raise ValueError(
                "network.netuid must be set for the bittensor backend "
                "(--netuid N, BLOCKZERO_NETWORK__NETUID or network.netuid in the config file)"
            )
        return network


def _network_preset(name: str) -> dict[str, str]:
    if name == "local":
        return {"network.backend": "local", "hub.backend": "local"}
    return {"network.backend": "bittensor", "network.name": name, "hub.backend": "hf"}


_ALIASES: dict[str, Callable[[str], dict[str, str]]] = {
    "--network": _network_preset,
    "--netuid": lambda v: {"network.netuid": v},
    "--subtensor.network": lambda v: {"network.backend": "bittensor", "network.name": v},
    "--subtensor.chain_endpoint": lambda v: {"network.backend": "bittensor", "network.endpoint": v},
}

_Layer = dict[str, tuple[Any, str]]
"""Dotted key -> (value, where it came from)."""


def load_settings(
    argv: Sequence[str] | None = None,
    env: Mapping[str, str] | None = None,
    config_path: Path | str | None = None,
) -> Settings:
    """Settings from flags, environment and config file; pure given its inputs.

    `None` means none of that layer: pass `sys.argv[1:]` and `os.environ` explicitly. A
    `--config PATH` flag replaces `config_path`. Raises `SettingsError` naming the bad key.
    """
    leaves = _leaves(Settings)
    flags, flag_config = _flag_layer(list(argv or []), leaves)
    path = flag_config or config_path
    merged: _Layer = {}
    if path is not None:
        merged |= _file_layer(Path(path), leaves)
    merged |= _env_layer(env or {}, leaves)
    merged |= flags
    return _validate(merged)


def load_protocol_config(settings: Settings) -> ProtocolConfig:
    """The protocol file named in settings, or the built-in protocol when none is named."""
    path = settings.protocol.path
    if path is None:
        return ProtocolConfig(version=PROTOCOL_VERSION)
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as e:
        raise SettingsError(f"cannot read protocol config {path}: {e}") from e
    try:
        return ProtocolConfig.model_validate(data, context={"source": str(path)})
    except ValidationError as e:
        raise SettingsError(f"invalid protocol config {path}:\n{_describe(e, {})}") from e


def _leaves(model: type[BaseModel], prefix: str = "") -> dict[str, Any]:
    """Every settable dotted key, mapped to its annotation."""
    out: dict[str, Any] = {}
    for name, field in model.model_fields.items():
        ann = field.annotation
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            out |= _leaves(ann, f"{prefix}{name}.")
        else:
            out[f"{prefix}{name}"] = ann
    return out


def _unknown(key: str, source: str, known: Sequence[str]) -> SettingsError:
    close = difflib.get_close_matches(key, known, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return SettingsError(f"unknown setting {key!r} ({source}){hint}")


def _flag_layer(argv: list[str], leaves: Mapping[str, Any]) -> tuple[_Layer, str | None]:
    layer: _Layer = {}
    config: str | None = None
    i = 0
    while i < len(argv):
        token = argv[i]
        i += 1
        if not token.startswith("--"):
            raise SettingsError(f"unexpected argument {token!r}: settings are --key value flags")
        flag, eq, value = token.partition("=")
        key = flag[2:]
        if flag != "--config" and flag not in _ALIASES and key not in leaves:
            known = ["config", *(a[2:] for a in _ALIASES), *leaves]
            raise _unknown(key, f"flag {flag}", known)
        if not eq:
            if leaves.get(key) is bool:
                value = "true"
            elif i < len(argv) and not argv[i].startswith("--"):
                value = argv[i]
                i += 1
            else:
                raise SettingsError(f"flag {flag} needs a value")
        if flag == "--config":
            config = value
        elif flag in _ALIASES:
            layer |= {k: (v, f"flag {flag}") for k, v in _ALIASES[flag](value).items()}
        else:
            layer[key] = (value, f"flag {flag}")
    return layer, config


def _env_layer(env: Mapping[str, str], leaves: Mapping[str, Any]) -> _Layer:
    layer: _Layer = {}
    for var, value in env.items():
        if not var.startswith(ENV_PREFIX):
            continue
        key = ".".join(var[len(ENV_PREFIX) :].lower().split("__"))
        if key not in leaves:
            known = [ENV_PREFIX + k.upper().replace(".", "__") for k in leaves]
            raise _unknown(var, "environment variable", known)
        layer[key] = (value, f"environment variable {var}")
    return layer


def _file_layer(path: Path, leaves: Mapping[str, Any]) -> _Layer:
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as e:
        raise SettingsError(f"cannot read config file {path}: {e}") from e
    layer: _Layer = {}

    def walk(node: Any, section: str) -> None:
        if not isinstance(node, dict):
            raise SettingsError(f"config file {path}: {section or 'top level'} must be a mapping")
        for name, value in node.items():
            key = f"{section}.{name}" if section else str(name)
            if key in leaves:
                layer[key] = (value, f"config file {path}")
            elif any(k.startswith(f"{key}.") for k in leaves):
                walk(value, key)
            else:
                raise _unknown(key, f"config file {path}", list(leaves))

    walk(data, "")
    return layer


def _validate(layer: _Layer) -> Settings:
    nested: dict[str, Any] = {}
    for key, (value, _) in layer.items():
        *parents, leaf = key.split(".")
        node = nested
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    try:
        return Settings.model_validate(nested)
    except ValidationError as e:
        raise SettingsError(f"invalid settings:\n{_describe(e, layer)}") from e


def _describe(error: ValidationError, layer: _Layer) -> str:
    """One line per problem: the key, the value given, where it came from, what is wrong."""
    lines = []
    for problem in error.errors():
        key = ".".join(str(p) for p in problem["loc"])
        msg = re.sub(r"^Value error, ", "", problem["msg"])
        if key in layer:
            value, source = layer[key]
            lines.append(f"  {key} = {value!r} ({source}): {msg}")
        else:
            lines.append(f"  {key}: {msg}" if key else f"  {msg}")
    return "\n".join(lines)
