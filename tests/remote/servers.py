"""Real Jupyter servers for the remote tests: started once per test session on
127.0.0.1 with a token, stopped by PID (after deleting their kernels) at the end."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx


@dataclass
class RunningServer:
    """One server process: its URL, token, process and log."""

    kind: str
    url: str
    token: str
    proc: subprocess.Popen[bytes]
    log: Path

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"token {self.token}"}

    def log_tail(self, n: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return "(no log)"

    def delete_all_kernels(self) -> None:
        with httpx.Client(base_url=self.url, headers=self.headers, timeout=10) as c:
            response = c.get("api/kernels")
            if response.status_code != 200:
                return
            for model in response.json():
                c.delete(f"api/kernels/{model['id']}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(Exception):
                self.delete_all_kernels()
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)  # anything it left in its group


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


#: Enterprise Gateway pins jupyter_client 6.1.12 and jupyter_server 1.24: its own
#: environment, made once from PyPI and kept (gitignored) beside the repository's .venv.
EG_VERSION = "3.3.0"
EG_VENV = Path(__file__).resolve().parents[2] / ".venv-servers" / f"enterprise-gateway-{EG_VERSION}"


def enterprise_gateway_python() -> Path:
    """The interpreter of Enterprise Gateway's own environment, made on first use."""
    python = EG_VENV / "bin" / "python"
    ready = EG_VENV / ".kernelkit-ready"
    if ready.exists():
        return python
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(EG_VENV)], check=True, timeout=120)
    uv = Path(sys.executable).parent / "uv"  # uv is in the test extra
    installer = (
        [str(uv), "pip", "install", "--quiet", "--python", str(python)]
        if uv.exists()
        else [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    )
    subprocess.run(
        [*installer, f"jupyter_enterprise_gateway=={EG_VERSION}"], check=True, timeout=600
    )
    ready.touch()
    return python


def _start(
    kind: str,
    args: Sequence[str],
    port: int,
    token: str,
    work: Path,
    *,
    python: Path | None = None,
    extra_env: dict[str, str] | None = None,
) -> RunningServer:
    work.mkdir(parents=True, exist_ok=True)
    runtime = work / "runtime"
    runtime.mkdir(exist_ok=True)
    env = dict(os.environ)
    # The kernelspec's bare "python" must be this environment's (it has ipykernel 7.4).
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.update(extra_env or {})
    env["JUPYTER_RUNTIME_DIR"] = str(runtime)
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY"):
        env.pop(var, None)
    log = work / "server.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [str(python or sys.executable), "-m", *args],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=work,
            start_new_session=True,
        )
    return RunningServer(kind, f"http://127.0.0.1:{port}/", token, proc, log)


#: A kernelspec that runs ipykernel, or exits at once while its marker file exists (a
#: kernel that keeps dying once the marker is made: the server's restarts all fail).
DYING_SPEC = "dying"


def dying_marker(server: RunningServer) -> Path:
    return server.log.parent / "dying-marker"


def _add_dying_spec(work: Path) -> Path:
    spec_dir = work / "data" / "kernels" / DYING_SPEC
    spec_dir.mkdir(parents=True, exist_ok=True)
    marker = work / "dying-marker"
    code = (
        f"import os, sys; os.path.exists({str(marker)!r}) and sys.exit(3); "
        "from ipykernel import kernelapp; kernelapp.launch_new_instance()"
    )
    argv = [sys.executable, "-c", code, "-f", "{connection_file}"]
    spec = {"argv": argv, "display_name": "Dies on demand", "language": "python"}
    (spec_dir / "kernel.json").write_text(json.dumps(spec))
    return work / "data"


def start_jupyter_server(work: Path) -> RunningServer:
    port, token = free_port(), secrets.token_hex(16)
    root = work / "root"
    root.mkdir(parents=True, exist_ok=True)
    data = _add_dying_spec(work)
    args = [
        "jupyter_server",
        "--allow-root",
        "--no-browser",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={root}",
        # A dead kernel is noticed within a second and restarted once, not five times
        # 3 s apart: the tests that kill kernels wait for that (a restart that fails
        # makes the kernel dead at once).
        "--KernelRestarter.time_to_dead=1",
        "--KernelRestarter.restart_limit=1",
    ]
    return _start("jupyter_server", args, port, token, work, extra_env={"JUPYTER_PATH": str(data)})


def start_kernel_gateway(work: Path) -> RunningServer:
    # Without list_kernels: GET /api/kernels is 403, which the provider must report.
    port, token = free_port(), secrets.token_hex(16)
    args = [
        "kernel_gateway",
        "--KernelGatewayApp.ip=127.0.0.1",
        f"--KernelGatewayApp.port={port}",
        "--KernelGatewayApp.port_retries=0",
        f"--KernelGatewayApp.auth_token={token}",
    ]
    return _start("kernel_gateway", args, port, token, work)


def start_enterprise_gateway(work: Path) -> RunningServer:
    """Enterprise Gateway in its own environment, listing kernels. It ships no
    kernelspec: it gets one running this environment's ipykernel 7.4 (subshells)."""
    python = enterprise_gateway_python()
    port, token = free_port(), secrets.token_hex(16)
    spec_dir = work / "data" / "kernels" / "python3"
    spec_dir.mkdir(parents=True, exist_ok=True)
    argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    spec = {"argv": argv, "display_name": "Python 3 (ipykernel 7.4)", "language": "python"}
    (spec_dir / "kernel.json").write_text(json.dumps(spec))
    args = [
        "enterprise_gateway",
        "--ip=127.0.0.1",
        f"--port={port}",
        "--port_retries=0",
        f"--EnterpriseGatewayApp.auth_token={token}",
        "--EnterpriseGatewayApp.list_kernels=True",
    ]
    return _start(
        "enterprise_gateway",
        args,
        port,
        token,
        work,
        python=python,
        extra_env={"JUPYTER_PATH": str(work / "data")},
    )


def wait_until_up(servers: Sequence[RunningServer], timeout: float = 60.0) -> None:
    """Return once every server answers GET /api with its token."""
    deadline = time.monotonic() + timeout
    pending = list(servers)
    with httpx.Client(timeout=2, trust_env=False) as client:
        while pending:
            for server in list(pending):
                if server.proc.poll() is not None:
                    raise RuntimeError(
                        f"{server.kind} exited with {server.proc.returncode}:\n" + server.log_tail()
                    )
                with contextlib.suppress(httpx.TransportError):
                    if client.get(server.url + "api", headers=server.headers).status_code == 200:
                        pending.remove(server)
            if pending:
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"{pending[0].kind} not up within {timeout} s:\n" + pending[0].log_tail()
                    )
                time.sleep(0.05)


@contextlib.contextmanager
def running_servers(work: Path) -> Iterator[dict[str, RunningServer]]:
    servers: dict[str, RunningServer] = {}
    try:
        servers["js"] = start_jupyter_server(work / "jupyter_server")
        servers["kg"] = start_kernel_gateway(work / "kernel_gateway")
        wait_until_up(list(servers.values()))
        yield servers
    finally:
        for server in servers.values():
            server.stop()
