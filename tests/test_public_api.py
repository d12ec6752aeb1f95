"""The public surface is kernelkit.__all__; this test fails when it drifts."""

from __future__ import annotations

import subprocess
import sys

import pytest

import kernelkit

EXPECTED = [
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


def test_all_matches_the_reviewed_list() -> None:
    assert kernelkit.__all__ == EXPECTED


def test_all_is_sorted_with_constants_first() -> None:
    assert kernelkit.__all__ == sorted(kernelkit.__all__, key=lambda n: (not n.isupper(), n))


def test_every_public_name_resolves() -> None:
    for name in kernelkit.__all__:
        assert getattr(kernelkit, name) is not None, name


def test_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="NoSuchThing"):
        kernelkit.NoSuchThing  # type: ignore[attr-defined]  # noqa: B018


def test_import_loads_no_heavy_modules() -> None:
    code = (
        "import sys, kernelkit; "
        "heavy = [m for m in ('zmq', 'asyncio', 'rich', 'typer', 'orjson') if m in sys.modules]; "
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
