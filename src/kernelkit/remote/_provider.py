"""The ``remote`` kernel provider: each registered server's kernelspecs and running
kernels, listed beside the local ones.

Ids (the finder adds ``remote/``):

- ``remote/<server>/<kernelspec>``: start a new kernel there;
- ``remote/<server>/kernels/<kernel-id>``: a kernel running there (attach to it);
- ``remote/<server>``: not a kernel; listed with ``problems`` when the server cannot be
  used (unreachable, token refused), so ``kernelkit list --broken`` says why;
- ``remote/<server>/kernels``: likewise, when a gateway does not list its kernels.

Each kernel type's spec names :class:`~kernelkit.remote.RemoteProvisioner` in
``metadata.kernel_provisioner`` (with the server, URL and kernelspec, never the token),
so any manager that launches a spec through the provisioner factory starts it remotely.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from kernelkit.discovery import KernelProvider, KernelType
from kernelkit.remote._errors import ServerError, TokenRefused
from kernelkit.remote._servers import RemoteServer, ServerRegistry
from kernelkit.specs import KernelSpec

__all__ = [
    "ORIGIN_REMOTE_KERNEL",
    "PROVISIONER_NAME",
    "ORIGIN_REMOTE_KERNELSPEC",
    "ORIGIN_SERVER",
    "RemoteProvider",
]

#: The name the remote provisioner is registered under (``kernelkit.provisioners``).
PROVISIONER_NAME = "remote-provisioner"

#: A server's kernelspec: launching it starts a new kernel on the server.
ORIGIN_REMOTE_KERNELSPEC = "remote-kernelspec"
#: A kernel running on a server: launching it attaches to it.
ORIGIN_REMOTE_KERNEL = "remote-kernel"
#: Not a kernel: a server (or its kernel list) that cannot be used; always has problems.
ORIGIN_SERVER = "server"


class RemoteProvider(KernelProvider):
    """Kernel types from every server in ``registry`` (default: the user's registry),
    or from ``servers`` when given. Each server gets ``timeout`` seconds (all are asked
    at once), so a listing stays within the finder's time limit."""

    def __init__(
        self,
        registry: ServerRegistry | None = None,
        *,
        servers: list[RemoteServer] | None = None,
        timeout: float = 3.0,
    ) -> None:
        self._registry = registry
        self._servers = servers
        self._timeout = timeout

    def _server_list(self) -> list[RemoteServer]:
        if self._servers is not None:
            return list(self._servers)
        return (self._registry or ServerRegistry()).servers()

    def find_kernels(self) -> list[KernelType]:
        servers = self._server_list()
        if not servers:
            return []
        return asyncio.run(self._find_all(servers))

    async def _find_all(self, servers: list[RemoteServer]) -> list[KernelType]:
        results = await asyncio.gather(*(self._find_one(s) for s in servers))
        return [kernel for kernels in results for kernel in kernels]

    async def _find_one(self, server: RemoteServer) -> list[KernelType]:
        try:
            return await asyncio.wait_for(self._list_server(server), self._timeout)
        except asyncio.TimeoutError:
            reason = f"no answer within {self._timeout:g} s: is the server overloaded or hung?"
        except ServerError as exc:
            reason = str(exc)
        return [_server_problem(server, server.name, reason)]

    async def _list_server(self, server: RemoteServer) -> list[KernelType]:
        from kernelkit.remote._rest import ServerAPI  # httpx: only when servers exist

        async with ServerAPI(server, timeout=self._timeout) as api:
            info = await api.info()
            specs_task = asyncio.ensure_future(api.kernelspecs())
            try:
                models = await api.kernels()
                kernels_problem = None
            except TokenRefused as exc:
                models = []
                kernels_problem = str(exc)
            _, specs = await specs_task
        remote = {"server": server.name, "url": server.url, "server_kind": info.kind}
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
                    "metadata": {
                        k: v for k, v in base.metadata.items() if k != "kernel_provisioner"
                    },
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
            found.append(_server_problem(server, f"{server.name}/kernels", kernels_problem))
        return found


def _server_problem(server: RemoteServer, name: str, reason: str) -> KernelType:
    return KernelType(
        name=name,
        display_name=f"server {server.name} ({server.url})",
        language="",
        origin=ORIGIN_SERVER,
        metadata={"remote": {"server": server.name, "url": server.url}},
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
