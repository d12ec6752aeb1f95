"""Kernel discovery: providers, the :class:`KernelFinder`, and the built-in providers.

Listing reads the filesystem only (no subprocess, no sockets). Launching
(:meth:`KernelFinder.alaunch` / :meth:`KernelFinder.launch`) activates the kernel's
environment and starts it through a provisioner; its modules load on first launch.
:meth:`KernelFinder.prepare` gives a caller that manages the kernel itself (e.g. with
``AsyncKernelManager``) what to launch it with: its kernelspec and activated environment.
"""

from kernelkit.discovery._finder import (
    BUILTIN_PROVIDERS,
    DEFAULT_TIME_LIMIT,
    ENTRY_POINT_GROUP,
    FindResult,
    KernelChange,
    KernelFinder,
    resolve_duplicates,
)
from kernelkit.discovery._providers import (
    EnvProvider,
    SpecProvider,
    interpreter_kernel_spec,
    runs_ipykernel,
)
from kernelkit.discovery._types import (
    ORIGIN_ENVIRONMENT,
    ORIGIN_INTERPRETER,
    ORIGIN_KERNELSPEC,
    DiscoveryProblem,
    KernelHandle,
    KernelProvider,
    KernelType,
    LaunchOptions,
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
    "KernelHandle",
    "KernelProvider",
    "KernelType",
    "LaunchOptions",
    "LaunchPlan",
    "SpecProvider",
    "interpreter_kernel_spec",
    "plan_launch",
    "resolve_duplicates",
    "runs_ipykernel",
    "shared_activator",
]
