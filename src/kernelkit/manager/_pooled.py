"""What a pool holds and hands out: :class:`AsyncPooledKernel`, and the pool's record of
each kernel type (its target size, ready kernels, starts, waiting callers)."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from types import TracebackType

from kernelkit._errors import KernelError
from kernelkit.client import AsyncKernelClient
from kernelkit.discovery import KernelType
from kernelkit.manager._choice import is_kernel_type_id
from kernelkit.manager._manager import AsyncKernelManager
from kernelkit.specs import KernelSpec

__all__ = [
    "AsyncPooledKernel",
    "Kind",
    "PoolKernel",
    "Warm",
    "kind_key",
]

Key = tuple[str, ...]
#: What a pool keeps kernels of: a kernelspec name or kernel type id, a KernelSpec, or a
#: KernelType.
PoolKernel = str | KernelSpec | KernelType


class AsyncPooledKernel:
    """A ready kernel from a :class:`AsyncKernelPool`; the caller owns it now.

    ``manager`` is its :class:`~kernelkit.manager.AsyncKernelManager`, ``client`` a started
    :class:`~kernelkit.client.AsyncKernelClient` whose ``wait_for_ready`` is done. Close
    both with :meth:`aclose` (or ``async with``): that shuts the kernel down.
    """

    __slots__ = ("_closed", "client", "manager")

    def __init__(self, manager: AsyncKernelManager, client: AsyncKernelClient) -> None:
        self.manager = manager
        self.client = client
        self._closed = False

    def __repr__(self) -> str:
        return f"<AsyncPooledKernel {self.manager.kernel_name} id={self.manager.kernel_id}>"

    @property
    def kernel_id(self) -> str:
        return self.manager.kernel_id

    @property
    def kernel_name(self) -> str:
        return self.manager.kernel_name

    async def aclose(self, *, now: bool = False) -> None:
        """Close the client and shut the kernel down (``now``: at once, no grace)."""
        if self._closed:
            return
        self._closed = True
        try:
            await self.client.aclose()
        finally:
            await self.manager.shutdown_kernel(now=now)

    async def __aenter__(self) -> AsyncPooledKernel:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


class Warm:
    """A kernel held by the pool, ready."""

    __slots__ = ("client", "expiry", "kind", "manager", "on_died")

    def __init__(self, kind: Kind, manager: AsyncKernelManager, client: AsyncKernelClient) -> None:
        self.kind = kind
        self.manager = manager
        self.client = client
        self.expiry: asyncio.TimerHandle | None = None
        self.on_died: Callable[[KernelError], object] | None = None


class Kind:
    """One kernel type: its target size and the kernels and callers waiting on it."""

    __slots__ = (
        "failures",
        "kernel_name",
        "kernel_spec",
        "kernel_type",
        "key",
        "label",
        "retry",
        "retry_at",
        "size",
        "starting",
        "waiters",
        "warm",
    )

    def __init__(self, key: Key, kernel: PoolKernel) -> None:
        self.key = key
        self.kernel_name = kernel if isinstance(kernel, str) else None
        self.kernel_spec = kernel if isinstance(kernel, KernelSpec) else None
        self.kernel_type = kernel if isinstance(kernel, KernelType) else None
        if isinstance(kernel, KernelSpec):
            self.label = kernel.name
        elif isinstance(kernel, KernelType):
            self.label = kernel.id
        else:
            self.label = kernel
        self.size = 0
        self.warm: deque[Warm] = deque()
        self.starting = 0
        self.waiters: deque[asyncio.Future[Warm]] = deque()
        self.failures = 0
        self.retry_at = 0.0
        self.retry: asyncio.TimerHandle | None = None


def kind_key(kernel: PoolKernel) -> Key:
    if isinstance(kernel, KernelSpec):
        return ("spec", kernel.name, str(kernel.resource_dir), *kernel.argv)
    if isinstance(kernel, KernelType):
        return ("type", kernel.id)
    return ("type", kernel) if is_kernel_type_id(kernel) else ("name", kernel)
