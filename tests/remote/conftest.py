"""Fixtures of the remote tests: the real servers (once per session) and a registry of
them in a temporary directory."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from kernelkit.remote import RemoteServer, ServerRegistry
from tests.remote.servers import RunningServer, running_servers


@pytest.fixture(scope="session")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, RunningServer]]:
    with running_servers(tmp_path_factory.mktemp("servers")) as running:
        yield running


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
