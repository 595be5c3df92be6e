"""The explorer page in headless Chromium: what the browser renders matches the chain.

Needs Debian's chromium (`scripts/install_chromium.sh`); without it this test fails, it does not
skip, so a CI machine that lost its browser says so. The screenshot lands in the test's temp dir,
and also in `$BLOCKZERO_TEST_ARTIFACTS` when that is set.
"""

import os
import shutil
import struct
from pathlib import Path

import pytest
from cdp import CHROMIUM, Chromium
from explorer_subnet import EVIDENCE_CYCLES, Subnet, expected_losses

from blockzero.cli.explorer import snapshot_builder
from blockzero.explorer.server import ExplorerServer
from blockzero.settings import load_settings

READ_WEIGHTS = """[...document.querySelectorAll('#weights tr[data-validator]')].map(tr => [
  +tr.dataset.validator,
  [...tr.querySelectorAll('td[data-miner]')].map(td => [+td.dataset.miner, td.innerText])])"""
READ_HEADER = "[...document.querySelectorAll('#weights thead th')].map(th => th.innerText)"
READ_INCENTIVE = (
    "[...document.querySelectorAll('#weights tr.incentive th')].map(th => th.innerText)"
)
READ_METAGRAPH = """[...document.querySelectorAll('#metagraph tbody tr')].map(tr =>
  [...tr.querySelectorAll('td')].map(td => td.innerText))"""
READ_POINTS = """[...document.querySelectorAll('#loss-chart circle.point')].map(c => [
  c.dataset.series, +c.dataset.x, +c.dataset.y, c.getBoundingClientRect().top])"""
READ_CHART_BOX = """(() => { const r = document.querySelector('#loss-chart svg').getBoundingClientRect();
  return [r.width, r.height]; })()"""
READ_INJECTED = "[document.scripts.length, document.images.length]"


def test_rendered_page_matches_chain(subnet: Subnet, tmp_path: Path) -> None:
    if not CHROMIUM.is_file():
        pytest.fail(f"{CHROMIUM} is missing: run scripts/install_chromium.sh (as root)")
    build = snapshot_builder(load_settings(subnet.settings_args))
    with ExplorerServer(build) as server:
        browser = Chromium(tmp_path / "profile")
        try:
            browser.open(server.url)
            weights = browser.evaluate(READ_WEIGHTS)
            header = browser.evaluate(READ_HEADER)
            incentive = browser.evaluate(READ_INCENTIVE)
            metagraph = browser.evaluate(READ_METAGRAPH)
            points = browser.evaluate(READ_POINTS)
            chart_box = browser.evaluate(READ_CHART_BOX)
            injected = browser.evaluate(READ_INJECTED)
            shot = tmp_path / "explorer.png"
            browser.screenshot(shot)
        finally:
            browser.close()

    chain_weights = subnet.chain.weights()
    mg = subnet.chain.metagraph()
    miners = [2, 3, 4, 5]
    assert header == ["validator", *(f"uid {m}" for m in miners)]
    assert [v for v, _ in weights] == sorted(chain_weights)
    for v, cells in weights:
        expected = [[m, f"{chain_weights[v].get(m, 0.0):.4f}"] for m in miners]
        assert cells == expected
    by_uid = {n.uid: n for n in mg.neurons}
    assert incentive == ["incentive", *(f"{by_uid[m].incentive:.4f}" for m in miners)]
    assert [(int(r[0]), r[1]) for r in metagraph] == [(n.uid, n.hotkey) for n in mg.neurons]
    assert [r[2] for r in metagraph] == ["validator"] * 2 + ["miner"] * 4

    expected_points = {
        (series, cycle): loss
        for i, cycle in enumerate(EVIDENCE_CYCLES)
        for series, loss in expected_losses(i).items()
    }
    assert {(s, x): pytest.approx(y) for s, x, y, _ in points} == expected_points
    # Drawn, not just present: a lower loss sits lower on the screen, i.e. further down is larger.
    tops = {(s, x): top for s, x, _, top in points}
    for series in ("code", "general"):
        rows = [tops[(series, c)] for c in EVIDENCE_CYCLES]
        assert rows == sorted(rows) and rows[0] < rows[-1]
    assert chart_box[0] > 500 and chart_box[1] > 200
    assert injected == [0, 0]  # hostile hotkeys and reasons stayed text

    png = shot.read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and png[12:16] == b"IHDR"
    width, height = struct.unpack(">II", png[16:24])
    assert width >= 1000 and height > 900 and len(png) > 30_000
    artifacts = os.environ.get("BLOCKZERO_TEST_ARTIFACTS")
    if artifacts:
        Path(artifacts).mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, Path(artifacts) / "explorer.png")
