"""Kernel discovery: providers, the :class:`KernelFinder`, and the built-in providers.

Listing reads the filesystem only (no subprocess, no sockets, no asyncio).
:meth:`KernelFinder.prepare` says what launching a kernel type takes (a
:class:`LaunchPlan`: the provisioner and its configuration, the kernelspec, the
activated environment); the managers (``kernelkit.manager``) take a kernel type or its
id, prepare its plan and launch it through the one launch sequence in
``kernelkit.provisioning``.
"""

from kernelkit.discovery._duplicates import resolve_duplicates
from kernelkit.discovery._finder import (
    BUILTIN_PROVIDERS,
    DEFAULT_TIME_LIMIT,
    ENTRY_POINT_GROUP,
    KernelFinder,
)
from kernelkit.discovery._providers import (
    EnvProvider,
    SpecProvider,
    interpreter_kernel_spec,
    runs_ipykernel,
)
from kernelkit.discovery._results import FindResult, KernelChange
from kernelkit.discovery._types import (
    ORIGIN_ENVIRONMENT,
    ORIGIN_INTERPRETER,
    ORIGIN_KERNELSPEC,
    DiscoveryProblem,
    KernelProvider,
    KernelType,
    LaunchPlan,
    plan_launch,
    shared_activator,
)

__all__ = [
    "BUILTIN_PROVIDERS",
    "DEFAULT_TIME_LIMIT",
    "ENTRY_POINT_GROUP",
    "ORIGIN_ENVIRONMENT",
    "ORIGIN_INTERPRETER",
    "ORIGIN_KERNELSPEC",
    "DiscoveryProblem",
    "EnvProvider",
    "FindResult",
    "KernelChange",
    "KernelFinder",
    "KernelProvider",
    "KernelType",
    "LaunchPlan",
    "SpecProvider",
    "interpreter_kernel_spec",
    "plan_launch",
    "resolve_duplicates",
    "runs_ipykernel",
    "shared_activator",
]
