"""Fixtures of the remote tests: the real servers (once per session) and a registry of
them in a temporary directory."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from kernelkit.remote import RemoteServer, ServerRegistry
from tests.remote.servers import (
    RunningServer,
    running_servers,
    start_enterprise_gateway,
    wait_until_up,
)


@pytest.fixture(scope="session")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, RunningServer]]:
    with running_servers(tmp_path_factory.mktemp("servers")) as running:
        yield running


@pytest.fixture(scope="session")
def enterprise_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """Started only by the tests that ask for it (its environment is made once)."""
    server = start_enterprise_gateway(tmp_path_factory.mktemp("enterprise_gateway"))
    try:
        wait_until_up([server])
        yield server
    finally:
        server.stop()


@pytest.fixture
def registry(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, servers: dict[str, RunningServer]
) -> ServerRegistry:
    """The user's registry (KERNELKIT_SERVERS_DIR) with both servers, tokens as files."""
    directory = tmp_path / "kernelkit-servers"
    monkeypatch.setenv("KERNELKIT_SERVERS_DIR", str(directory))
    reg = ServerRegistry()
    for name, server in servers.items():
        reg.add(name, server.url, token=server.token)
    return reg


@pytest.fixture
def js(registry: ServerRegistry) -> RemoteServer:
    return registry.get("js")


@pytest.fixture
def kg(registry: ServerRegistry) -> RemoteServer:
    return registry.get("kg")


@pytest.fixture
def eg(registry: ServerRegistry, enterprise_gateway: RunningServer) -> RemoteServer:
    return registry.add("eg", enterprise_gateway.url, token=enterprise_gateway.token)
