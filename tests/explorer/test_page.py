"""The page shows every row of the snapshot, escapes peer text, and serves JSON alike."""

import json
import re
import urllib.error
import urllib.request

import pytest
from explorer_subnet import HOSTILE_HOTKEY, HOSTILE_REASON, Subnet

from blockzero.chain.errors import ChainUnavailable
from blockzero.cli.explorer import snapshot_builder
from blockzero.explorer.page import render_page
from blockzero.explorer.server import ExplorerServer
from blockzero.explorer.snapshot import ExplorerSnapshot
from blockzero.settings import load_settings


@pytest.fixture
def snap(subnet: Subnet) -> ExplorerSnapshot:
    return snapshot_builder(load_settings(subnet.settings_args))()


def test_page_has_a_row_per_neuron_and_weight(snap: ExplorerSnapshot) -> None:
    page = render_page(snap)
    for n in snap.neurons:
        assert f'<tr data-uid="{n.uid}" data-hotkey="{n.hotkey}"' in page
    for v, row in snap.weights.items():
        assert f'<tr data-validator="{v}">' in page
        for m, w in row.items():
            assert f'data-miner="{m}" data-weight="{w!r}"' in page
    num_points = sum(len(c.global_losses) for c in snap.evidence)
    assert page.count('<circle class="point"') == num_points
    for g in snap.registry.groups:
        assert f'<tr data-group="{g.id}">' in page


def test_peer_text_is_escaped(snap: ExplorerSnapshot) -> None:
    page = render_page(snap)
    assert "<script" not in page and "<img" not in page
    assert "&lt;script&gt;alert(&quot;pwned&quot;)&lt;/script&gt;" in page
    assert 'data-hotkey="&lt;img src=x onerror=&quot;alert(1)&quot;&gt;"' in page
    assert HOSTILE_REASON not in page and HOSTILE_HOTKEY not in page


def test_page_without_evidence_or_weights(snap: ExplorerSnapshot) -> None:
    bare = snap.model_copy(update={"evidence": [], "weights": {}, "registry": None})
    page = render_page(bare)
    assert "No evidence published yet" in page and "No validator has set weights" in page
    assert "<svg" not in page and "No expert-group registry" in page


def test_server_serves_page_json_and_errors(snap: ExplorerSnapshot) -> None:
    with ExplorerServer(lambda: snap) as server:
        assert server.url.startswith("http://127.0.0.1:")
        with urllib.request.urlopen(server.url, timeout=10) as r:
            assert r.headers["Content-Type"].startswith("text/html")
            assert "script-src" not in r.headers["Content-Security-Policy"]
            assert re.search(r"<title>BlockZero netuid 1 on local</title>", r.read().decode())
        with urllib.request.urlopen(server.url + "api/snapshot", timeout=10) as r:
            assert ExplorerSnapshot.model_validate(json.loads(r.read())) == snap
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(server.url + "nope", timeout=10)
        assert e.value.code == 404


def test_server_answers_503_when_the_chain_fails() -> None:
    def broken() -> ExplorerSnapshot:
        raise ChainUnavailable("node down")

    with ExplorerServer(broken) as server:
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(server.url, timeout=10)
        assert e.value.code == 503
        assert b"ChainUnavailable: node down" in e.value.read()
