"""The public surface is kernelkit.__all__; this test fails when it drifts."""

from __future__ import annotations

import ast
import importlib
import inspect
import subprocess
import sys
import typing
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import kernelkit

EXPECTED = [
    "PROTOCOL_VERSION",
    "AsyncKernelClient",
    "AsyncKernelManager",
    "AsyncKernelPool",
    "AsyncMessageStream",
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
    "EnvironmentScan",
    "ExecutionError",
    "FindResult",
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
    "LaunchParams",
    "LaunchPlan",
    "LocalProtocolError",
    "LocalProvisioner",
    "LoopThread",
    "ManagedKernel",
    "ManagerError",
    "Message",
    "MessageStream",
    "MessageTooLarge",
    "MultiKernelManager",
    "NoSuchKernel",
    "NotebookError",
    "PoolExhausted",
    "PooledKernel",
    "ProtocolError",
    "ProvisionerNotFound",
    "ProvisioningError",
    "Receiver",
    "RemoteProtocolError",
    "RequestError",
    "SandboxProvisioner",
    "Session",
    "SignatureMismatch",
    "SpecProvider",
    "Subshell",
    "Transport",
    "UnknownKernelId",
    "UnsupportedFeature",
    "__version__",
    "find_environments",
    "find_kernel_specs",
    "get_kernel_spec",
    "install_kernel_spec",
    "kernel_spec_dirs",
    "launch_kernel",
    "load_kernel_spec",
    "read_connection_file",
    "remove_kernel_spec",
    "scan_kernel_specs",
    "start_new_async_kernel",
    "start_new_kernel",
    "write_connection_file",
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


def _type_checking_imports() -> dict[str, set[str]]:
    """What the ``if TYPE_CHECKING:`` blocks of kernelkit/__init__.py import, by module."""
    tree = ast.parse(Path(kernelkit.__file__).read_text(encoding="utf-8"))
    found: dict[str, set[str]] = {}
    for node in tree.body:
        if isinstance(node, ast.If) and getattr(node.test, "id", "") == "TYPE_CHECKING":
            for stmt in node.body:
                if isinstance(stmt, ast.ImportFrom) and stmt.module != "typing":
                    assert stmt.module is not None
                    for alias in stmt.names:
                        # "X as X": an explicit re-export for strict type checkers
                        assert alias.asname == alias.name, f"{alias.name} needs 'as {alias.name}'"
                        found.setdefault(stmt.module, set()).add(alias.name)
    return found


def _mirror_block() -> str:
    lines = ["if TYPE_CHECKING:"]
    for module, names in sorted(kernelkit._EXPORTS.items()):
        lines.append(f"    from {module} import (")
        lines.extend(f"        {n} as {n}," for n in sorted(names))
        lines.append("    )")
    return "\n".join(lines)


def test_type_checking_block_mirrors_the_table() -> None:
    table = {module: set(names) for module, names in kernelkit._EXPORTS.items()}
    assert _type_checking_imports() == table, (
        "kernelkit/__init__.py: the TYPE_CHECKING block and _EXPORTS disagree; paste this "
        "block (then `ruff format`):\n" + _mirror_block()
    )


def test_each_name_comes_from_the_module_the_table_names() -> None:
    for module, names in kernelkit._EXPORTS.items():
        loaded = importlib.import_module(module)
        for name in names:
            assert getattr(kernelkit, name) is getattr(loaded, name), (module, name)


def _kernelkit_types(annotation: object, out: set[type]) -> None:
    origin = typing.get_origin(annotation)
    if origin is not None:
        for arg in typing.get_args(annotation):
            _kernelkit_types(arg, out)
        if isinstance(origin, type):
            _kernelkit_types(origin, out)
    elif isinstance(annotation, type) and annotation.__module__.startswith("kernelkit"):
        out.add(annotation)


_PROTOCOL_METHODS = {"__enter__", "__aenter__", "__iter__", "__aiter__", "__next__", "__anext__"}


def _public_callables() -> Iterator[tuple[str, Callable[..., object]]]:
    for name in kernelkit.__all__:
        obj = getattr(kernelkit, name)
        if inspect.isclass(obj):
            for attr in dir(obj):
                if attr.startswith("_") and attr not in _PROTOCOL_METHODS:
                    continue
                static = inspect.getattr_static(obj, attr)
                if isinstance(static, property) and static.fget is not None:
                    yield f"{name}.{attr}", static.fget
                elif isinstance(static, (staticmethod, classmethod)):
                    yield f"{name}.{attr}", static.__func__
                elif inspect.isfunction(static):
                    yield f"{name}.{attr}", static
        elif inspect.isfunction(obj):
            yield name, obj


# Returned by a public member but deliberately not top-level, each with the reason. Keep short.
_NOT_TOP_LEVEL = {
    # Public in kernelkit.client, for tool builders (one core, several faces: send_request,
    # get_reply, messages); an application never needs it, so it stays off the top level.
    "kernelkit.client._core.ClientCore",
}


def test_every_type_a_public_method_returns_is_public() -> None:
    unexported: dict[str, list[str]] = {}
    for label, fn in _public_callables():
        returned: set[type] = set()
        _kernelkit_types(typing.get_type_hints(fn).get("return"), returned)
        for cls in returned:
            where = f"{cls.__module__}.{cls.__qualname__}"
            if getattr(kernelkit, cls.__name__, None) is not cls and where not in _NOT_TOP_LEVEL:
                unexported.setdefault(where, []).append(label)
    assert not unexported, f"returned by public methods but not in kernelkit.__all__: {unexported}"
