"""Real-browser tests: Debian's headless chromium driven by Playwright, against the app
served by uvicorn on 127.0.0.1 (a free port, its own thread and event loop).

Never `playwright install`: the browser is /usr/bin/chromium (see PLATFORM.md), installed
by the README's test command (and .ci/run); without it these tests fail, never skip: a
skipped browser test would prove nothing.
"""

from __future__ import annotations

import shutil
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import playwright.async_api as playwright_api
import uvicorn
from litestar import Litestar

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# Screenshots kept for people to look at after a CI run (gitignored).
ARTEFACTS = Path(__file__).resolve().parents[1] / "artefacts"


async def launch(pw: playwright_api.Playwright) -> playwright_api.Browser:
    return await pw.chromium.launch(
        executable_path=CHROMIUM,
        args=["--headless=new", "--no-sandbox", "--disable-gpu",
              "--disable-background-networking", "--disable-component-update",
              "--no-first-run", "--disable-sync"],
    )


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextmanager
def serving(app: Litestar) -> Iterator[str]:
    """``app`` served on 127.0.0.1 while the block runs; yields its base URL."""
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                           lifespan="on"))
    thread = threading.Thread(target=server.run, name="uvicorn-test", daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("couldn't start uvicorn for the browser test")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
