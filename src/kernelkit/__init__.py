"""kernelkit: find every Jupyter kernel, launch it where it should run, and talk to it.

The public API is this module's ``__all__``. Names load on first use, so
``import kernelkit`` stays fast for command-line tools: nothing here imports
pyzmq, asyncio or rich until a name that needs it is touched.
"""

from __future__ import annotations

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
    RequestError,
    UnknownKernelId,
    UnsupportedFeature,
)
from kernelkit._version import __version__

# Not `from typing import ...`: importing typing alone costs more than the rest of this
# module, and `import kernelkit` must stay cheap for command-line tools.
TYPE_CHECKING = False

if TYPE_CHECKING:
    from typing import Any

    from kernelkit._connection import (
        ConnectionInfo,
        RegistrationInfo,
        allocate_ports,
        connection_file_path,
        new_key,
        read_connection_file,
        read_registration_file,
        write_connection_file,
        write_registration_file,
    )
    from kernelkit._loopthread import LoopThread
    from kernelkit.client import AsyncKernelClient, AsyncSubshell, KernelClient, Subshell
    from kernelkit.discovery import (
        DiscoveryProblem,
        EnvProvider,
        FindResult,
        KernelChange,
        KernelFinder,
        KernelProvider,
        KernelType,
        LaunchPlan,
        SpecProvider,
    )
    from kernelkit.envs import Activator, Environment, EnvLocations, find_environments
    from kernelkit.manager import (
        AsyncKernelManager,
        AsyncKernelPool,
        AsyncMultiKernelManager,
        AsyncPooledKernel,
        KernelManager,
        KernelPool,
        KernelState,
        MultiKernelManager,
        PooledKernel,
        start_new_async_kernel,
        start_new_kernel,
    )
    from kernelkit.protocol import PROTOCOL_VERSION, Header, Message, Session
    from kernelkit.provisioning import (
        KernelProvisionerBase,
        KernelProvisionerFactory,
        LocalProvisioner,
        launch_kernel,
    )
    from kernelkit.specs import (
        KernelSpec,
        find_kernel_specs,
        get_kernel_spec,
        install_kernel_spec,
        kernel_spec_dirs,
        load_kernel_spec,
        remove_kernel_spec,
        scan_kernel_specs,
    )
    from kernelkit.transport import MemoryTransport, Transport, ZMQTransport


# Public name -> the module that defines it (loaded lazily by __getattr__).
_LAZY: dict[str, str] = {
    "Activator": "kernelkit.envs",
    "AsyncKernelClient": "kernelkit.client",
    "AsyncKernelManager": "kernelkit.manager",
    "AsyncKernelPool": "kernelkit.manager",
    "AsyncMultiKernelManager": "kernelkit.manager",
    "AsyncPooledKernel": "kernelkit.manager",
    "AsyncSubshell": "kernelkit.client",
    "ConnectionInfo": "kernelkit._connection",
    "DiscoveryProblem": "kernelkit.discovery",
    "EnvLocations": "kernelkit.envs",
    "EnvProvider": "kernelkit.discovery",
    "Environment": "kernelkit.envs",
    "FindResult": "kernelkit.discovery",
    "Header": "kernelkit.protocol",
    "KernelChange": "kernelkit.discovery",
    "KernelClient": "kernelkit.client",
    "KernelFinder": "kernelkit.discovery",
    "KernelManager": "kernelkit.manager",
    "KernelPool": "kernelkit.manager",
    "KernelProvider": "kernelkit.discovery",
    "KernelProvisionerBase": "kernelkit.provisioning",
    "KernelProvisionerFactory": "kernelkit.provisioning",
    "KernelSpec": "kernelkit.specs",
    "KernelState": "kernelkit.manager",
    "KernelType": "kernelkit.discovery",
    "LaunchPlan": "kernelkit.discovery",
    "LocalProvisioner": "kernelkit.provisioning",
    "LoopThread": "kernelkit._loopthread",
    "MemoryTransport": "kernelkit.transport",
    "Message": "kernelkit.protocol",
    "MultiKernelManager": "kernelkit.manager",
    "PROTOCOL_VERSION": "kernelkit.protocol",
    "PooledKernel": "kernelkit.manager",
    "RegistrationInfo": "kernelkit._connection",
    "Session": "kernelkit.protocol",
    "SpecProvider": "kernelkit.discovery",
    "Subshell": "kernelkit.client",
    "Transport": "kernelkit.transport",
    "ZMQTransport": "kernelkit.transport",
    "allocate_ports": "kernelkit._connection",
    "connection_file_path": "kernelkit._connection",
    "find_environments": "kernelkit.envs",
    "find_kernel_specs": "kernelkit.specs",
    "get_kernel_spec": "kernelkit.specs",
    "install_kernel_spec": "kernelkit.specs",
    "kernel_spec_dirs": "kernelkit.specs",
    "launch_kernel": "kernelkit.provisioning",
    "load_kernel_spec": "kernelkit.specs",
    "new_key": "kernelkit._connection",
    "read_connection_file": "kernelkit._connection",
    "read_registration_file": "kernelkit._connection",
    "remove_kernel_spec": "kernelkit.specs",
    "scan_kernel_specs": "kernelkit.specs",
    "start_new_async_kernel": "kernelkit.manager",
    "start_new_kernel": "kernelkit.manager",
    "write_connection_file": "kernelkit._connection",
    "write_registration_file": "kernelkit._connection",
}

__all__ = [
    "PROTOCOL_VERSION",
    "Activator",
    "AsyncKernelClient",
    "AsyncKernelManager",
    "AsyncKernelPool",
    "AsyncMultiKernelManager",
    "AsyncPooledKernel",
    "AsyncSubshell",
    "ClientClosed",
    "ConnectionFileError",
    "ConnectionInfo",
    "DiscoveryError",
    "DiscoveryProblem",
    "EnvLocations",
    "EnvProvider",
    "Environment",
    "EnvironmentActivationError",
    "ExecutionError",
    "FindResult",
    "Header",
    "HeartbeatTimeout",
    "KernelChange",
    "KernelClient",
    "KernelDied",
    "KernelError",
    "KernelFinder",
    "KernelManager",
    "KernelPool",
    "KernelProvider",
    "KernelProvisionerBase",
    "KernelProvisionerFactory",
    "KernelSpec",
    "KernelSpecError",
    "KernelStartError",
    "KernelState",
    "KernelTimeout",
    "KernelType",
    "LaunchPlan",
    "LocalProtocolError",
    "LocalProvisioner",
    "LoopThread",
    "ManagerError",
    "MemoryTransport",
    "Message",
    "MultiKernelManager",
    "NoSuchKernel",
    "PoolExhausted",
    "PooledKernel",
    "ProtocolError",
    "ProvisionerNotFound",
    "ProvisioningError",
    "RegistrationInfo",
    "RemoteProtocolError",
    "RequestError",
    "Session",
    "SpecProvider",
    "Subshell",
    "Transport",
    "UnknownKernelId",
    "UnsupportedFeature",
    "ZMQTransport",
    "__version__",
    "allocate_ports",
    "connection_file_path",
    "find_environments",
    "find_kernel_specs",
    "get_kernel_spec",
    "install_kernel_spec",
    "kernel_spec_dirs",
    "launch_kernel",
    "load_kernel_spec",
    "new_key",
    "read_connection_file",
    "read_registration_file",
    "remove_kernel_spec",
    "scan_kernel_specs",
    "start_new_async_kernel",
    "start_new_kernel",
    "write_connection_file",
    "write_registration_file",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'kernelkit' has no attribute {name!r}")
    value = getattr(__import__(module, fromlist=(name,)), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
