from pathlib import Path

import pytest

from blockzero.protocol.config import ProtocolConfig
from blockzero.protocol.errors import ProtocolVersionMismatch
from blockzero.protocol.version import PROTOCOL_VERSION
from blockzero.settings import Settings, SettingsError, load_protocol_config, load_settings

CONFIGS = Path(__file__).parents[2] / "configs"


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "node.yaml"
    path.write_text("wallet:\n  name: from-file\n  hotkey: file-hk\nlogging:\n  debug: true\n")
    return path


def test_defaults() -> None:
    assert load_settings() == Settings()
    assert load_settings().network.backend == "local"


def test_file_overrides_default(config_file: Path) -> None:
    settings = load_settings(config_path=config_file)
    assert settings.wallet.name == "from-file"
    assert settings.wallet.path == Path("~/.bittensor/wallets")
    assert settings.logging.debug is True


def test_env_overrides_file(config_file: Path) -> None:
    env = {"BLOCKZERO_WALLET__NAME": "from-env", "BLOCKZERO_LOGGING__DEBUG": "false", "HOME": "/x"}
    settings = load_settings(env=env, config_path=config_file)
    assert (settings.wallet.name, settings.wallet.hotkey) == ("from-env", "file-hk")
    assert settings.logging.debug is False


def test_flag_overrides_env(config_file: Path) -> None:
    settings = load_settings(
        ["--wallet.name", "from-flag", "--paths.work_dir=/data/bz"],
        {"BLOCKZERO_WALLET__NAME": "from-env"},
        config_file,
    )
    assert settings.wallet.name == "from-flag"
    assert settings.paths.work_dir == Path("/data/bz")


def test_config_flag_replaces_config_path(config_file: Path, tmp_path: Path) -> None:
    other = tmp_path / "other.yaml"
    other.write_text("wallet: {hotkey: other-hk}\n")
    settings = load_settings(["--config", str(other)], config_path=config_file)
    assert (settings.wallet.name, settings.wallet.hotkey) == ("default", "other-hk")


def test_bittensor_flags() -> None:
    settings = load_settings(
        [
            "--netuid=42",
            "--subtensor.network",
            "test",
            "--wallet.hotkey",
            "m1",
            "--wallet.path",
            "/w",
            "--logging.debug",
        ]
    )
    assert settings.network.model_dump() == {
        "backend": "bittensor",
        "netuid": 42,
        "name": "test",
        "endpoint": None,
    }
    assert (settings.wallet.hotkey, settings.wallet.path) == ("m1", Path("/w"))
    assert settings.logging.debug is True
    endpoint = load_settings(["--netuid", "1", "--subtensor.chain_endpoint", "ws://127.0.0.1:9944"])
    assert endpoint.network.endpoint == "ws://127.0.0.1:9944"


def test_network_local_selects_embedded_chain_and_hub() -> None:
    env = {"BLOCKZERO_NETWORK__BACKEND": "bittensor", "BLOCKZERO_HUB__BACKEND": "hf"}
    settings = load_settings(["--network", "local"], env)
    assert (settings.network.backend, settings.hub.backend) == ("local", "local")
    finney = load_settings(["--network", "finney", "--netuid", "9"])
    assert (finney.network.backend, finney.network.name, finney.hub.backend) == (
        "bittensor",
        "finney",
        "hf",
    )


def test_later_flag_wins() -> None:
    settings = load_settings(["--network", "local", "--hub.backend", "hf", "--wallet.name", "a"])
    assert settings.hub.backend == "hf"
    assert load_settings(["--wallet.name", "a", "--wallet.name", "b"]).wallet.name == "b"


@pytest.mark.parametrize(
    ("argv", "env", "message"),
    [
        (
            ["--wallet.nme", "x"],
            {},
            "unknown setting 'wallet.nme' (flag --wallet.nme); did you mean 'wallet.name'",
        ),
        (["--frobnicate"], {}, "unknown setting 'frobnicate' (flag --frobnicate)"),
        ([], {"BLOCKZERO_WALLET__NAMES": "x"}, "unknown setting 'BLOCKZERO_WALLET__NAMES'"),
        (["miner"], {}, "unexpected argument 'miner'"),
        (["--wallet.name"], {}, "flag --wallet.name needs a value"),
        (["--netuid", "abc"], {}, "network.netuid = 'abc' (flag --netuid)"),
        (
            [],
            {"BLOCKZERO_NETWORK__NETUID": "-1"},
            "(environment variable BLOCKZERO_NETWORK__NETUID)",
        ),
        (
            ["--subtensor.network", "finney"],
            {},
            "network.netuid must be set for the bittensor backend",
        ),
        (["--wallet.hotkey", "../../etc"], {}, "wallet.hotkey = '../../etc'"),
        (["--subtensor.chain_endpoint", "http://x", "--netuid", "1"], {}, "network.endpoint"),
    ],
)
def test_bad_flags_and_env(argv: list[str], env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError) as info:
        load_settings(argv, env)
    assert message in str(info.value)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("wallet:\n  nme: x\n", "unknown setting 'wallet.nme' (config file"),
        ("walet:\n  name: x\n", "unknown setting 'walet'"),
        ("wallet: alice\n", "wallet must be a mapping"),
        ("- a\n", "top level must be a mapping"),
        ("network: {netuid: x}\n", "network.netuid = 'x' (config file"),
    ],
)
def test_bad_config_file(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(SettingsError) as info:
        load_settings(config_path=path)
    assert message in str(info.value)


def test_missing_config_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match=r"cannot read config file .*nope\.yaml"):
        load_settings(["--config", str(tmp_path / "nope.yaml")])


def test_no_side_effects(tmp_path: Path) -> None:
    env = {"BLOCKZERO_PATHS__WORK_DIR": str(tmp_path / "work"), "OTHER": "1"}
    before = dict(env)
    settings = load_settings(["--hub.local_root", str(tmp_path / "hub")], env)
    assert env == before
    assert not settings.paths.work_dir.exists()
    assert not settings.hub.local_root.exists()


@pytest.mark.parametrize("preset", ["local", "finney", "testnet"])
def test_presets_load(preset: str) -> None:
    settings = load_settings(["--netuid", "3"], config_path=CONFIGS / f"{preset}.yaml")
    assert settings.network.backend == ("local" if preset == "local" else "bittensor")
    assert settings.hub.backend == ("local" if preset == "local" else "hf")


def test_protocol_config_from_settings(tmp_path: Path) -> None:
    builtin = load_protocol_config(load_settings())
    assert builtin == ProtocolConfig(version=PROTOCOL_VERSION)
    shipped = load_settings(["--protocol.path", str(CONFIGS / "protocol.yaml")])
    assert load_protocol_config(shipped) == builtin
    future = tmp_path / "protocol.yaml"
    future.write_text(f"version: {PROTOCOL_VERSION + 1}\n")
    with pytest.raises(ProtocolVersionMismatch, match=f"{future} has protocol version"):
        load_protocol_config(load_settings(["--protocol.path", str(future)]))
