"""JupyterLab on kernelkit, driven in headless Chromium: JupyterLab started on 127.0.0.1
with kernelkit's KernelSpecManager and ServerKernelManager shows an environment's kernel
in its launcher; a notebook made from that card runs a cell in the environment's own
interpreter and shows its output. A screenshot is kept (its path is printed).

One JupyterLab and one Chromium for the module; both are stopped by process group."""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.envs import realenvs
from tests.jupyter.browser import chromium, chromium_path
from tests.jupyter.test_server_kernels import SERVER_FLAGS
from tests.remote.servers import RunningServer, _start, free_port, wait_until_up

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(chromium_path() is None, reason="chromium is not installed"),
]

#: How long one step may wait (the page, the kernel, the output).
WAIT_MS = 20_000


@dataclass
class Lab:
    server: RunningServer
    env: Path
    work: Path


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    base = tmp_path_factory.mktemp("lab")
    env = realenvs.install_ipykernel(realenvs.make_venv(base, "workon/labproj"))
    port, token = free_port(), secrets.token_hex(16)
    (base / "srv" / "root").mkdir(parents=True)
    # No "official Jupyter news?" toast over the notebook.
    notification = base / "lab-settings" / "@jupyterlab" / "apputils-extension"
    notification.mkdir(parents=True)
    (notification / "notification.jupyterlab-settings").write_text('{"fetchNews": "false"}')
    args = [
        "jupyterlab",
        "--allow-root",
        "--no-browser",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={base / 'srv' / 'root'}",
        f"--LabApp.user_settings_dir={base / 'lab-settings'}",
        f"--LabApp.workspaces_dir={base / 'lab-workspaces'}",
        "--LabApp.news_url=",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        *SERVER_FLAGS,
    ]
    extra_env = {
        "WORKON_HOME": str(base / "workon"),
        "JUPYTER_PATH": str(base / "data"),
        "JUPYTER_DATA_DIR": str(base / "user-data"),  # the notebook-signing key goes here
    }
    server = _start("jupyterlab", args, port, token, base / "srv", extra_env=extra_env)
    try:
        wait_until_up([server])
        yield Lab(server, env, base)
    finally:
        server.stop()


def env_display_name(lab: Lab) -> str:
    with httpx.Client(
        base_url=lab.server.url, headers=lab.server.headers, timeout=30, trust_env=False
    ) as c:
        specs = c.get("api/kernelspecs").json()["kernelspecs"]
    names = [n for n in specs if n.startswith("env--labproj-")]
    assert len(names) == 1, sorted(specs)
    name: str = specs[names[0]]["spec"]["display_name"]
    return name


def test_a_notebook_runs_in_an_environments_kernel_from_the_launcher(
    lab: Lab, tmp_path: Path
) -> None:
    from playwright.sync_api import sync_playwright

    started = time.monotonic()
    display_name = env_display_name(lab)
    shot = tmp_path / "jupyterlab.png"
    with chromium(tmp_path) as endpoint, sync_playwright() as pw:
        browser = pw.chromium.connect_over_cdp(endpoint)
        try:
            page = browser.contexts[0].new_page()
            page.set_default_timeout(WAIT_MS)
            page.goto(f"{lab.server.url}lab?token={lab.server.token}")

            card = page.locator(
                f'.jp-LauncherCard[data-category="Notebook"][title="{display_name}"]'
            )
            card.wait_for()
            page.screenshot(path=str(tmp_path / "launcher.png"))
            card.click()

            # Lab runs a cell only once its kernel is connected (else Shift+Enter just
            # moves on): wait for the status bar to show the kernel idle.
            page.locator(".jp-StatusBar-Widget", has_text=f"{display_name} | Idle").wait_for()
            editor = page.locator(".jp-NotebookPanel .jp-Cell .cm-content").first
            editor.wait_for()
            editor.click()
            page.keyboard.type("import sys; print('running in', sys.executable)")
            page.keyboard.press("Shift+Enter")

            expected = f"running in {lab.env / 'bin' / 'python'}"
            output = page.locator(".jp-OutputArea-output", has_text=expected)
            try:
                output.wait_for()
            finally:
                page.screenshot(path=str(shot))  # kept on failure too
        finally:
            browser.close()
    elapsed = time.monotonic() - started
    print(f"\nJupyterLab screenshots: {tmp_path / 'launcher.png'}, {shot} ({elapsed:.1f} s)")
    assert shot.stat().st_size > 0
    log = lab.server.log.read_text(errors="replace")
    assert "Kernel started" in log
