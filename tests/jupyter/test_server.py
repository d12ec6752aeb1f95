"""A real jupyter_server on 127.0.0.1 with kernelkit.jupyter.KernelSpecManager: it lists
every kernel kernelkit finds (an environment's too) under names valid in URLs, serves
their logos, and starts an environment's kernel with its own interpreter and its
environment activated (driven over REST and the server's WebSocket with kernelkit's
remote client)."""

from __future__ import annotations

import json
import re
import secrets
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from kernelkit import Message
from kernelkit.remote import RemoteServer
from tests.envs import realenvs
from tests.remote.kernels import connected, started
from tests.remote.servers import RunningServer, _start, free_port, wait_until_up

pytestmark = pytest.mark.integration

VALID_NAME = r"^[A-Za-z0-9._\-]+$"


@dataclass
class Setup:
    server: RunningServer
    env: Path


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    base = tmp_path_factory.mktemp("jupyter-server")
    env = realenvs.install_ipykernel(realenvs.make_venv(base, "workon/proj"))
    # A broken kernelspec: listed by kernelkit with its reason, left out of the server's.
    broken = base / "data" / "kernels" / "broken"
    broken.mkdir(parents=True)
    (broken / "kernel.json").write_text('{"argv": [], "display_name": "Broken"}')
    port, token = free_port(), secrets.token_hex(16)
    (base / "srv" / "root").mkdir(parents=True)
    args = [
        "jupyter_server",
        "--allow-root",
        "--no-browser",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={base / 'srv' / 'root'}",
        "--ServerApp.kernel_spec_manager_class=kernelkit.jupyter.KernelSpecManager",
    ]
    server = _start(
        "jupyter_server",
        args,
        port,
        token,
        base / "srv",
        extra_env={"WORKON_HOME": str(base / "workon"), "JUPYTER_PATH": str(base / "data")},
    )
    try:
        wait_until_up([server])
        yield Setup(server, env)
    finally:
        server.stop()


def get(setup: Setup, path: str) -> httpx.Response:
    with httpx.Client(base_url=setup.server.url, headers=setup.server.headers, timeout=30) as c:
        return c.get(path)


def env_kernel_name(setup: Setup) -> str:
    specs = get(setup, "api/kernelspecs").json()["kernelspecs"]
    names = [n for n in specs if n.startswith("env--proj-")]
    assert len(names) == 1, sorted(specs)
    return names[0]


def test_lists_every_kernel_under_url_safe_names(setup: Setup) -> None:
    response = get(setup, "api/kernelspecs")
    assert response.status_code == 200
    specs = response.json()["kernelspecs"]
    assert "python3" in specs
    name = env_kernel_name(setup)

    assert all(re.match(VALID_NAME, n) for n in specs)
    spec = specs[name]["spec"]
    assert spec["argv"][0] == str(setup.env / "bin" / "python")
    assert spec["metadata"]["kernelkit"]["id"].startswith("env/proj-")
    assert "broken" not in specs
    assert "kernel spec/broken is left out: " in setup.server.log.read_text()


def test_names_are_stable_across_restarts(setup: Setup) -> None:
    from kernelkit.jupyter import KernelSpecManager

    first = env_kernel_name(setup)
    # A second manager in this process, over the same environments, names it alike.
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("WORKON_HOME", str(setup.env.parent))
        assert first in KernelSpecManager().find_kernel_specs()


def test_logos_are_served(setup: Setup) -> None:
    specs = get(setup, "api/kernelspecs").json()["kernelspecs"]
    logo = specs["python3"]["resources"]["logo-64x64"]
    response = get(setup, logo.lstrip("/"))
    assert response.status_code == 200
    assert response.content.startswith(b"\x89PNG")


async def test_an_environments_kernel_runs_activated_with_its_interpreter(
    setup: Setup, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = env_kernel_name(setup)
    token_file = tmp_path / "token"
    token_file.write_text(setup.server.token)
    server = RemoteServer("kk-test", setup.server.url, token_file=token_file)
    async with started(server, name) as p, connected(p) as kc:
        outputs: list[Message] = []
        code = "import os, sys; print(sys.executable); print(os.environ['VIRTUAL_ENV'])"
        reply = await kc.execute(code, outputs=outputs, timeout=30)
        assert reply.content["status"] == "ok"
        text = "".join(m.content.get("text", "") for m in outputs)
        assert text.split() == [str(setup.env / "bin" / "python"), str(setup.env)]
    assert sys.executable not in text


def test_kernels_only_kernelkit_can_launch_are_left_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from kernelkit.jupyter import KernelSpecManager

    d = tmp_path / "kernels" / "elsewhere"
    d.mkdir(parents=True)
    spec = {
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Elsewhere",
        "language": "python",
        "metadata": {"kernel_provisioner": {"provisioner_name": "remote-provisioner"}},
    }
    (d / "kernel.json").write_text(json.dumps(spec))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path))
    with caplog.at_level("WARNING"):
        specs = KernelSpecManager().get_all_specs()
    assert "elsewhere" not in specs
    assert "python3" in specs
    assert "kernelkit's provisioner 'remote-provisioner'" in caplog.text
