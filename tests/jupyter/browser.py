"""Debian's Chromium, headless, in its own process group, for playwright to drive over
the DevTools protocol (``connect_over_cdp``): the test owns the browser's processes and
kills the whole group at the end."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

#: As root in a container: no sandbox, no GPU, nothing fetched from the network.
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1280,900",
    "--remote-debugging-address=127.0.0.1",
    "--remote-debugging-port=0",
)


def chromium_path() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


@contextlib.contextmanager
def chromium(work: Path, *, timeout: float = 30.0) -> Iterator[str]:
    """A headless Chromium; yields its DevTools endpoint (``http://127.0.0.1:<port>``)."""
    exe = chromium_path()
    if exe is None:
        raise RuntimeError("chromium is not installed (./dev setup test installs it)")
    profile = work / "chromium-profile"
    profile.mkdir(parents=True)
    log = work / "chromium.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [exe, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "about:blank"],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        # Chromium writes the port it bound (port 0 asked) into the profile.
        active = profile / "DevToolsActivePort"
        deadline = time.monotonic() + timeout
        while not (active.exists() and active.read_text().strip()):
            if proc.poll() is not None:
                raise RuntimeError(
                    f"chromium exited with {proc.returncode}:\n{log.read_text(errors='replace')}"
                )
            if time.monotonic() > deadline:
                raise RuntimeError(f"chromium did not open its DevTools port in {timeout} s")
            time.sleep(0.05)
        port = int(active.read_text().split()[0])
        yield f"http://127.0.0.1:{port}"
    finally:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)
