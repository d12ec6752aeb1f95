"""What a manager launches: a kernelspec (by name or given), or a kernel type (by id or
given) whose provider's plan names the provisioner; checked here, looked up once."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from kernelkit._errors import KernelSpecError, ManagerError
from kernelkit.discovery import KernelFinder, KernelType, LaunchPlan
from kernelkit.provisioning import KernelProvisionerFactory
from kernelkit.specs import KernelSpec, provisioner_choice

__all__ = [
    "DEFAULT_KERNEL_NAME",
    "KernelLaunch",
    "check_kernel_choice",
    "default_finder",
    "is_kernel_type_id",
    "plan_launch_of",
    "spec_launch",
]

DEFAULT_KERNEL_NAME = "python3"

_finder_lock = threading.Lock()
_finder: KernelFinder | None = None


def default_finder() -> KernelFinder:
    """The finder managers look kernel ids up with when given none (one per process, so
    its listing cache is shared)."""
    global _finder
    with _finder_lock:
        if _finder is None:
            _finder = KernelFinder()
        return _finder


def is_kernel_type_id(name: str) -> bool:
    """True when ``name`` is a kernel type id (``spec/python3``, ``env/<env-id>/python3``):
    kernelspec names never contain ``/``, ids always do."""
    return "/" in name


@dataclass(frozen=True, slots=True)
class KernelLaunch:
    """What one start launches: the spec, the provisioner and its config, and the
    complete environment of a plan (None: this process's environment at launch)."""

    spec: KernelSpec
    provisioner_name: str
    provisioner_config: Mapping[str, Any] = field(default_factory=dict)
    base_env: Mapping[str, str] | None = None


def check_kernel_choice(
    kernel_name: object, *, kernel_spec: object = None, kernel_type: object = None
) -> None:
    """Check what a manager is asked to launch: a kernelspec name or kernel type id, a
    :class:`~kernelkit.specs.KernelSpec`, or a :class:`~kernelkit.discovery.KernelType`.

    Raises:
        ManagerError: a value of the wrong type, or two choices that disagree.
    """
    if kernel_name is not None and (not isinstance(kernel_name, str) or not kernel_name):
        raise ManagerError(
            "kernel_name is a kernelspec name ('python3') or a kernel type id "
            f"('spec/python3', 'env/<env-id>/python3'), not {kernel_name!r}"
        )
    if kernel_spec is not None and not isinstance(kernel_spec, KernelSpec):
        raise ManagerError(f"kernel_spec must be a KernelSpec, not {kernel_spec!r}")
    if kernel_type is not None and not isinstance(kernel_type, KernelType):
        raise ManagerError(
            f"kernel_type must be a KernelType (from KernelFinder.find()), not {kernel_type!r}"
        )
    if kernel_spec is not None and kernel_type is not None:
        raise ManagerError("pass kernel_spec or kernel_type, not both")
    if kernel_spec is not None and kernel_name is not None and kernel_name != kernel_spec.name:
        raise ManagerError(
            f"kernel_name {kernel_name!r} and kernel_spec {kernel_spec.name!r} disagree; "
            "pass one of them"
        )
    if kernel_type is not None and kernel_name is not None and kernel_name != kernel_type.id:
        raise ManagerError(
            f"kernel_name {kernel_name!r} and kernel_type {kernel_type.id!r} disagree; "
            "pass one of them"
        )


def spec_launch(spec: KernelSpec, factory: KernelProvisionerFactory) -> KernelLaunch:
    """A kernelspec's launch: the provisioner its ``metadata.kernel_provisioner`` names
    (else ``factory``'s default), in this process's environment.

    Raises:
        KernelSpecError: the kernelspec is broken (the message lists its problems).
        ProvisioningError: its ``metadata.kernel_provisioner`` is malformed.
    """
    if spec.problems:
        raise KernelSpecError(
            f"kernelspec {spec.name!r} in {spec.resource_dir} is broken:\n  "
            + "\n  ".join(spec.problems)
        )
    name, config = provisioner_choice(spec, default=factory.default_provisioner)
    return KernelLaunch(spec, name, config)


def plan_launch_of(plan: LaunchPlan) -> KernelLaunch:
    """A kernel type's launch: what its plan names, with the plan's complete environment."""
    return KernelLaunch(plan.spec, plan.provisioner_name, plan.provisioner_config, plan.env)
