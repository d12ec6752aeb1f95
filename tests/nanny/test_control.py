"""Control of a kernel under a nanny from a process that did not start it
(AsyncAttachedKernel), the nanny's faults, and bad input."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import signal
import sys
import time
from pathlib import Path

import orjson
import pytest

from kernelkit import ConnectionInfo, KernelDied, KernelStartError, KernelTimeout, ProvisioningError
from kernelkit.manager import AsyncKernelManager
from kernelkit.nanny import AsyncAttachedKernel, NannyControl, NannyProvisioner
from tests.nanny.escapees import BARE_DAEMON, DAEMON, SETSID_CHILD
from tests.nanny.helpers import alive, gone, kill_all, nanny_spec

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


@pytest.fixture(autouse=True)
def runtime_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    d = tmp_path / "runtime"
    d.mkdir(mode=0o700)
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(d))
    return d


@pytest.fixture
async def km() -> object:
    km = AsyncKernelManager(kernel_spec=nanny_spec())
    await km.start_kernel()
    p = km.provisioner
    assert isinstance(p, NannyProvisioner)
    pids = [p.nanny_pid or 0, p.pid or 0]
    yield km
    await km.shutdown_kernel(now=True)
    assert await gone(pids, within=15)
    kill_all(pids)


def _p(km: AsyncKernelManager) -> NannyProvisioner:
    p = km.provisioner
    assert isinstance(p, NannyProvisioner)
    return p


def _read(path: Path) -> str:
    return path.read_text()


async def test_interrupt_from_another_client(km: AsyncKernelManager) -> None:
    assert km.connection_file is not None
    async with AsyncAttachedKernel.from_connection_file(km.connection_file) as k, k.client() as kc:
        await kc.wait_for_ready(timeout=60)
        pending = asyncio.ensure_future(kc.execute("import time; time.sleep(60)", timeout=60))
        await asyncio.sleep(0.5)
        await k.interrupt_kernel()
        reply = await asyncio.wait_for(pending, 20)
        assert reply.content["status"] == "error"
        assert reply.content["ename"] == "KeyboardInterrupt"


async def test_death_is_told_at_once_to_a_client_we_do_not_own(km: AsyncKernelManager) -> None:
    assert km.connection_file is not None
    # The client's own heartbeat would tell in ~1 s; the nanny's notice must come first.
    async with AsyncAttachedKernel.from_connection_file(km.connection_file) as k:
        kc = k.client(heartbeat_timeout=30.0)
        async with kc:
            await kc.wait_for_ready(timeout=60)
            pending = asyncio.ensure_future(kc.execute("import time; time.sleep(60)", timeout=60))
            await asyncio.sleep(0.3)
            assert k.pid is not None
            t0 = time.monotonic()
            os.kill(k.pid, signal.SIGKILL)
            with pytest.raises(KernelDied) as err:
                await asyncio.wait_for(pending, 10)
            latency = time.monotonic() - t0
            assert err.value.exit_code == -signal.SIGKILL
            assert await asyncio.wait_for(k.wait(), 5) == -signal.SIGKILL
            print(f"death notice latency through the nanny: {latency * 1000:.1f} ms")
            assert latency < 5  # generous: the figure goes to the bench


async def test_restart_from_another_client_keeps_ports_and_clients(km: AsyncKernelManager) -> None:
    assert km.connection_file is not None
    async with AsyncAttachedKernel.from_connection_file(km.connection_file) as k, k.client() as kc:
        await kc.wait_for_ready(timeout=60)
        await kc.execute("x = 42", timeout=30)
        old_pid, old_info = k.pid, k.connection_info
        await k.restart_kernel()
        assert k.pid != old_pid
        assert k.connection_info.shell_port == old_info.shell_port
        await kc.wait_for_ready(timeout=60)
        reply = await kc.execute("'x' in globals()", timeout=30)
        assert reply.content["status"] == "ok"
        assert await k.is_alive()


async def test_nanny_killed_stops_the_kernel_and_the_owner_hears(km: AsyncKernelManager) -> None:
    p = _p(km)
    assert p.nanny_pid is not None
    assert p.pid is not None
    kernel = p.pid
    os.kill(p.nanny_pid, signal.SIGKILL)
    await asyncio.wait_for(p.wait(), 10)
    # ipykernel watches JPY_PARENT_PID (the nanny) and exits when its parent changes.
    assert await gone([kernel], within=15)


@pytest.mark.parametrize("template", [SETSID_CHILD, DAEMON, BARE_DAEMON])
async def test_crash_then_shutdown_leaves_no_escapee(
    km: AsyncKernelManager, tmp_path: Path, template: str
) -> None:
    p = _p(km)
    out = tmp_path / "pid"
    pids: list[int] = []
    try:
        async with km.client() as kc:
            await kc.wait_for_ready(timeout=60)
            reply = await kc.execute(template.format(out=str(out)), timeout=30)
            assert reply.content["status"] == "ok"
            pids.append(int(await asyncio.to_thread(_read, out)))
        assert p.pid is not None
        os.kill(p.pid, signal.SIGKILL)
        await asyncio.wait_for(p.wait(), 10)
        assert alive(pids[0])
        await km.shutdown_kernel()
        assert await gone(pids, within=10)
    finally:
        kill_all(pids)


# ---------------------------------------------------------------- bad input


async def test_a_file_without_a_nanny_is_refused_with_a_reason() -> None:
    with pytest.raises(ProvisioningError, match="names no nanny"):
        AsyncAttachedKernel(ConnectionInfo(key=b"k", shell_port=1))


async def test_a_request_signed_with_another_key_is_not_answered(km: AsyncKernelManager) -> None:
    p = _p(km)
    assert p.nanny_address is not None
    async with NannyControl(p.nanny_address, key=b"not the key") as control:
        with pytest.raises(KernelTimeout, match="did not answer 'status'"):
            await control.request("status", timeout=1.0)
    assert await km.is_alive()


async def test_unknown_action_is_refused_before_sending(km: AsyncKernelManager) -> None:
    p = _p(km)
    assert p.control is not None
    with pytest.raises(ProvisioningError, match="unknown nanny action 'explode'"):
        await p.control.request("explode")


async def test_a_kernel_that_fails_to_start_reports_exit_code_and_output() -> None:
    spec = nanny_spec()
    spec = dataclasses.replace(
        spec,
        argv=(
            sys.executable,
            "-c",
            "import sys; print('no luck here'); sys.exit(7)",
            "{connection_file}",
        ),
    )
    km = AsyncKernelManager(kernel_spec=spec)
    with pytest.raises(KernelStartError) as err:
        await km.start_kernel()
    assert err.value.exit_code == 7
    assert "no luck here" in err.value.output_tail


async def test_malformed_configuration_is_a_clear_error() -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "kernelkit.nanny",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await asyncio.wait_for(proc.communicate(b'{"kernel_id": 3}\n'), 30)
    assert proc.returncode == 2
    answer = orjson.loads(out)
    assert answer["status"] == "error"
    assert "'kernel_id' must be a non-empty string" in answer["message"]


async def test_nanny_killed_stops_a_kernel_that_ignores_its_parent() -> None:
    # kernelkit.testing's fake kernel, like xeus-python, never looks at JPY_PARENT_PID:
    # only the parent-death signal the nanny gives it (setpriv --pdeathsig) stops it.
    from kernelkit.testing import fake_kernel_spec

    spec = fake_kernel_spec(
        metadata={"kernel_provisioner": {"provisioner_name": "nanny-provisioner"}}
    )
    km = AsyncKernelManager(kernel_spec=spec)
    await km.start_kernel()
    p = _p(km)
    pids = [p.nanny_pid or 0, p.pid or 0]
    try:
        assert all(alive(x) for x in pids)
        os.kill(pids[0], signal.SIGKILL)
        await asyncio.wait_for(p.wait(), 10)
        assert await gone(pids, within=10)
    finally:
        await km.shutdown_kernel(now=True)
        kill_all(pids)


async def test_a_new_provisioner_reattaches_to_a_detached_kernel() -> None:
    from kernelkit.provisioning import launch_provisioner

    spec = nanny_spec()
    first = NannyProvisioner(kernel_id="reattach-1", kernel_spec=spec, detached=True)
    await launch_provisioner(first)
    pids = [first.nanny_pid or 0, first.pid or 0]
    try:
        saved = await first.get_provisioner_info()
        # The first owner goes away without stopping anything (its link closes).
        await first.disconnect()
        await asyncio.sleep(1.5)  # past the owner grace (1 s): a detached kernel stays
        assert all(alive(x) for x in pids)

        second = NannyProvisioner(kernel_id="reattach-1", kernel_spec=spec)
        await second.load_provisioner_info(saved)
        assert second.pid == first.pid
        assert await second.poll() is None
        await second.stop(grace=1)
        await second.cleanup()
        assert await gone(pids, within=10)
    finally:
        kill_all(pids)


@pytest.mark.parametrize("free", [True, False], ids=["free", "taken"])
async def test_the_control_socket_listens_on_the_port_asked_for_if_free(free: bool) -> None:
    """A nanny whose owner forwarded a port to it (SSHProvisioner) listens there; on
    another port if that one is taken (its answer says which)."""
    import socket

    from kernelkit.nanny import NannyConfig

    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    port = holder.getsockname()[1]
    if free:
        holder.close()
    config = NannyConfig(
        kernel_id=os.urandom(6).hex(),
        spec=nanny_spec(),
        env=dict(os.environ),
        owner_pid=os.getpid(),
        owner_grace=0.0,
        control_port=port,
    )
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "kernelkit.nanny",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert proc.stdin is not None
        assert proc.stdout is not None
        proc.stdin.write(orjson.dumps(config.to_dict()) + b"\n")
        answer = orjson.loads(await asyncio.wait_for(proc.stdout.readline(), 60))
        assert answer["status"] == "ok", answer
        bound = int(answer["control"].rsplit(":", 1)[1])
        assert (bound == port) is free
        proc.stdin.close()  # the owner goes: the nanny stops the kernel and exits
        assert await asyncio.wait_for(proc.wait(), 30) == 0
        assert await gone([answer["pid"]], within=10)
    finally:
        holder.close()
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


@pytest.mark.parametrize("pause", [0.0, 0.005])
async def test_stopping_a_kernel_whose_nanny_is_being_killed_does_not_wait_for_it(
    pause: float,
) -> None:
    """The nanny dies between the manager's look and its request (SIGKILL just before
    the shutdown): the request is dropped when the nanny's process ends, not answered by
    a timeout error."""
    km = AsyncKernelManager(kernel_spec=nanny_spec(), autorestart=False)
    await km.start_kernel()
    p = _p(km)
    pids = [p.nanny_pid or 0, p.pid or 0]
    try:
        os.kill(pids[0], signal.SIGKILL)
        await asyncio.sleep(pause)
    finally:
        await km.shutdown_kernel(now=True)
    assert await gone(pids, within=10)
