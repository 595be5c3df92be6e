"""`blockzero weights` and `blockzero explorer` through typer, with settings flags passed on."""

import json

import typer
from explorer_subnet import Subnet
from typer.testing import CliRunner

from blockzero.cli.explorer import register

app = typer.Typer()
register(app)
runner = CliRunner()


def test_weights_table(subnet: Subnet) -> None:
    result = runner.invoke(app, ["weights", *subnet.settings_args], terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "weights on netuid 1 (local)" in result.output
    incentive = {n.uid: n.incentive for n in subnet.chain.metagraph().neurons}
    lines = {line.split("│")[1].strip(): line for line in result.output.splitlines() if "│" in line}
    for m in (2, 3, 4, 5):
        assert f"{incentive[m]:.4f}" in lines[str(m)]
    assert "0.5000" in lines["2"] and "0.7500" in lines["4"]  # v0 -> 2, v1 -> 4


def test_weights_json_matches_chain(subnet: Subnet) -> None:
    result = runner.invoke(app, ["weights", "--json", *subnet.settings_args])
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    weights = {int(v): {int(m): w for m, w in row.items()} for v, row in out["weights"].items()}
    assert weights == subnet.chain.weights()
    chain = [(n.uid, n.hotkey, n.incentive) for n in subnet.chain.metagraph().neurons]
    assert [(n["uid"], n["hotkey"], n["incentive"]) for n in out["neurons"]] == chain


def test_errors_are_one_line(subnet: Subnet, tmp_path) -> None:
    missing = ["weights", "--network", "local", "--paths.work_dir", str(tmp_path / "none")]
    result = runner.invoke(app, missing)
    assert result.exit_code == 1 and result.output.startswith("error: FileNotFoundError")
    result = runner.invoke(app, ["weights", "--netuid", "1", "--wallet.nme", "x"])
    assert result.exit_code == 1 and "did you mean 'wallet.name'" in result.output


def test_explorer_fails_before_serving_when_the_chain_is_missing(tmp_path) -> None:
    args = ["explorer", "--port", "0", "--network", "local", "--paths.work_dir", str(tmp_path)]
    result = runner.invoke(app, args)
    assert result.exit_code == 1 and "no local chain" in result.output
