"""Faults, each within a bounded time: refused token, unknown kernelspec, server down,
server killed mid-execute, kernel killed on the server, a kernel that keeps dying, a
message over the size limit. Real servers; the deleted-kernel cases are in test_manager
and test_websocket."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from dataclasses import replace
from pathlib import Path

import pytest

from kernelkit import AsyncKernelManager, KernelDied, KernelError, NoSuchKernel
from kernelkit.protocol import Message
from kernelkit.provisioning import launch_provisioner
from kernelkit.remote import (
    RemoteProvisioner,
    RemoteServer,
    ServerAPI,
    ServerRegistry,
    TokenRefused,
)
from kernelkit.remote._provider import PROVISIONER_NAME
from kernelkit.specs import KernelSpec
from tests.remote.kernels import connected, remote_finder, remote_spec, started
from tests.remote.servers import (
    DYING_SPEC,
    RunningServer,
    dying_marker,
    free_port,
    start_jupyter_server,
    wait_until_up,
)

pytestmark = pytest.mark.integration


def _text(outputs: list[Message]) -> str:
    return "".join(m.content.get("text", "") for m in outputs if m.msg_type == "stream")


def _kill(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


async def _launch(p: RemoteProvisioner) -> None:
    """The one launch sequence (it cleans up after a failure, as a manager's start)."""
    await launch_provisioner(p, env={"KERNEL_USERNAME": "kernelkit-test"})
    await p.cleanup()  # not reached in these tests: every launch fails


@pytest.mark.parametrize("kind", ["js", "kg"])
async def test_wrong_token_names_the_server_not_the_token(
    kind: str, registry: ServerRegistry, servers: dict[str, RunningServer]
) -> None:
    registry.add("bad", servers[kind].url, token="not-the-token-123")
    p = RemoteProvisioner(kernel_id="k", kernel_spec=remote_spec(), server="bad")
    t0 = time.monotonic()
    with pytest.raises(KernelError, match="refused the token") as caught:
        await _launch(p)
    assert time.monotonic() - t0 < 10
    assert "not-the-token-123" not in str(caught.value)
    assert "bad" in str(caught.value)
    async with ServerAPI(registry.get("bad")) as api:
        with pytest.raises(TokenRefused):
            await api.kernelspecs()


@pytest.mark.parametrize("kind", ["js", "kg"])
async def test_unknown_kernelspec_is_named_without_the_traceback(
    kind: str, request: pytest.FixtureRequest
) -> None:
    server: RemoteServer = request.getfixturevalue(kind)
    p = RemoteProvisioner(kernel_id="k", kernel_spec=remote_spec("no-such-spec"), server=server)
    with pytest.raises(NoSuchKernel) as caught:
        await _launch(p)
    message = str(caught.value)
    assert f"remote/{kind}/no-such-spec" in message
    assert f"remote/{kind}/python3" in message  # what there is instead
    assert "Traceback" not in message
    assert "File " not in message


async def test_server_down_at_start(registry: ServerRegistry) -> None:
    registry.add("down", f"http://127.0.0.1:{free_port()}/", token="t")
    p = RemoteProvisioner(kernel_id="k", kernel_spec=remote_spec(), server="down")
    t0 = time.monotonic()
    with pytest.raises(KernelError, match="down") as caught:
        await _launch(p)
    assert time.monotonic() - t0 < 10
    assert "127.0.0.1" in str(caught.value)
    # Listing says so too, beside the local kernels, within the finder's limit.
    result = remote_finder(registry, time_limit=10).find()
    broken = result.get("remote/down")
    assert broken.problems
    assert "spec/python3" in {k.id for k in result}


async def test_server_killed_mid_execute(tmp_path: Path, registry: ServerRegistry) -> None:
    own = start_jupyter_server(tmp_path / "doomed")
    kernel_pid: int | None = None
    try:
        wait_until_up([own])
        server = registry.add("doomed", own.url, token=own.token)
        async with started(server) as p, connected(p, reconnect_timeout=1.0) as kc:
            outputs: list[Message] = []
            await kc.execute("import os; print(os.getpid())", outputs=outputs, timeout=20)
            kernel_pid = int(_text(outputs))
            pending = asyncio.create_task(kc.execute("import time; time.sleep(60)"))
            await asyncio.sleep(0.3)
            own.proc.kill()
            own.proc.wait(10)
            t0 = time.monotonic()
            # The socket drops; reconnecting fails for reconnect_timeout, then the
            # transport is lost and the request fails saying why.
            with pytest.raises(KernelError, match="could not be reopened") as caught:
                await asyncio.wait_for(pending, 30)
            assert time.monotonic() - t0 < 20
            assert "is the server running?" in str(caught.value)
            p.remote_kernel_id = None  # nothing to delete: the server is gone
    finally:
        own.stop()
        if kernel_pid is not None:
            _kill(kernel_pid)  # the kernel was in its own session, not the server's group


async def test_kernel_killed_on_the_server_is_followed_by_the_manager(
    registry: ServerRegistry, js: RemoteServer
) -> None:
    died: list[BaseException] = []
    km = AsyncKernelManager(
        "remote/js/python3", finder=remote_finder(registry), on_died=died.append
    )
    await km.start_kernel()
    try:
        async with km.client() as kc:
            await kc.wait_for_ready(timeout=30)
            outputs: list[Message] = []
            await kc.execute("import os; print(os.getpid())", outputs=outputs, timeout=20)
            pid = int(_text(outputs))
            pending = asyncio.create_task(kc.execute("import time; time.sleep(60)"))
            await asyncio.sleep(0.3)
            t0 = time.monotonic()
            os.kill(pid, signal.SIGKILL)
            with pytest.raises(KernelDied, match="restarting"):
                await asyncio.wait_for(pending, 20)
            await kc.wait_for_ready(timeout=30)
            assert time.monotonic() - t0 < 40
            outputs.clear()
            await kc.execute("import os; print(os.getpid())", outputs=outputs, timeout=20)
            assert int(_text(outputs)) != pid
            assert km.state == "running"
            assert await km.is_alive()
            assert not died  # followed, not reported dead
    finally:
        await km.shutdown_kernel()


async def test_kernel_that_keeps_dying_is_dead_once_the_server_gives_up(
    registry: ServerRegistry, js: RemoteServer, servers: dict[str, RunningServer]
) -> None:
    marker = dying_marker(servers["js"])
    dead: list[KernelError] = []
    gone = asyncio.Event()

    def on_dead(error: KernelError) -> None:
        dead.append(error)
        gone.set()

    km = AsyncKernelManager(kernel_spec=_remote_spec_on(DYING_SPEC, js), on_dead=on_dead)
    await km.start_kernel()
    try:
        async with km.client() as kc:
            await kc.wait_for_ready(timeout=30)
            outputs: list[Message] = []
            await kc.execute("import os; print(os.getpid())", outputs=outputs, timeout=20)
            pid = int(_text(outputs))
            marker.touch()  # every restart now exits at once
            os.kill(pid, signal.SIGKILL)
            # The test server restarts it once (servers.py), then reports it dead.
            await asyncio.wait_for(gone.wait(), 90)
            assert km.state == "dead"
            assert "server" in str(dead[0])
            t1 = time.monotonic()
            with pytest.raises(KernelDied) as caught:
                await kc.execute("1", timeout=30)
            assert time.monotonic() - t1 < 2  # at once, not at the timeout
            assert "server" in str(caught.value)
    finally:
        marker.unlink(missing_ok=True)
        await km.shutdown_kernel()


def _remote_spec_on(name: str, server: RemoteServer) -> KernelSpec:
    """A kernelspec whose metadata names the remote provisioner, as the provider makes."""
    config = {"server": server.name, "url": server.url, "kernel_name": name}
    return replace(
        remote_spec(name),
        metadata={"kernel_provisioner": {"provisioner_name": PROVISIONER_NAME, "config": config}},
    )


async def test_a_200_mb_message_is_refused_by_the_socket(js: RemoteServer) -> None:
    async with started(js) as p, connected(p, max_size=64 << 20) as kc:
        t0 = time.monotonic()
        # In the execute_reply (shell): the server's IOPub rate limit would drop output.
        with pytest.raises(KernelError, match="max_size"):
            await kc.execute(
                "big = 'x' * (200 << 20)", user_expressions={"big": "big"}, timeout=120
            )
        assert time.monotonic() - t0 < 90
        await kc.wait_for_ready(timeout=30)
        assert (await kc.execute("1", timeout=20)).content["status"] == "ok"
