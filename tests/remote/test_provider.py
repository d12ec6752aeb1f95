"""The remote provider beside the local ones, against real servers."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from kernelkit import KernelFinder
from kernelkit.discovery import SpecProvider
from kernelkit.remote import RemoteProvider, ServerAPI, ServerRegistry
from kernelkit.remote._provider import ORIGIN_REMOTE_KERNEL, ORIGIN_SERVER
from tests.remote.servers import RunningServer, free_port

pytestmark = pytest.mark.integration


def _finder(registry: ServerRegistry, time_limit: float = 5.0) -> KernelFinder:
    return KernelFinder(
        {"spec": SpecProvider(), "remote": RemoteProvider(registry)}, time_limit=time_limit
    )


async def test_lists_specs_and_running_kernels_beside_local_ones(
    registry: ServerRegistry,
) -> None:
    async with ServerAPI(registry.get("js")) as api:
        model = await api.start_kernel("python3")
        try:
            result = _finder(registry).find()
        finally:
            await api.delete_kernel(model.id)
    ids = {k.id for k in result}
    assert "spec/python3" in ids
    assert {"remote/js/python3", "remote/kg/python3"} <= ids
    running = result.get(f"remote/js/kernels/{model.id}")
    assert running.origin == ORIGIN_REMOTE_KERNEL
    assert running.healthy
    config = running.spec.metadata["kernel_provisioner"]["config"]  # type: ignore[union-attr]
    assert config["remote_kernel_id"] == model.id
    # Kernel Gateway without list_kernels: its kernels are a problem, its specs are fine.
    kg_kernels = result.get("remote/kg/kernels")
    assert kg_kernels.origin == ORIGIN_SERVER
    assert "list_kernels" in kg_kernels.problems[0]
    assert result.get("remote/kg/python3").healthy
    assert not result.problems
    # Never the token, anywhere in what a listing shows.
    for server in registry.servers():
        token = server.token()
        assert token is not None
        assert token not in repr(list(result))


def test_wrong_token_and_server_down_are_problems_of_their_source(
    registry: ServerRegistry, servers: dict[str, RunningServer], tmp_path: Path
) -> None:
    wrong = tmp_path / "wrong"
    wrong.write_text("not-the-token\n")
    registry.add("badtoken", servers["js"].url, token="not-the-token")
    registry.add("down", f"http://127.0.0.1:{free_port()}/")
    started = time.monotonic()
    result = _finder(registry, time_limit=5.0).find()
    assert time.monotonic() - started < 5.0
    by_id = {k.id: k for k in result}
    assert "spec/python3" in by_id
    assert "remote/js/python3" in by_id
    assert "refused the token" in by_id["remote/badtoken"].problems[0]
    assert "not-the-token" not in by_id["remote/badtoken"].problems[0]
    assert "cannot reach server 'down'" in by_id["remote/down"].problems[0]
    assert not result.problems  # the provider itself is fine


def test_no_servers_lists_nothing(tmp_path: Path) -> None:
    assert RemoteProvider(ServerRegistry(tmp_path)).find_kernels() == []
