"""LocalProvisioner with real kernels: ipykernel 7.4 (port-0 write-back), xeus-python 0.19
(JEP 66 registration), bash_kernel. Each launch is checked end to end: the ports the kernel
chose answer a signed kernel_info_request on a raw DEALER, and after stop nothing of the
kernel is left (process group, files)."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import zmq
import zmq.asyncio

from kernelkit import ConnectionInfo
from kernelkit.protocol import Session
from kernelkit.provisioning import KernelProvisionerFactory, LocalProvisioner
from kernelkit.specs import KernelSpec, get_kernel_spec

pytestmark = pytest.mark.integration


def _group_alive(pgid: int) -> list[int]:
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            found.append(int(name))
    return found


def _files(directory: Path) -> list[Path]:
    return sorted(directory.iterdir())


async def kernel_info(info: ConnectionInfo, timeout: float = 30.0) -> dict[str, Any]:
    """One kernel_info_request on a raw DEALER, the reply checked by Session (HMAC)."""
    session = Session(info.key, signature_scheme=info.signature_scheme)
    ctx = zmq.asyncio.Context.instance()
    sock = ctx.socket(zmq.DEALER)
    sock.linger = 0
    sock.connect(info.url("shell"))
    try:
        request = session.msg("kernel_info_request", {})
        await sock.send_multipart(session.serialize(request))
        frames = await asyncio.wait_for(sock.recv_multipart(), timeout)
    finally:
        sock.close()
    _, reply = session.deserialize(frames)
    assert reply.header.msg_type == "kernel_info_reply"
    assert reply.parent_header is not None
    assert reply.parent_header.msg_id == request.header.msg_id
    return dict(reply.content)


@pytest.fixture
async def provisioners(tmp_path: Path) -> AsyncIterator[list[LocalProvisioner]]:
    made: list[LocalProvisioner] = []
    yield made
    for p in made:
        await p.cleanup()


async def _start(
    made: list[LocalProvisioner], spec: KernelSpec, runtime_dir: Path, **options: Any
) -> tuple[LocalProvisioner, ConnectionInfo]:
    p = LocalProvisioner(
        kernel_id=f"it{len(made)}",
        kernel_spec=spec,
        runtime_dir=runtime_dir,
        startup_timeout=30,
        **options,
    )
    made.append(p)
    params = await p.pre_launch()
    info = await p.launch_kernel(params.cmd, env=params.env, cwd=params.cwd)
    return p, info


async def _stop_and_check(p: LocalProvisioner, runtime_dir: Path) -> None:
    pgid = p.pgid
    assert pgid is not None
    await p.stop(grace=5)
    await p.cleanup()
    assert _group_alive(pgid) == []
    assert _files(runtime_dir) == []


@pytest.mark.parametrize(
    ("name", "override", "mode", "source"),
    [
        ("python3", None, "write-back", "write-back"),
        ("python3", "auto", "auto", "write-back"),
        ("python3", "parent", "parent", "heartbeat"),
        ("xpython", None, "auto", "registration"),
        ("xpython", "handshake", "handshake", "registration"),
        ("bash", None, "auto", "write-back"),
    ],
)
async def test_real_kernel_end_to_end(
    provisioners: list[LocalProvisioner],
    tmp_path: Path,
    name: str,
    override: str | None,
    mode: str,
    source: str,
) -> None:
    spec = get_kernel_spec(name)
    p, info = await _start(provisioners, spec, tmp_path, port_mode=override)
    assert (p.port_mode, p.ports_source) == (mode, source)
    assert info.ports_chosen
    content = await kernel_info(info)
    assert content["status"] == "ok"
    assert content["language_info"]["name"] == spec.language
    # The connection file on disk now holds the real ports, whoever wrote it.
    from kernelkit._connection import read_connection_file

    assert p.connection_file is not None
    assert read_connection_file(p.connection_file) == info
    await _stop_and_check(p, tmp_path)


async def test_factory_launch_interrupt_and_kill_ipykernel(
    provisioners: list[LocalProvisioner], tmp_path: Path
) -> None:
    factory = KernelProvisionerFactory()
    p = factory.create_provisioner_instance("fac", get_kernel_spec("python3"))
    assert isinstance(p, LocalProvisioner)
    provisioners.append(p)
    params = await p.pre_launch()
    info = await p.launch_kernel(params.cmd, env=params.env)
    await kernel_info(info)
    # SIGINT to the group interrupts an idle ipykernel without killing it.
    await p.send_signal(signal.SIGINT)
    assert (await kernel_info(info))["status"] == "ok"
    assert await p.poll() is None
    pgid = p.pgid
    assert pgid is not None
    # A kernel killed from outside: its death is an event, reported with status and output.
    os.killpg(pgid, signal.SIGKILL)
    start = time.monotonic()
    status = await asyncio.wait_for(p.wait(), 2)
    assert time.monotonic() - start < 1.0
    err = p.died_error(status)
    assert err.exit_code == -signal.SIGKILL
    assert any("IPKernelApp" in line for line in err.output_tail)
    await p.cleanup()
    assert _group_alive(pgid) == []


async def test_xpython_restart_keeps_ports_for_clients(
    provisioners: list[LocalProvisioner], tmp_path: Path
) -> None:
    # xeus given a plain connection file binds the ports in it: the restart path.
    p, first = await _start(provisioners, get_kernel_spec("xpython"), tmp_path)
    await p.stop(grace=5)
    await p.cleanup(restart=True)
    params = await p.pre_launch()
    second = await p.launch_kernel(params.cmd, env=params.env)
    assert second == first
    assert (await kernel_info(second))["status"] == "ok"
    await _stop_and_check(p, tmp_path)
