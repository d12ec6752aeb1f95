"""kernelkit: find every Jupyter kernel, launch it where it should run, and talk to it.

The public API is this module's ``__all__``: what a user touches, and every type that
a public method returns. Plugin authors and tests reach further, into the subpackages
(``kernelkit.provisioning``, ``kernelkit.transport``, ``kernelkit.envs``,
``kernelkit.testing``).

Names load on first use, so ``import kernelkit`` stays fast for command-line tools:
nothing here imports pyzmq, asyncio or rich until a name that needs it is touched.
``_EXPORTS`` is the one table: ``__all__`` and the lazy loading are computed from it,
and the ``TYPE_CHECKING`` block is its mirror for type checkers (a test fails when the
two disagree and prints the block to paste).
"""

from __future__ import annotations

from kernelkit._version import __version__ as __version__

# Not `from typing import ...`: importing typing alone costs more than the rest of this
# module, and `import kernelkit` must stay cheap for command-line tools.
TYPE_CHECKING = False

# Defining module -> the public names it gives this package.
_EXPORTS: dict[str, tuple[str, ...]] = {
    "kernelkit._connection": (
        "ConnectionInfo",
        "read_connection_file",
        "write_connection_file",
    ),
    "kernelkit._errors": (
        "ClientClosed",
        "ConnectionFileError",
        "DiscoveryError",
        "EnvironmentActivationError",
        "ExecutionError",
        "HeartbeatTimeout",
        "KernelDied",
        "KernelError",
        "KernelSpecError",
        "KernelStartError",
        "KernelTimeout",
        "LocalProtocolError",
        "ManagerError",
        "MessageTooLarge",
        "NoSuchKernel",
        "NotebookError",
        "PoolExhausted",
        "ProtocolError",
        "ProvisionerNotFound",
        "ProvisioningError",
        "RemoteProtocolError",
        "RequestError",
        "SignatureMismatch",
        "UnknownKernelId",
        "UnsupportedFeature",
    ),
    "kernelkit._loopthread": ("LoopThread",),
    "kernelkit.client": (
        "AsyncKernelClient",
        "AsyncMessageStream",
        "AsyncSubshell",
        "KernelClient",
        "MessageStream",
        "Subshell",
    ),
    "kernelkit.discovery": (
        "DiscoveryProblem",
        "EnvProvider",
        "FindResult",
        "KernelChange",
        "KernelFinder",
        "KernelProvider",
        "KernelType",
        "LaunchPlan",
        "SpecProvider",
    ),
    "kernelkit.envs": (
        "EnvLocations",
        "Environment",
        "EnvironmentScan",
        "find_environments",
    ),
    "kernelkit.manager": (
        "AsyncKernelManager",
        "AsyncKernelPool",
        "AsyncMultiKernelManager",
        "AsyncPooledKernel",
        "KernelManager",
        "KernelPool",
        "KernelState",
        "ManagedKernel",
        "MultiKernelManager",
        "PooledKernel",
        "start_new_async_kernel",
        "start_new_kernel",
    ),
    "kernelkit.protocol": (
        "PROTOCOL_VERSION",
        "Message",
        "Session",
    ),
    "kernelkit.provisioning": (
        "KernelProvisionerBase",
        "KernelProvisionerFactory",
        "LaunchParams",
        "LocalProvisioner",
        "SandboxProvisioner",
        "launch_kernel",
    ),
    "kernelkit.specs": (
        "KernelSpec",
        "find_kernel_specs",
        "get_kernel_spec",
        "install_kernel_spec",
        "kernel_spec_dirs",
        "load_kernel_spec",
        "remove_kernel_spec",
        "scan_kernel_specs",
    ),
    "kernelkit.transport": (
        "Receiver",
        "Transport",
    ),
}

if TYPE_CHECKING:
    from typing import Any

# The mirror of _EXPORTS (tests/test_public_api.py prints it when they disagree).
if TYPE_CHECKING:
    from kernelkit._connection import (
        ConnectionInfo as ConnectionInfo,
    )
    from kernelkit._connection import (
        read_connection_file as read_connection_file,
    )
    from kernelkit._connection import (
        write_connection_file as write_connection_file,
    )
    from kernelkit._errors import (
        ClientClosed as ClientClosed,
    )
    from kernelkit._errors import (
        ConnectionFileError as ConnectionFileError,
    )
    from kernelkit._errors import (
        DiscoveryError as DiscoveryError,
    )
    from kernelkit._errors import (
        EnvironmentActivationError as EnvironmentActivationError,
    )
    from kernelkit._errors import (
        ExecutionError as ExecutionError,
    )
    from kernelkit._errors import (
        HeartbeatTimeout as HeartbeatTimeout,
    )
    from kernelkit._errors import (
        KernelDied as KernelDied,
    )
    from kernelkit._errors import (
        KernelError as KernelError,
    )
    from kernelkit._errors import (
        KernelSpecError as KernelSpecError,
    )
    from kernelkit._errors import (
        KernelStartError as KernelStartError,
    )
    from kernelkit._errors import (
        KernelTimeout as KernelTimeout,
    )
    from kernelkit._errors import (
        LocalProtocolError as LocalProtocolError,
    )
    from kernelkit._errors import (
        ManagerError as ManagerError,
    )
    from kernelkit._errors import (
        MessageTooLarge as MessageTooLarge,
    )
    from kernelkit._errors import (
        NoSuchKernel as NoSuchKernel,
    )
    from kernelkit._errors import (
        NotebookError as NotebookError,
    )
    from kernelkit._errors import (
        PoolExhausted as PoolExhausted,
    )
    from kernelkit._errors import (
        ProtocolError as ProtocolError,
    )
    from kernelkit._errors import (
        ProvisionerNotFound as ProvisionerNotFound,
    )
    from kernelkit._errors import (
        ProvisioningError as ProvisioningError,
    )
    from kernelkit._errors import (
        RemoteProtocolError as RemoteProtocolError,
    )
    from kernelkit._errors import (
        RequestError as RequestError,
    )
    from kernelkit._errors import (
        SignatureMismatch as SignatureMismatch,
    )
    from kernelkit._errors import (
        UnknownKernelId as UnknownKernelId,
    )
    from kernelkit._errors import (
        UnsupportedFeature as UnsupportedFeature,
    )
    from kernelkit._loopthread import (
        LoopThread as LoopThread,
    )
    from kernelkit.client import (
        AsyncKernelClient as AsyncKernelClient,
    )
    from kernelkit.client import (
        AsyncMessageStream as AsyncMessageStream,
    )
    from kernelkit.client import (
        AsyncSubshell as AsyncSubshell,
    )
    from kernelkit.client import (
        KernelClient as KernelClient,
    )
    from kernelkit.client import (
        MessageStream as MessageStream,
    )
    from kernelkit.client import (
        Subshell as Subshell,
    )
    from kernelkit.discovery import (
        DiscoveryProblem as DiscoveryProblem,
    )
    from kernelkit.discovery import (
        EnvProvider as EnvProvider,
    )
    from kernelkit.discovery import (
        FindResult as FindResult,
    )
    from kernelkit.discovery import (
        KernelChange as KernelChange,
    )
    from kernelkit.discovery import (
        KernelFinder as KernelFinder,
    )
    from kernelkit.discovery import (
        KernelProvider as KernelProvider,
    )
    from kernelkit.discovery import (
        KernelType as KernelType,
    )
    from kernelkit.discovery import (
        LaunchPlan as LaunchPlan,
    )
    from kernelkit.discovery import (
        SpecProvider as SpecProvider,
    )
    from kernelkit.envs import (
        Environment as Environment,
    )
    from kernelkit.envs import (
        EnvironmentScan as EnvironmentScan,
    )
    from kernelkit.envs import (
        EnvLocations as EnvLocations,
    )
    from kernelkit.envs import (
        find_environments as find_environments,
    )
    from kernelkit.manager import (
        AsyncKernelManager as AsyncKernelManager,
    )
    from kernelkit.manager import (
        AsyncKernelPool as AsyncKernelPool,
    )
    from kernelkit.manager import (
        AsyncMultiKernelManager as AsyncMultiKernelManager,
    )
    from kernelkit.manager import (
        AsyncPooledKernel as AsyncPooledKernel,
    )
    from kernelkit.manager import (
        KernelManager as KernelManager,
    )
    from kernelkit.manager import (
        KernelPool as KernelPool,
    )
    from kernelkit.manager import (
        KernelState as KernelState,
    )
    from kernelkit.manager import (
        ManagedKernel as ManagedKernel,
    )
    from kernelkit.manager import (
        MultiKernelManager as MultiKernelManager,
    )
    from kernelkit.manager import (
        PooledKernel as PooledKernel,
    )
    from kernelkit.manager import (
        start_new_async_kernel as start_new_async_kernel,
    )
    from kernelkit.manager import (
        start_new_kernel as start_new_kernel,
    )
    from kernelkit.protocol import (
        PROTOCOL_VERSION as PROTOCOL_VERSION,
    )
    from kernelkit.protocol import (
        Message as Message,
    )
    from kernelkit.protocol import (
        Session as Session,
    )
    from kernelkit.provisioning import (
        KernelProvisionerBase as KernelProvisionerBase,
    )
    from kernelkit.provisioning import (
        KernelProvisionerFactory as KernelProvisionerFactory,
    )
    from kernelkit.provisioning import (
        LaunchParams as LaunchParams,
    )
    from kernelkit.provisioning import (
        LocalProvisioner as LocalProvisioner,
    )
    from kernelkit.provisioning import (
        SandboxProvisioner as SandboxProvisioner,
    )
    from kernelkit.provisioning import (
        launch_kernel as launch_kernel,
    )
    from kernelkit.specs import (
        KernelSpec as KernelSpec,
    )
    from kernelkit.specs import (
        find_kernel_specs as find_kernel_specs,
    )
    from kernelkit.specs import (
        get_kernel_spec as get_kernel_spec,
    )
    from kernelkit.specs import (
        install_kernel_spec as install_kernel_spec,
    )
    from kernelkit.specs import (
        kernel_spec_dirs as kernel_spec_dirs,
    )
    from kernelkit.specs import (
        load_kernel_spec as load_kernel_spec,
    )
    from kernelkit.specs import (
        remove_kernel_spec as remove_kernel_spec,
    )
    from kernelkit.specs import (
        scan_kernel_specs as scan_kernel_specs,
    )
    from kernelkit.transport import (
        Receiver as Receiver,
    )
    from kernelkit.transport import (
        Transport as Transport,
    )


_WHERE: dict[str, str] = {name: module for module, names in _EXPORTS.items() for name in names}

__all__ = sorted([*_WHERE, "__version__"], key=lambda n: (not n.isupper(), n))


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'kernelkit' has no attribute {name!r}")
    value = getattr(__import__(module, fromlist=(name,)), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_WHERE))
