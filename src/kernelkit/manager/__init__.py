"""Managing kernels we own (DESIGN.md, layer 5).

- :class:`AsyncKernelManager` / :class:`KernelManager`: one kernel: start, interrupt,
  restart, shutdown escalation, auto-restart on process exit, clients kept informed.
- :func:`start_new_async_kernel` / :func:`start_new_kernel`: a started kernel and a ready
  client in one call.
- :class:`AsyncMultiKernelManager` / :class:`MultiKernelManager`: many kernels by id from
  one event loop (parallel starts and shutdown, optional culling of idle kernels).
- :class:`AsyncKernelPool` / :class:`KernelPool`: warm kernels, ready to hand out.
"""

from kernelkit._lazy import lazy_getattr
from kernelkit.manager._manager import AsyncKernelManager
from kernelkit.manager._types import KernelState, KernelWatcher, RestartCallback, RestartEvent

# The blocking faces, the multi-kernel manager and the pool load on first use: what
# `kernelkit run` imports before its kernel starts is the async manager alone. The
# TYPE_CHECKING imports are their mirror for type checkers.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from kernelkit.manager._blocking import KernelManager, start_new_kernel
    from kernelkit.manager._multi import AsyncMultiKernelManager, CullCallback
    from kernelkit.manager._multi_blocking import ManagedKernel, MultiKernelManager
    from kernelkit.manager._pool import AsyncKernelPool
    from kernelkit.manager._pool_blocking import KernelPool, PooledKernel
    from kernelkit.manager._pooled import AsyncPooledKernel
    from kernelkit.manager._start_new import start_new_async_kernel

_LAZY = {
    "KernelManager": "_blocking",
    "start_new_kernel": "_blocking",
    "AsyncMultiKernelManager": "_multi",
    "CullCallback": "_multi",
    "ManagedKernel": "_multi_blocking",
    "MultiKernelManager": "_multi_blocking",
    "AsyncKernelPool": "_pool",
    "KernelPool": "_pool_blocking",
    "PooledKernel": "_pool_blocking",
    "AsyncPooledKernel": "_pooled",
    "start_new_async_kernel": "_start_new",
}


__getattr__ = lazy_getattr(__name__, _LAZY, globals())


__all__ = [
    "AsyncKernelManager",
    "AsyncKernelPool",
    "AsyncMultiKernelManager",
    "AsyncPooledKernel",
    "CullCallback",
    "KernelManager",
    "KernelPool",
    "KernelState",
    "KernelWatcher",
    "ManagedKernel",
    "MultiKernelManager",
    "PooledKernel",
    "RestartCallback",
    "RestartEvent",
    "start_new_async_kernel",
    "start_new_kernel",
]
