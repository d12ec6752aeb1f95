"""Attaching a client to a kernel already running on a server (one we did not start:
it gets a client, no manager, and outlives it)."""

from __future__ import annotations

import re
from typing import Any

from kernelkit._errors import KernelError
from kernelkit.client import AsyncKernelClient
from kernelkit.remote._servers import RemoteServer, ServerRegistry
from kernelkit.transport._websocket import WebSocketTransport, channels_url

__all__ = ["attach_client", "parse_attach_id"]

_ATTACH_ID = re.compile(r"^(?:remote/)?(?P<server>[^/]+)/kernels/(?P<kernel>[^/]+)$")


def parse_attach_id(kernel: str) -> tuple[str, str] | None:
    """``(server, kernel id)`` of ``remote/<server>/kernels/<kernel-id>`` (``remote/`` may
    be left out), or None for any other name."""
    found = _ATTACH_ID.match(kernel)
    return (found["server"], found["kernel"]) if found else None


def attach_client(
    kernel: str,
    *,
    server: RemoteServer | None = None,
    registry: ServerRegistry | None = None,
    **options: Any,
) -> AsyncKernelClient:
    """A client (not started) for the running kernel ``remote/<server>/kernels/<id>``,
    or for kernel id ``kernel`` on ``server``. Closing the client leaves the kernel
    running. ``options`` go to :class:`~kernelkit.transport.WebSocketTransport`.

    Raises:
        KernelError: ``kernel`` is not such an id.
        ServerConfigError: no server by that name is registered, or its token cannot be
            read.
    """
    parsed = parse_attach_id(kernel)
    if server is None:
        if parsed is None:
            raise KernelError(
                f"{kernel!r} is not a running remote kernel: use "
                "remote/<server>/kernels/<kernel-id> as `kernelkit list` shows it"
            )
        server = (registry or ServerRegistry()).get(parsed[0])
    kernel_id = parsed[1] if parsed is not None else kernel
    transport = WebSocketTransport(
        channels_url(server.url, kernel_id),
        token=server.token(),
        kernel_name=f"{server.name}/kernels/{kernel_id}",
        **options,
    )
    return AsyncKernelClient(transport, kernel_name=f"{server.name}/kernels/{kernel_id}")
