"""kernelkit: find every Jupyter kernel, launch it where it should run, and talk to it.

The public API is this module's ``__all__``. Names load on first use, so
``import kernelkit`` stays fast for command-line tools: nothing here imports
pyzmq, asyncio or rich until a name that needs it is touched.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from kernelkit._errors import (
    ClientClosed,
    ConnectionFileError,
    DiscoveryError,
    EnvironmentActivationError,
    ExecutionError,
    HeartbeatTimeout,
    KernelDied,
    KernelError,
    KernelSpecError,
    KernelStartError,
    KernelTimeout,
    LocalProtocolError,
    ManagerError,
    NoSuchKernel,
    PoolExhausted,
    ProtocolError,
    ProvisionerNotFound,
    ProvisioningError,
    RemoteProtocolError,
    UnknownKernelId,
    UnsupportedFeature,
)
from kernelkit._version import __version__

if TYPE_CHECKING:
    from kernelkit._connection import ConnectionInfo
    from kernelkit.protocol import PROTOCOL_VERSION, Header, Message

# Public name -> the module that defines it (loaded lazily by __getattr__).
_LAZY: dict[str, str] = {
    "ConnectionInfo": "kernelkit._connection",
    "Header": "kernelkit.protocol",
    "Message": "kernelkit.protocol",
    "PROTOCOL_VERSION": "kernelkit.protocol",
}

__all__ = [
    "PROTOCOL_VERSION",
    "ClientClosed",
    "ConnectionFileError",
    "ConnectionInfo",
    "DiscoveryError",
    "EnvironmentActivationError",
    "ExecutionError",
    "Header",
    "HeartbeatTimeout",
    "KernelDied",
    "KernelError",
    "KernelSpecError",
    "KernelStartError",
    "KernelTimeout",
    "LocalProtocolError",
    "ManagerError",
    "Message",
    "NoSuchKernel",
    "PoolExhausted",
    "ProtocolError",
    "ProvisionerNotFound",
    "ProvisioningError",
    "RemoteProtocolError",
    "UnknownKernelId",
    "UnsupportedFeature",
    "__version__",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'kernelkit' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
