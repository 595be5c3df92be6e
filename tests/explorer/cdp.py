"""Headless Chromium driven over the Chrome DevTools Protocol, with nothing but `websockets`.

Playwright would need its own browser download; the protocol itself is a few JSON messages over
one WebSocket: `Page.navigate`, `Runtime.evaluate`, `Page.captureScreenshot`.
"""

import base64
import itertools
import json
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any

from websockets.sync.client import ClientConnection, connect

CHROMIUM = Path("/usr/bin/chromium")
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--remote-debugging-port=0",
)


class Chromium:
    """One headless browser with one page; `close()` ends the process."""

    def __init__(self, profile_dir: Path, *, timeout_s: float = 60.0) -> None:
        self.timeout_s = timeout_s
        self._ids = itertools.count(1)
        self._proc = subprocess.Popen(
            [str(CHROMIUM), *FLAGS, f"--user-data-dir={profile_dir}", "about:blank"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            port = self._devtools_port(profile_dir / "DevToolsActivePort")
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as r:
                page = next(t for t in json.load(r) if t["type"] == "page")
            self._ws: ClientConnection = connect(
                page["webSocketDebuggerUrl"], max_size=None, open_timeout=timeout_s
            )
        except BaseException:
            self._stop()
            raise

    def _devtools_port(self, path: Path) -> int:
        """Chromium writes the port it picked to this file once DevTools listens."""
        deadline = time.monotonic() + self.timeout_s
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(f"chromium exited with {self._proc.returncode}")
            if path.is_file() and path.read_text().strip():
                return int(path.read_text().split()[0])
            time.sleep(0.1)
        raise TimeoutError(f"chromium did not open DevTools in {self.timeout_s}s")

    def send(self, method: str, **params: Any) -> dict[str, Any]:
        """One command; events that arrive before its answer are dropped."""
        call_id = next(self._ids)
        self._ws.send(json.dumps({"id": call_id, "method": method, "params": params}))
        deadline = time.monotonic() + self.timeout_s
        while True:
            message = json.loads(self._ws.recv(timeout=max(0.0, deadline - time.monotonic())))
            if message.get("id") == call_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message["result"]

    def evaluate(self, expression: str) -> Any:
        result = self.send("Runtime.evaluate", expression=expression, returnByValue=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"script failed: {result['exceptionDetails']}")
        return result["result"].get("value")

    def open(self, url: str, *, width: int = 1280) -> None:
        """Load `url` and wait until the document is complete."""
        self.send(
            "Emulation.setDeviceMetricsOverride",
            width=width,
            height=900,
            deviceScaleFactor=1,
            mobile=False,
        )
        self.send("Page.navigate", url=url)
        deadline = time.monotonic() + self.timeout_s
        while (
            self.evaluate("location.href") != url
            or self.evaluate("document.readyState") != "complete"
        ):
            if time.monotonic() > deadline:
                raise TimeoutError(f"{url} did not load in {self.timeout_s}s")
            time.sleep(0.1)

    def screenshot(self, path: Path) -> None:
        """The whole page, not just the viewport, as PNG."""
        size = self.send("Page.getLayoutMetrics")["cssContentSize"]
        clip = {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1}
        result = self.send(
            "Page.captureScreenshot", format="png", clip=clip, captureBeyondViewport=True
        )
        path.write_bytes(base64.b64decode(result["data"]))

    def close(self) -> None:
        self._ws.close()
        self._stop()

    def _stop(self) -> None:
        self._proc.terminate()
        try:
            self._proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
