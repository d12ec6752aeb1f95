"""Asking every server at once what it offers (asyncio and httpx: loaded only when
servers are registered; see :class:`~kernelkit.remote.RemoteProvider`)."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from kernelkit.discovery import KernelType
from kernelkit.remote._errors import ServerError, TokenRefused
from kernelkit.remote._provider import (
    ORIGIN_REMOTE_KERNEL,
    ORIGIN_REMOTE_KERNELSPEC,
    ORIGIN_SERVER,
    PROVISIONER_NAME,
)
from kernelkit.remote._rest import ServerAPI
from kernelkit.remote._servers import RemoteServer
from kernelkit.specs import KernelSpec

__all__ = ["list_servers"]


def list_servers(servers: list[RemoteServer], *, timeout: float) -> list[KernelType]:
    """The kernel types of ``servers``, each asked at once and given ``timeout`` seconds;
    a server that cannot be used is one kernel type with the reason in ``problems``."""
    return asyncio.run(_find_all(servers, timeout))


async def _find_all(servers: list[RemoteServer], timeout: float) -> list[KernelType]:
    results = await asyncio.gather(*(_find_one(s, timeout) for s in servers))
    return [kernel for kernels in results for kernel in kernels]


async def _find_one(server: RemoteServer, timeout: float) -> list[KernelType]:
    try:
        return await asyncio.wait_for(_list_server(server, timeout), timeout)
    except asyncio.TimeoutError:
        reason = f"no answer within {timeout:g} s: is the server overloaded or hung?"
    except ServerError as exc:
        reason = str(exc)
    return [_server_problem(server, server.name, reason)]


async def _list_server(server: RemoteServer, timeout: float) -> list[KernelType]:
    async with ServerAPI(server, timeout=timeout) as api:
        info = await api.info()
        listed_specs, listed_kernels = await asyncio.gather(
            api.kernelspecs(), api.kernels(), return_exceptions=True
        )
    if isinstance(listed_specs, BaseException):
        raise listed_specs
    _, specs = listed_specs
    kernels_problem = None
    if isinstance(listed_kernels, TokenRefused):
        # A gateway without list_kernels: its kernelspecs are still usable.
        models = []
        kernels_problem = str(listed_kernels)
    elif isinstance(listed_kernels, BaseException):
        raise listed_kernels
    else:
        models = listed_kernels
    remote = {
        "server": server.name,
        "url": server.url,
        "server_kind": info.kind,
        # A Kernel Gateway's /api gives the version of its jupyter_server, not its own.
        "server_version": info.gateway_version
        or (info.version if info.kind != "kernel_gateway" else None),
    }
    found: list[KernelType] = []
    by_name = {}
    for rspec in specs:
        spec = _kernel_spec(server, rspec.name, rspec.spec, rspec.resources)
        by_name[rspec.name] = spec
        found.append(
            KernelType(
                name=f"{server.name}/{rspec.name}",
                display_name=f"{spec.display_name} (on {server.name})",
                language=spec.language,
                origin=ORIGIN_REMOTE_KERNELSPEC,
                metadata={**spec.metadata, "remote": {**remote, "kernel_name": rspec.name}},
                spec=spec,
            )
        )
    for model in models:
        base = by_name.get(model.name) or _kernel_spec(server, model.name, {}, {})
        spec = _kernel_spec(
            server,
            model.name,
            {
                "argv": list(base.argv),
                "display_name": base.display_name,
                "language": base.language,
                "metadata": {k: v for k, v in base.metadata.items() if k != "kernel_provisioner"},
            },
            {},
            remote_kernel_id=model.id,
        )
        found.append(
            KernelType(
                name=f"{server.name}/kernels/{model.id}",
                display_name=(
                    f"{base.display_name} kernel {model.id[:8]} on {server.name} "
                    f"({model.execution_state or 'unknown state'}, "
                    f"{model.connections} connected)"
                ),
                language=base.language,
                origin=ORIGIN_REMOTE_KERNEL,
                metadata={
                    **spec.metadata,
                    "remote": {
                        **remote,
                        "kernel_name": model.name,
                        "kernel_id": model.id,
                        "execution_state": model.execution_state,
                        "last_activity": model.last_activity,
                        "connections": model.connections,
                    },
                },
                spec=spec,
            )
        )
    if kernels_problem is not None:
        found.append(
            _server_problem(server, f"{server.name}/kernels", kernels_problem, remote=remote)
        )
    return found


def _server_problem(
    server: RemoteServer, name: str, reason: str, *, remote: Mapping[str, Any] | None = None
) -> KernelType:
    """A kernel type that is not a kernel: what cannot be used of ``server`` (with what
    the server said about itself in ``remote``, when it answered)."""
    return KernelType(
        name=name,
        display_name=f"server {server.name} ({server.url})",
        language="",
        origin=ORIGIN_SERVER,
        metadata={"remote": dict(remote or {"server": server.name, "url": server.url})},
        problems=(reason,),
    )


def _kernel_spec(
    server: RemoteServer,
    name: str,
    spec: Mapping[str, Any],
    resources: Mapping[str, str],
    *,
    remote_kernel_id: str | None = None,
) -> KernelSpec:
    """A local view of the server's kernelspec ``name``, whose metadata names the remote
    provisioner (its argv is the server's, for display; it never runs here)."""
    argv = spec.get("argv")
    metadata = spec.get("metadata")
    config: dict[str, Any] = {"server": server.name, "url": server.url, "kernel_name": name}
    if remote_kernel_id is not None:
        config["remote_kernel_id"] = remote_kernel_id
    mode = spec.get("interrupt_mode")
    return KernelSpec(
        name=name,
        # Never a directory here: the resources are URLs on the server (metadata).
        resource_dir=Path("/nonexistent/kernelkit-remote") / server.name / name,
        argv=tuple(str(a) for a in argv) if isinstance(argv, list) else (),
        display_name=str(spec.get("display_name") or name),
        language=str(spec.get("language") or ""),
        interrupt_mode="message" if mode == "message" else "signal",
        metadata={
            **(metadata if isinstance(metadata, dict) else {}),
            "kernel_provisioner": {"provisioner_name": PROVISIONER_NAME, "config": config},
            "resources": dict(resources),
        },
    )
