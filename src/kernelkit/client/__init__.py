"""Talking to a kernel: one client core, its asyncio and blocking faces, and subshells.

- :class:`AsyncKernelClient` over any :class:`~kernelkit.transport.Transport`.
- :class:`KernelClient`: the same, blocking, driven from one loop thread it owns.
- :class:`AsyncSubshell` / :class:`Subshell`: the same requests, bound to a JEP 91
  subshell.
- :class:`AsyncMessageStream` / :class:`MessageStream`: received messages, per channel.
- :class:`ClientCore`: what both faces drive (``client.core``): transport, request
  tracking, waiters and liveness, on one event loop. Public here for tool builders who
  write a face of their own; applications use the faces. Not on ``kernelkit``'s top
  level.
"""

from kernelkit.client._async import DEFAULT_FIRST_CONTACT_TIMEOUT, AsyncKernelClient, AsyncSubshell
from kernelkit.client._blocking import KernelClient, Subshell
from kernelkit.client._core import ClientCore
from kernelkit.client._hooks import (
    BlockingStdinHook,
    OutputHook,
    StdinHook,
    print_output,
    read_input,
)
from kernelkit.client._requests import SUBSHELLS_FEATURE
from kernelkit.client._streams import AsyncMessageStream, MessageStream

__all__ = [
    "ClientCore",
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
