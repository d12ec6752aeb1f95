"""Remote kernels: Jupyter Server, Kernel Gateway and Enterprise Gateway as kernel sources.

- :class:`ServerRegistry`, :class:`RemoteServer`: the servers a user registered
  (``kernelkit servers add``), tokens kept in 0600 files or read from the environment.
- :class:`ServerAPI`: the REST API (httpx), errors translated into :class:`ServerError`
  and its subclasses.
- :class:`RemoteProvider`: the ``remote`` kernel provider (specs and running kernels).
- :class:`RemoteProvisioner`: starts, interrupts, restarts and stops a kernel through
  REST; :meth:`RemoteProvisioner.create_transport` gives a client its WebSocket.
- :func:`attach_client`: a client for a kernel already running on a server
  (``remote/<server>/kernels/<id>``), no manager.

Names load on first use: listing kernels must not pay for httpx, websockets or pyzmq.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from kernelkit._lazy import lazy_getattr

if TYPE_CHECKING:
    from kernelkit.remote._attach import attach_client
    from kernelkit.remote._errors import (
        ServerConfigError,
        ServerError,
        ServerUnreachable,
        TokenRefused,
    )
    from kernelkit.remote._provider import PROVISIONER_NAME, RemoteProvider
    from kernelkit.remote._provisioner import RemoteProvisioner
    from kernelkit.remote._rest import KernelModel, RemoteKernelSpec, ServerAPI, ServerInfo
    from kernelkit.remote._servers import RemoteServer, ServerRegistry

_EXPORTS = {
    "attach_client": "_attach",
    "KernelModel": "_rest",
    "PROVISIONER_NAME": "_provider",
    "RemoteKernelSpec": "_rest",
    "RemoteProvider": "_provider",
    "RemoteProvisioner": "_provisioner",
    "RemoteServer": "_servers",
    "ServerAPI": "_rest",
    "ServerConfigError": "_errors",
    "ServerError": "_errors",
    "ServerInfo": "_rest",
    "ServerRegistry": "_servers",
    "ServerUnreachable": "_errors",
    "TokenRefused": "_errors",
}

__all__ = [
    "PROVISIONER_NAME",
    "KernelModel",
    "RemoteKernelSpec",
    "RemoteProvider",
    "RemoteProvisioner",
    "RemoteServer",
    "ServerAPI",
    "ServerConfigError",
    "ServerError",
    "ServerInfo",
    "ServerRegistry",
    "ServerUnreachable",
    "TokenRefused",
    "attach_client",
]


__getattr__ = lazy_getattr(__name__, _EXPORTS, globals())


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})
