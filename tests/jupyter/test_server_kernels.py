"""A real jupyter_server on 127.0.0.1 whose kernels kernelkit launches
(``--MappingKernelManager.kernel_manager_class=kernelkit.jupyter.ServerKernelManager``):
started over REST, run over the server's WebSocket (kernelkit's remote client),
interrupted, restarted and deleted through the server; an environment's kernel runs with
its own interpreter, and a kernel that dies says why (kernelkit's reason) in its model."""

from __future__ import annotations

import asyncio
import json
import secrets
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from kernelkit import KernelError, Message
from kernelkit.client import AsyncKernelClient
from kernelkit.remote import RemoteServer
from tests.envs import realenvs
from tests.remote.kernels import connected, started
from tests.remote.servers import RunningServer, _start, free_port, wait_until_up

pytestmark = pytest.mark.integration

SERVER_FLAGS = (
    "--ServerApp.kernel_spec_manager_class=kernelkit.jupyter.KernelSpecManager",
    "--MappingKernelManager.kernel_manager_class=kernelkit.jupyter.ServerKernelManager",
)


@dataclass
class Setup:
    server: RunningServer
    env: Path
    remote: RemoteServer
    marker: Path  # while it exists, the kernelspec DYING exits at once, saying why


#: A kernelspec running ipykernel, or, while its marker file exists, writing its last
#: words to stderr and exiting with 3.
DYING = "dying"


def add_dying_spec(base: Path) -> Path:
    marker = base / "dying-marker"
    code = (
        f"import os; os.path.exists({str(marker)!r}) and "
        "(os.write(2, b'kk-cannot-start\\n'), os._exit(3)); "
        "from ipykernel import kernelapp; kernelapp.launch_new_instance()"
    )
    spec = {
        "argv": [sys.executable, "-c", code, "-f", "{connection_file}"],
        "display_name": "Dies on demand",
        "language": "python",
    }
    spec_dir = base / "data" / "kernels" / DYING
    spec_dir.mkdir(parents=True)
    (spec_dir / "kernel.json").write_text(json.dumps(spec))
    return marker


def start_server(base: Path, *, flags: tuple[str, ...] = SERVER_FLAGS) -> RunningServer:
    """jupyter_server on 127.0.0.1 with ``flags``, environments under ``base/workon``."""
    port, token = free_port(), secrets.token_hex(16)
    (base / "srv" / "root").mkdir(parents=True, exist_ok=True)
    args = [
        "jupyter_server",
        "--allow-root",
        "--no-browser",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={base / 'srv' / 'root'}",
        *flags,
    ]
    extra_env = {"WORKON_HOME": str(base / "workon"), "JUPYTER_PATH": str(base / "data")}
    return _start("jupyter_server", args, port, token, base / "srv", extra_env=extra_env)


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    base = tmp_path_factory.mktemp("server-kernels")
    env = realenvs.install_ipykernel(realenvs.make_venv(base, "workon/proj"))
    marker = add_dying_spec(base)
    server = start_server(base)
    token_file = base / "token"
    token_file.write_text(server.token)
    try:
        wait_until_up([server])
        remote = RemoteServer("kk-test", server.url, token_file=token_file)
        yield Setup(server, env, remote, marker)
    finally:
        server.stop()


def rest(setup: Setup) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=setup.server.url, headers=setup.server.headers, timeout=60, trust_env=False
    )


def env_kernel_name(setup: Setup) -> str:
    with httpx.Client(
        base_url=setup.server.url, headers=setup.server.headers, timeout=30, trust_env=False
    ) as c:
        specs = c.get("api/kernelspecs").json()["kernelspecs"]
    names = [n for n in specs if n.startswith("env--proj-")]
    assert len(names) == 1, sorted(specs)
    return names[0]


async def run(kc: AsyncKernelClient, code: str, *, timeout: float = 30) -> tuple[str, str]:
    """Execute ``code``: (reply status, what it printed)."""
    outputs: list[Message] = []
    reply = await kc.execute(code, outputs=outputs, timeout=timeout)
    text = "".join(str(m.content.get("text", "")) for m in outputs)
    return str(reply.content["status"]), text


async def model(setup: Setup, kernel_id: str) -> dict[str, object]:
    async with rest(setup) as c:
        response = await c.get(f"api/kernels/{kernel_id}")
        assert response.status_code == 200, response.text
        data: dict[str, object] = response.json()
        return data


async def wait_for_model(
    setup: Setup, kernel_id: str, key: str, want: str, *, timeout: float = 30
) -> dict[str, object]:
    """The kernel's model once ``want`` is in its ``key`` (bounded: ``timeout``)."""
    deadline = time.monotonic() + timeout
    while True:
        data = await model(setup, kernel_id)
        if want in str(data.get(key, "")):
            return data
        assert time.monotonic() < deadline, f"{key} never showed {want!r}: {data}"
        await asyncio.sleep(0.1)


def gone(pid: int) -> bool:
    return not Path(f"/proc/{pid}").exists()


@pytest.fixture
async def env_kernel(setup: Setup) -> AsyncIterator[tuple[str, AsyncKernelClient]]:
    """The environment's kernel, started through the server's REST API, and a client
    over the server's WebSocket."""
    async with started(setup.remote, env_kernel_name(setup)) as p, connected(p) as kc:
        assert p.remote_kernel_id is not None
        yield p.remote_kernel_id, kc


async def test_an_environments_kernel_runs_on_kernelkit_with_its_interpreter(
    setup: Setup, env_kernel: tuple[str, AsyncKernelClient]
) -> None:
    kernel_id, kc = env_kernel
    code = "import os, sys; print(sys.executable); print(os.environ['VIRTUAL_ENV'])"
    status, text = await run(kc, code)
    assert status == "ok"
    assert text.split() == [str(setup.env / "bin" / "python"), str(setup.env)]
    # The server tracks its execution state over iopub (its own sockets, on the ports
    # the kernel chose and kernelkit reported).
    data = await wait_for_model(setup, kernel_id, "execution_state", "idle")
    assert data["name"] == env_kernel_name(setup)


async def test_interrupt_restart_and_delete_through_the_server(
    setup: Setup, env_kernel: tuple[str, AsyncKernelClient]
) -> None:
    kernel_id, kc = env_kernel
    status, pid_text = await run(kc, "import os; x = 42; print(os.getpid())")
    assert status == "ok"
    pid = int(pid_text)

    sleeping = asyncio.ensure_future(run(kc, "import time; time.sleep(60)", timeout=90))
    await wait_for_model(setup, kernel_id, "execution_state", "busy")
    async with rest(setup) as c:
        assert (await c.post(f"api/kernels/{kernel_id}/interrupt")).status_code == 204
    status, _ = await asyncio.wait_for(sleeping, 30)
    assert status == "error"  # KeyboardInterrupt

    async with rest(setup) as c:
        response = await c.post(f"api/kernels/{kernel_id}/restart")
        assert response.status_code == 200, response.text
    await kc.wait_for_ready(timeout=30)
    status, text = await run(kc, "import os; print(os.getpid(), 'x' in dir())")
    assert status == "ok"
    new_pid, has_x = text.split()
    assert int(new_pid) != pid
    assert has_x == "False"
    assert gone(pid)

    async with rest(setup) as c:
        assert (await c.delete(f"api/kernels/{kernel_id}")).status_code == 204
        assert (await c.get(f"api/kernels/{kernel_id}")).status_code == 404
    assert gone(int(new_pid))


async def test_a_death_says_why_and_the_kernel_comes_back(
    setup: Setup, env_kernel: tuple[str, AsyncKernelClient]
) -> None:
    kernel_id, kc = env_kernel
    # Written to the process's own stderr (captured by kernelkit), not to iopub.
    dying = "import os; os.write(2, b'kk-last-words\\n'); os._exit(7)"
    with pytest.raises(KernelError):
        await run(kc, dying, timeout=30)
    data = await wait_for_model(setup, kernel_id, "reason", "kk-last-words")
    assert "7" in str(data["reason"])
    assert "kk-last-words" in setup.server.log.read_text()
    # kernelkit restarted it (the server's restart callbacks told the clients).
    await kc.wait_for_ready(timeout=60)
    status, text = await run(kc, "print('back')")
    assert (status, text.strip()) == ("ok", "back")


async def test_a_kernel_that_cannot_start_says_why(setup: Setup) -> None:
    setup.marker.touch()
    try:
        async with rest(setup) as c:
            response = await c.post("api/kernels", json={"name": DYING})
    finally:
        setup.marker.unlink()
    assert response.status_code == 500
    text = response.text
    assert "exit code 3" in text
    assert "kk-cannot-start" in text


async def test_an_unknown_kernel_is_refused_as_jupyter_server_refuses_it(setup: Setup) -> None:
    async with rest(setup) as c:
        session = {"path": "a.ipynb", "type": "notebook", "kernel": {"name": "no-such-kernel"}}
        response = await c.post("api/sessions", json=session)
        assert response.status_code == 501, response.text
        assert "no-such-kernel" in response.json()["message"]
        response = await c.post("api/kernels", json={"name": "no-such-kernel"})
        assert response.status_code >= 400
        assert (await c.get("api/kernels")).json() == []


async def test_a_kernel_that_stays_dead_leaves_the_server(setup: Setup) -> None:
    async with started(setup.remote, DYING) as p, connected(p) as kc:
        kernel_id = p.remote_kernel_id
        assert kernel_id is not None
        setup.marker.touch()
        try:
            with pytest.raises(KernelError):
                await run(kc, "import os; os._exit(9)", timeout=30)
            # kernelkit restarts it; each restart dies at once; past its restart limit
            # the server's "dead" callbacks drop the kernel.
            deadline = time.monotonic() + 60
            async with rest(setup) as c:
                while (await c.get(f"api/kernels/{kernel_id}")).status_code != 404:
                    assert time.monotonic() < deadline, setup.server.log_tail()
                    await asyncio.sleep(0.1)
        finally:
            setup.marker.unlink()
    log = setup.server.log.read_text(errors="replace")
    assert f"Kernel {kernel_id} is dead" in log
    assert "kk-cannot-start" in log


def test_the_flag_alone_runs_plain_kernelspecs(tmp_path: Path) -> None:
    """Without kernelkit's KernelSpecManager the name is a kernelspec name."""
    server = start_server(tmp_path, flags=SERVER_FLAGS[1:])
    try:
        wait_until_up([server])
        with httpx.Client(
            base_url=server.url, headers=server.headers, timeout=60, trust_env=False
        ) as c:
            response = c.post("api/kernels", json={"name": "python3"})
            assert response.status_code == 201, server.log_tail()
            kernel_id = response.json()["id"]
            assert c.delete(f"api/kernels/{kernel_id}").status_code == 204
    finally:
        server.stop()
    assert "Traceback" not in server.log.read_text(), server.log_tail(60)
