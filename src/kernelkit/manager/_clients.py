"""The clients a manager makes for its kernel: over ZeroMQ from the connection info, or
over the transport a provisioner makes itself (a remote kernel's WebSocket), and the
manager's private control client."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from kernelkit._connection import ConnectionInfo
from kernelkit._errors import KernelTimeout, ManagerError
from kernelkit.client import DEFAULT_FIRST_CONTACT_TIMEOUT, AsyncKernelClient
from kernelkit.protocol import Session
from kernelkit.provisioning import KernelProvisionerBase
from kernelkit.transport import Transport, ZMQTransport

__all__ = ["ControlClient", "TransportMaker", "makes_transports", "new_client"]


@runtime_checkable
class TransportMaker(Protocol):
    """A provisioner whose kernel is reached through a transport it makes (a kernel on
    a Jupyter Server or gateway: no connection info, no ZeroMQ)."""

    def create_transport(self, session: Session | None = None) -> Transport: ...


def makes_transports(p: KernelProvisionerBase | None) -> bool:
    """True when ``p``'s kernel is reached through ``p.create_transport()``. Such a
    kernel's server owns its lifetime: shutdown and restart go through the provisioner,
    never as messages, and the server restarts a kernel that died by itself."""
    return p is not None and isinstance(p, TransportMaker)


def new_client(
    p: KernelProvisionerBase,
    *,
    kernel_name: str,
    heartbeat: bool = True,
    heartbeat_interval: float = 0.5,
    heartbeat_timeout: float = 1.0,
    first_contact_timeout: float | None = DEFAULT_FIRST_CONTACT_TIMEOUT,
    silence_timeout: float | None = None,
) -> AsyncKernelClient:
    """A client (not started) for ``p``'s running kernel.

    ``silence_timeout`` applies to a local kernel (None: the manager reports its process's
    exit); a server's kernel keeps the client's default, as the server reports its death.

    Raises:
        ManagerError: the kernel has no connection info and ``p`` makes no transport.
    """
    if isinstance(p, TransportMaker):
        return AsyncKernelClient(
            p.create_transport(),
            kernel_name=kernel_name,
            heartbeat=heartbeat,
            heartbeat_interval=heartbeat_interval,
            heartbeat_timeout=heartbeat_timeout,
            first_contact_timeout=first_contact_timeout,
        )
    info = _info(p, kernel_name)
    return AsyncKernelClient.from_connection_info(
        info,
        heartbeat=heartbeat,
        heartbeat_interval=heartbeat_interval,
        heartbeat_timeout=heartbeat_timeout,
        first_contact_timeout=first_contact_timeout,
        silence_timeout=silence_timeout,
    )


def _info(p: KernelProvisionerBase, kernel_name: str) -> ConnectionInfo:
    info = p.connection_info
    if info is None:
        raise ManagerError(f"kernel {kernel_name!r} has no connection info")
    return info


class ControlClient:
    """The manager's private client (own identity, no heartbeat) for shutdown_request
    and interrupt_request; made on first use, closed with the kernel."""

    __slots__ = ("_client",)

    def __init__(self) -> None:
        self._client: AsyncKernelClient | None = None

    async def get(self, p: KernelProvisionerBase, *, kernel_name: str) -> AsyncKernelClient:
        """The started control client of ``p``'s kernel.

        Raises:
            ManagerError: the kernel has no connection info and ``p`` makes no transport.
            KernelError: the client could not be started.
        """
        if self._client is None or self._client.closed:
            if isinstance(p, TransportMaker):
                transport = p.create_transport()
            else:
                info = _info(p, kernel_name)
                # linger 0: once the kernel is gone, nothing queued for it matters.
                transport = ZMQTransport(info, linger_ms=0)
                kernel_name = info.kernel_name
            control = AsyncKernelClient(transport, kernel_name=kernel_name, heartbeat=False)
            await control.start()
            self._client = control
        return self._client

    async def interrupt(
        self, p: KernelProvisionerBase, *, kernel_name: str, timeout: float
    ) -> None:
        """``interrupt_request`` on control, waiting up to ``timeout`` for the reply.

        Raises:
            KernelTimeout: no interrupt_reply in time.
        """
        control = await self.get(p, kernel_name=kernel_name)
        try:
            await control.interrupt(timeout=timeout)
        except KernelTimeout:
            raise KernelTimeout(
                f"kernel {kernel_name!r} did not answer interrupt_request within {timeout:g} s"
            ) from None

    async def aclose(self) -> None:
        control, self._client = self._client, None
        if control is not None:
            await control.aclose()
