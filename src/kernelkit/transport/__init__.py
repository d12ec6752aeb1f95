"""Moving messages between a client and a kernel: the interface and its implementations.

- :class:`Transport` / :class:`Receiver`: what the client needs, nothing about bytes.
- :class:`ZMQTransport`: ZeroMQ sockets driven by asyncio (a local or reachable kernel).
- :class:`MemoryTransport`: no sockets; the test plays the kernel.
"""

from kernelkit.transport._base import Receiver, Transport
from kernelkit.transport._memory import MemoryTransport
from kernelkit.transport._zmq import ZMQTransport

__all__ = [
    "MemoryTransport",
    "Receiver",
    "Transport",
    "ZMQTransport",
]
