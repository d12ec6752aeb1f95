"""Moving messages between a client and a kernel: the interface and its implementations.

- :class:`Transport` / :class:`Receiver`: what the client needs, nothing about bytes.
- :class:`ZMQTransport`: ZeroMQ sockets driven by asyncio (a local or reachable kernel).
- :class:`NannyControl`: the control socket of a kernel's nanny (signals, restart, stop,
  and its death the moment it happens).
- :class:`MemoryTransport`: no sockets; the test plays the kernel.
- :class:`WebSocketTransport`: one WebSocket to a Jupyter Server or gateway (loaded on
  first use: websockets costs ~0.1 s to import, which only remote kernels should pay).
"""

from typing import TYPE_CHECKING, Any

from kernelkit.transport._base import Receiver, Transport
from kernelkit.transport._memory import MemoryTransport
from kernelkit.transport._nanny import NannyControl, NannyEventCallback, follow_restart
from kernelkit.transport._zmq import ZMQTransport

if TYPE_CHECKING:
    from kernelkit.transport._websocket import WebSocketTransport

__all__ = [
    "MemoryTransport",
    "NannyControl",
    "NannyEventCallback",
    "Receiver",
    "Transport",
    "WebSocketTransport",
    "ZMQTransport",
    "follow_restart",
]


def __getattr__(name: str) -> Any:
    if name == "WebSocketTransport":
        from kernelkit.transport._websocket import WebSocketTransport

        return WebSocketTransport
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
