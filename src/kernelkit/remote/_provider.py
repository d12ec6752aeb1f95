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

from kernelkit.discovery import KernelProvider, KernelType
from kernelkit.remote._servers import RemoteServer, ServerRegistry

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
        # Imported here: asyncio and httpx only when there are servers to ask (a listing
        # of local kernels never needs them).
        from kernelkit.remote._listing import list_servers

        return list_servers(servers, timeout=self._timeout)
