"""Isolate huggingface_hub from this machine: no real cache, token, endpoint or network.

huggingface_hub reads its paths into ``constants`` at import, so setting env vars is not enough:
every constant under the real ``HF_HOME`` is re-pointed at a temp dir. Its HTTP client is
replaced by one that fails every request, and the original factory is restored afterwards.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest
from fake_hf import install_transport
from huggingface_hub import constants, set_client_factory
from huggingface_hub.utils import _http


def _no_network(request: httpx2.Request) -> httpx2.Response:
    raise AssertionError(f"unexpected network call in a test: {request.method} {request.url}")


@pytest.fixture(autouse=True)
def isolated_hf(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    home = tmp_path / "hf_home"
    for var in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_HUB_OFFLINE", "HF_OIDC_RESOURCE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HF_HOME", str(home))
    real_home = constants.HF_HOME
    for name, value in list(vars(constants).items()):
        if name.isupper() and isinstance(value, str) and value.startswith(real_home):
            monkeypatch.setattr(constants, name, str(home) + value[len(real_home) :])
    monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(home / "token"))
    monkeypatch.setattr(constants, "HF_STORED_TOKENS_PATH", str(home / "stored_tokens"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    # No public getter exists for the factory; read it to restore exactly what was installed.
    original_factory = _http._GLOBAL_CLIENT_FACTORY
    install_transport(_no_network)
    yield home
    set_client_factory(original_factory)
