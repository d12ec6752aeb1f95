"""Figure 9: a kernel on a direct Jupyter Server: start-to-ready and execute round trip.

Each contestant gets its own jupyter_server on 127.0.0.1 (started in its setup, stopped
with its kernels in its teardown). Contestants:

- kernelkit: RemoteProvisioner (``POST /api/kernels``) and AsyncKernelClient over its
  WebSocketTransport (``TCP_NODELAY`` and re-armed ``TCP_QUICKACK``);
- floor: a raw ``websockets`` client, v1 framing made by hand, the same socket options;
- naive: the same raw client without them (what browsers and most clients see: the
  server leaves Nagle on, so each reply waits ~40 ms for our delayed ACK).

Start-to-ready: from the POST to the first kernel_info_reply. Execute round trip: an
execute_request of ``pass`` until its execute_reply and the kernel's idle status.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import socket
import struct
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

from bench._config import Config
from bench._core import EXTRA, FLOOR, KERNELKIT, AsyncContestant, Group, Metric, Target
from bench._procs import free_ports
from bench._raw import execute_content

SUBPROTOCOL = "v1.kernel.websocket.jupyter.org"
NAIVE = "naive (no socket options)"

METRICS = [
    Metric(
        "start",
        "remote start-to-ready (POST to kernel_info_reply)",
        "ms",
        False,
        Target(FLOOR, "<=", 1.05),
    ),
    Metric(
        "rtt", "remote execute round trip (reply + idle)", "ms", False, Target(FLOOR, "<=", 1.1)
    ),
]


class _Server:
    """One jupyter_server for the figure, stopped (with its kernels) at the end."""

    def __init__(self, tmp: Path) -> None:
        self.port = free_ports(1)[0]
        self.token = secrets.token_hex(16)
        self.url = f"http://127.0.0.1:{self.port}/"
        work = tmp / "remote-server"
        (work / "root").mkdir(parents=True, exist_ok=True)
        (work / "runtime").mkdir(exist_ok=True)
        env = {**os.environ, "JUPYTER_RUNTIME_DIR": str(work / "runtime")}
        env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
        self.log = open(work / "server.log", "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "jupyter_server",
                "--allow-root",
                "--no-browser",
                "--ServerApp.ip=127.0.0.1",
                f"--ServerApp.port={self.port}",
                "--ServerApp.port_retries=0",
                f"--IdentityProvider.token={self.token}",
                f"--ServerApp.root_dir={work / 'root'}",
            ],
            stdin=subprocess.DEVNULL,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
        deadline = time.monotonic() + 60
        with httpx.Client(timeout=2, trust_env=False) as c:
            while True:
                try:
                    if c.get(self.url + "api/kernelspecs", headers=self.headers).status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError("jupyter_server did not come up")
                time.sleep(0.05)

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"token {self.token}"}

    def stop(self) -> None:
        import signal

        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.log.close()


def _v1(channel: str, msg_type: str, content: dict[str, Any], session: str) -> bytes:
    header = {
        "msg_id": uuid.uuid4().hex,
        "msg_type": msg_type,
        "username": "bench",
        "session": session,
        "date": "2026-01-01T00:00:00.000000Z",
        "version": "5.4",
    }
    parts = [
        channel.encode(),
        json.dumps(header).encode(),
        b"{}",
        b"{}",
        json.dumps(content).encode(),
    ]
    offsets = []
    pos = 8 * (len(parts) + 2)
    for p in parts:
        offsets.append(pos)
        pos += len(p)
    offsets.append(pos)
    return struct.pack(f"<{len(offsets) + 1}Q", len(offsets), *offsets) + b"".join(parts)


def _un_v1(data: bytes) -> tuple[str, dict[str, Any], dict[str, Any], dict[str, Any]]:
    (n,) = struct.unpack_from("<Q", data)
    offs = struct.unpack_from(f"<{n}Q", data, 8)
    parts = [data[offs[i] : offs[i + 1]] for i in range(min(n - 1, 5))]
    return (parts[0].decode(), json.loads(parts[1]), json.loads(parts[2]), json.loads(parts[4]))


class _ServerContestant(AsyncContestant):
    tmp: Path
    n: int
    server: _Server | None = None

    def setup(self) -> None:
        self.server = _Server(self.tmp)
        super().setup()

    def teardown(self) -> None:
        try:
            super().teardown()
        finally:
            if self.server is not None:
                self.server.stop()


class _Raw(_ServerContestant):
    """A hand-made client: httpx for the POST, websockets for the channels."""

    def __init__(self, tuned: bool) -> None:
        self.tuned = tuned
        self.name, self.role = (FLOOR, FLOOR) if tuned else (NAIVE, EXTRA)
        self.note = "TCP_NODELAY + TCP_QUICKACK" if tuned else "socket as asyncio makes it"

    async def asample(self) -> dict[str, float]:
        from websockets.asyncio.client import ClientConnection, connect

        assert self.server is not None
        srv = self.server
        quickack = getattr(socket, "TCP_QUICKACK", None)

        class Tuned(ClientConnection):
            def connection_made(self, transport: asyncio.BaseTransport) -> None:
                super().connection_made(transport)
                self._s = transport.get_extra_info("socket")
                self._s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

            def data_received(self, data: bytes) -> None:
                super().data_received(data)
                if quickack is not None:
                    self._s.setsockopt(socket.IPPROTO_TCP, quickack, 1)

        async with httpx.AsyncClient(base_url=srv.url, headers=srv.headers, trust_env=False) as c:
            t0 = time.perf_counter()
            r = await c.post("api/kernels", json={"name": "python3"})
            kid = r.json()["id"]
            session = uuid.uuid4().hex
            try:
                async with connect(
                    f"ws://127.0.0.1:{srv.port}/api/kernels/{kid}/channels?session_id={session}",
                    subprotocols=[SUBPROTOCOL],  # type: ignore[list-item]
                    additional_headers=srv.headers,
                    compression=None,
                    max_size=None,
                    create_connection=Tuned if self.tuned else ClientConnection,
                    proxy=None,
                ) as ws:
                    await ws.send(_v1("shell", "kernel_info_request", {}, session))
                    while True:
                        _ch, h, _, _ = _un_v1(await ws.recv())  # type: ignore[arg-type]
                        if h["msg_type"] == "kernel_info_reply":
                            break
                    start = time.perf_counter() - t0
                    rtts = []
                    for _ in range(self.n):
                        t1 = time.perf_counter()
                        await ws.send(
                            _v1("shell", "execute_request", execute_content("pass"), session)
                        )
                        replied = idle = False
                        while not (replied and idle):
                            _ch, h, parent, content = _un_v1(await ws.recv())  # type: ignore[arg-type]
                            if h["msg_type"] == "execute_reply":
                                replied = True
                            elif (
                                h["msg_type"] == "status"
                                and parent
                                and content.get("execution_state") == "idle"
                                and parent.get("msg_type") == "execute_request"
                            ):
                                idle = True
                        rtts.append(time.perf_counter() - t1)
            finally:
                await c.delete(f"api/kernels/{kid}")
        rtts.sort()
        return {"start": start * 1e3, "rtt": rtts[len(rtts) // 2] * 1e3}


class _Kernelkit(_ServerContestant):
    name = KERNELKIT
    role = KERNELKIT
    note = "RemoteProvisioner + AsyncKernelClient (WebSocketTransport)"

    async def asample(self) -> dict[str, float]:
        from kernelkit.client import AsyncKernelClient
        from kernelkit.remote import RemoteProvisioner, RemoteServer
        from kernelkit.specs import KernelSpec

        assert self.server is not None
        server = RemoteServer(name="bench", url=self.server.url, token_env="KKBENCH_REMOTE_TOKEN")
        os.environ["KKBENCH_REMOTE_TOKEN"] = self.server.token
        spec = KernelSpec(
            name="python3",
            resource_dir=Path("/nonexistent"),
            argv=(),
            display_name="python3",
            language="python",
        )
        t0 = time.perf_counter()
        p = RemoteProvisioner(kernel_id=str(uuid.uuid4()), kernel_spec=spec, server=server)
        params = await p.pre_launch()
        await p.launch_kernel(params.cmd, env=params.env, cwd=params.cwd)
        try:
            async with AsyncKernelClient(p.create_transport(), kernel_name="python3") as kc:
                await kc.wait_for_ready(timeout=60)
                start = time.perf_counter() - t0
                rtts = []
                for _ in range(self.n):
                    t1 = time.perf_counter()
                    # The same request as the raw clients send (no history: IPython stores
                    # each input otherwise, ~1 ms of kernel work).
                    await kc.execute("pass", store_history=False, timeout=30)
                    rtts.append(time.perf_counter() - t1)
        finally:
            await p.cleanup()
        rtts.sort()
        return {"start": start * 1e3, "rtt": rtts[len(rtts) // 2] * 1e3}


def groups(cfg: Config) -> list[Group]:
    n = cfg.pick(10, 30)

    def make(c: _ServerContestant) -> _ServerContestant:
        c.n, c.tmp = n, cfg.tmp
        return c

    return [
        Group(
            figure=9,
            name="remote (direct Jupyter Server)",
            metrics=METRICS,
            contestants=[
                lambda: make(_Kernelkit()),
                lambda: make(_Raw(tuned=True)),
                lambda: make(_Raw(tuned=False)),
            ],
            reps=cfg.reps(3, 7),
            note=f"execute round trip: median of {n} per sample; naive goal: kernelkit <= 0.5x",
        )
    ]
