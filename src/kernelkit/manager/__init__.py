"""Managing kernels we own (DESIGN.md, layer 5).

- :class:`AsyncKernelManager` / :class:`KernelManager`: one kernel: start, interrupt,
  restart, shutdown escalation, auto-restart on process exit, clients kept informed.
- :func:`start_new_async_kernel` / :func:`start_new_kernel`: a started kernel and a ready
  client in one call.
"""

from kernelkit.manager._blocking import KernelManager, start_new_kernel
from kernelkit.manager._manager import (
    AsyncKernelManager,
    KernelState,
    KernelWatcher,
    RestartCallback,
    RestartEvent,
    start_new_async_kernel,
)

__all__ = [
    "AsyncKernelManager",
    "KernelManager",
    "KernelState",
    "KernelWatcher",
    "RestartCallback",
    "RestartEvent",
    "start_new_async_kernel",
    "start_new_kernel",
]
