"""Headless Chromium driven through the DevTools protocol: the page tests (service page,
labelling page) and bench/label_speed.py type, press keys, click and read pages with it."""
from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any, Iterator

CHROME = os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")

#: Key events for the keys the pages use (DevTools needs the code and key code too).
_KEYS = {"Enter": ("Enter", 13, "\r"), "Escape": ("Escape", 27, ""), "ArrowLeft": ("ArrowLeft", 37, ""),
         "ArrowRight": ("ArrowRight", 39, ""), "/": ("Slash", 191, "/")}


class DevTools:
    """Just enough of the Chrome DevTools Protocol to type, click and read a page."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.next_id = 0
        self.events: list[dict] = []

    def call(self, method: str, **params: Any) -> dict:
        self.next_id += 1
        self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv(timeout=60))
            if msg.get("id") == self.next_id:
                assert "error" not in msg, msg
                return msg["result"]
            self.events.append(msg)

    def js(self, expr: str) -> Any:
        return self.call("Runtime.evaluate", expression=expr, returnByValue=True)["result"].get("value")

    def key(self, key: str) -> None:
        """Press and release one key, as a keyboard does (keydown with its text, keyup)."""
        if key in _KEYS:
            code, vk, text = _KEYS[key]
        elif len(key) == 1 and key.isdigit():
            code, vk, text = f"Digit{key}", ord(key), key
        elif len(key) == 1 and key.isalpha():
            code, vk, text = f"Key{key.upper()}", ord(key.upper()), key
        else:
            raise ValueError(f"no key event for {key!r}")
        down = dict(type="keyDown" if text else "rawKeyDown", key=key, code=code, windowsVirtualKeyCode=vk, nativeVirtualKeyCode=vk)
        if text:
            down.update(text=text, unmodifiedText=text)
        self.call("Input.dispatchKeyEvent", **down)
        self.call("Input.dispatchKeyEvent", type="keyUp", key=key, code=code, windowsVirtualKeyCode=vk, nativeVirtualKeyCode=vk)

    def type(self, text: str) -> None:
        self.call("Input.insertText", text=text)

    def wait(self, expr: str, timeout: float = 60.0) -> Any:
        """Poll ``expr`` until it is truthy; its value (the assertion names the expression).
        60 s: a page served by a labelling server that resumes beside other busy
        processes (a 2-core machine at load 4) once took over 30 s to paint."""
        end = time.time() + timeout
        while time.time() < end:
            got = self.js(expr)
            if got:
                return got
            time.sleep(0.02)
        raise AssertionError(f"timed out waiting for {expr}")

    def open(self, url: str) -> None:
        for domain in ("Page.enable", "Runtime.enable", "Log.enable"):
            self.call(domain)
        self.call("Page.navigate", url=url)
        self.wait("document.documentElement.getAttribute('data-ready')=='1'")

    def screenshot(self, path: Path) -> Path:
        path.write_bytes(base64.b64decode(self.call("Page.captureScreenshot", format="png")["data"]))
        return path

    def errors(self) -> list[dict]:
        """Script exceptions and console/log errors seen so far."""
        self.call("Runtime.evaluate", expression="1")  # flush pending events
        return [e for e in self.events if e.get("method") == "Runtime.exceptionThrown"
                or (e.get("method") == "Runtime.consoleAPICalled" and e["params"]["type"] == "error")
                or (e.get("method") == "Log.entryAdded" and e["params"]["entry"]["level"] == "error")]


@contextlib.contextmanager
def chromium(profile: Path, size: str = "1100,1400") -> Iterator[DevTools]:
    """A headless Chromium with one blank page, driven by the DevTools protocol."""
    import httpx
    from websockets.sync.client import connect

    assert CHROME, "chromium is missing: run scripts/setup.sh --with-browser"
    proc = subprocess.Popen([CHROME, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                             "--disable-component-update", "--disable-sync", "--remote-debugging-port=0", f"--user-data-dir={profile}",
                             f"--window-size={size}", "about:blank"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        port_file = profile / "DevToolsActivePort"
        end = time.time() + 60
        while not (port_file.exists() and port_file.read_text().strip()) and time.time() < end:
            time.sleep(0.1)
        port = port_file.read_text().split()[0]
        page = next(t for t in httpx.get(f"http://127.0.0.1:{port}/json/list").json() if t["type"] == "page")
        with connect(page["webSocketDebuggerUrl"], max_size=1 << 26) as ws:
            yield DevTools(ws)
    finally:
        proc.kill()
        proc.wait()
