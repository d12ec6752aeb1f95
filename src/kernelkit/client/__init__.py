"""Talking to a kernel: the asyncio client, its blocking twin, and subshells.

- :class:`AsyncKernelClient` over any :class:`~kernelkit.transport.Transport`.
- :class:`KernelClient`: the same, blocking, driven from one loop thread it owns.
- :class:`AsyncSubshell` / :class:`Subshell`: JEP 91 subshell handles.
"""

from kernelkit.client._async import (
    DEFAULT_FIRST_CONTACT_TIMEOUT,
    SUBSHELLS_FEATURE,
    AsyncKernelClient,
    AsyncMessageStream,
    AsyncSubshell,
    OutputHook,
    StdinHook,
)
from kernelkit.client._blocking import BlockingStdinHook, KernelClient, MessageStream, Subshell
from kernelkit.client._requests import print_output, read_input

__all__ = [
    "DEFAULT_FIRST_CONTACT_TIMEOUT",
    "SUBSHELLS_FEATURE",
    "AsyncKernelClient",
    "AsyncMessageStream",
    "AsyncSubshell",
    "BlockingStdinHook",
    "KernelClient",
    "MessageStream",
    "OutputHook",
    "StdinHook",
    "Subshell",
    "print_output",
    "read_input",
]
