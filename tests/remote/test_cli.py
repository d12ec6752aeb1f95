"""The command line end to end on the three servers: ``kernelkit list``, ``run`` and
``start`` on remote kernels (a subprocess each, as a user types them)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import pytest

from kernelkit.remote import RemoteServer, ServerAPI, ServerRegistry
from tests.remote.servers import RunningServer, free_port

pytestmark = pytest.mark.integration


def _kernelkit(*args: str, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "KERNEL_USERNAME": "kernelkit-test"}  # EG refuses root
    return subprocess.run(
        [sys.executable, "-m", "kernelkit", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        check=False,
    )


@pytest.mark.parametrize("kind", ["js", "kg", "eg"])
def test_list_then_run_on_each_server(
    kind: str, request: pytest.FixtureRequest, registry: ServerRegistry
) -> None:
    request.getfixturevalue(kind)
    listed = _kernelkit("list")
    assert listed.returncode == 0, listed.stderr
    assert f"remote/{kind}/python3" in listed.stdout
    label = {"js": "Jupyter Server", "kg": "Kernel Gateway", "eg": "Enterprise Gateway"}[kind]
    assert f"server {kind}  " in listed.stdout  # grouped by server, with its health
    assert f"({label}" in listed.stdout
    done = _kernelkit("run", "--kernel", f"remote/{kind}/python3", "-c", "print(6 * 7)")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "42"


async def test_run_attaches_to_a_running_kernel(registry: ServerRegistry, js: RemoteServer) -> None:
    async with ServerAPI(js) as api:
        model = await api.start_kernel("python3")
        try:
            first = _kernelkit("run", "--kernel", f"remote/js/kernels/{model.id}", "-c", "x = 41")
            assert first.returncode == 0, first.stderr
            second = _kernelkit(
                "run", "--kernel", f"remote/js/kernels/{model.id}", "-c", "print(x + 1)"
            )
            assert second.returncode == 0, second.stderr
            assert second.stdout.strip() == "42"
            # Attaching is not owning: the kernel still runs.
            assert await api.get_kernel(model.id) is not None
        finally:
            await api.delete_kernel(model.id)


async def test_attach_client_in_the_library(registry: ServerRegistry, js: RemoteServer) -> None:
    from kernelkit.remote import attach_client

    async with ServerAPI(js) as api:
        model = await api.start_kernel("python3")
        try:
            async with attach_client(f"remote/js/kernels/{model.id}") as kc:
                await kc.wait_for_ready(timeout=30)
                assert (await kc.execute("1", timeout=20)).content["status"] == "ok"
            assert await api.get_kernel(model.id) is not None  # closing leaves it running
        finally:
            await api.delete_kernel(model.id)


def test_list_groups_by_server_and_says_which_cannot_be_used(registry: ServerRegistry) -> None:
    registry.add("down", f"http://127.0.0.1:{free_port()}/", token="t")
    listed = _kernelkit("list")
    assert listed.returncode != 0 or "broken" in listed.stdout
    lines = listed.stdout.splitlines()
    heading = next(i for i, line in enumerate(lines) if line.startswith("  server down  "))
    assert "not usable" in lines[heading]
    assert "cannot reach server 'down'" in "\n".join(lines[heading:])
    assert "spec/python3" in listed.stdout  # the local kernels are still there


def test_start_then_run_in_it_then_stop(registry: ServerRegistry, js: RemoteServer) -> None:
    env = {**os.environ, "KERNEL_USERNAME": "kernelkit-test"}
    start = subprocess.Popen(
        [sys.executable, "-m", "kernelkit", "start", "--kernel", "remote/js/python3"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    watchdog = threading.Timer(90, start.kill)  # bounds the blocking readline below
    watchdog.start()
    try:
        assert start.stdout is not None
        address = start.stdout.readline().strip()
        assert address.startswith("remote/js/kernels/"), address
        done = _kernelkit("run", "--kernel", address, "-c", "print(6 * 7)")
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == "42"
        start.send_signal(signal.SIGINT)
        assert start.wait(30) == 0
        kernel_id = address.rsplit("/", 1)[1]
        with httpx.Client(base_url=js.url, trust_env=False) as http:
            headers = {"Authorization": f"token {js.token()}"}
            # the kernel it started is gone with it
            assert http.get(f"api/kernels/{kernel_id}", headers=headers).status_code == 404
    finally:
        watchdog.cancel()
        if start.poll() is None:
            start.kill()
        start.communicate(timeout=10)  # reaps it and closes the pipes


def test_server_url_for_a_single_call(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, servers: dict[str, RunningServer]
) -> None:
    # Nothing registered: the server is named on the command line, its token in
    # $JUPYTER_TOKEN (never on the command line).
    monkeypatch.setenv("KERNELKIT_SERVERS_DIR", str(tmp_path / "empty"))
    monkeypatch.setenv("JUPYTER_TOKEN", servers["js"].token)
    url = servers["js"].url
    listed = _kernelkit("list", "--server", url)
    assert listed.returncode == 0, listed.stderr
    assert "remote/adhoc/python3" in listed.stdout
    done = _kernelkit("run", "--server", url, "--kernel", "python3", "-c", "print(6 * 7)")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "42"
    bad = _kernelkit("run", "--server", "ftp://nowhere", "-c", "1")
    assert bad.returncode != 0
    assert "--server" in bad.stderr
