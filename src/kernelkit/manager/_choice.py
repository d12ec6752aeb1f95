"""What a manager launches: a kernelspec (by name or given), or a kernel type (by id or
given) whose provider's plan names the provisioner; checked here, looked up once."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from kernelkit._errors import DiscoveryError, KernelSpecError, ManagerError
from kernelkit.discovery import KernelFinder, KernelType, LaunchPlan
from kernelkit.provisioning import (
    DEFAULT_PROVISIONER,
    KernelProvisionerBase,
    KernelProvisionerFactory,
    SandboxChoice,
    sandboxed_launch,
)
from kernelkit.specs import KernelSpec, get_kernel_spec, provisioner_choice

__all__ = [
    "DEFAULT_KERNEL_NAME",
    "KernelChoice",
    "KernelLaunch",
    "LaunchArgs",
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


@dataclass(frozen=True, slots=True)
class LaunchArgs:
    """The caller's arguments of one start, as the launch sequence takes them (reused by
    every restart of that start)."""

    env: Mapping[str, str] | None = None
    inherit_env: bool = True
    cwd: str | None = None
    extra_arguments: tuple[str, ...] = ()

    @classmethod
    def of(
        cls,
        launch: KernelLaunch,
        *,
        env: Mapping[str, str] | None,
        inherit_env: bool,
        cwd: str | None,
        extra_arguments: Sequence[str],
    ) -> LaunchArgs:
        if launch.base_env is None:
            return cls(
                dict(env) if env is not None else None, inherit_env, cwd, tuple(extra_arguments)
            )
        # The plan's environment is complete: the caller's goes on top of it, and it is
        # never merged over os.environ (what activation removed stays out).
        base = launch.base_env if inherit_env else {}
        return cls({**base, **(env or {})}, False, cwd, tuple(extra_arguments))


def new_provisioner(
    launch: KernelLaunch,
    factory: KernelProvisionerFactory,
    *,
    kernel_id: str,
    sandbox: SandboxChoice,
) -> KernelProvisionerBase:
    """The provisioner ``launch`` names (the sandbox's, when ``sandbox`` asks for one).

    Raises:
        ProvisionerNotFound, ProvisioningError: the provisioner is unusable.
    """
    name, config = sandboxed_launch(
        sandbox,
        kernel_name=launch.spec.name,
        provisioner_name=launch.provisioner_name,
        config=launch.provisioner_config,
        local_provisioner=DEFAULT_PROVISIONER,
    )
    return factory.create_provisioner_instance(
        kernel_id, launch.spec, provisioner_name=name, config=config
    )


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


class KernelChoice:
    """What one manager launches (checked at once, looked up on first use), and the
    launch of each start: a kernelspec's, or a kernel type's plan (prepared in a worker
    thread: activation may run scripts).

    Raises:
        ManagerError: (from the constructor) see :func:`check_kernel_choice`.
    """

    def __init__(
        self,
        kernel_name: str | None,
        *,
        kernel_spec: KernelSpec | None,
        kernel_type: KernelType | None,
        finder: KernelFinder | None,
    ) -> None:
        check_kernel_choice(kernel_name, kernel_spec=kernel_spec, kernel_type=kernel_type)
        if kernel_spec is not None:
            kernel_name = kernel_spec.name
        elif kernel_type is not None:
            kernel_name = kernel_type.id
        self.name = kernel_name or DEFAULT_KERNEL_NAME
        self._spec = kernel_spec
        self._type = kernel_type
        self._finder = finder
        #: The plan of the last start (kernel types only).
        self.plan: LaunchPlan | None = None

    @property
    def by_kernel_type(self) -> bool:
        """True for a kernel type (given, or by id), launched from its plan."""
        return self._type is not None or (self._spec is None and is_kernel_type_id(self.name))

    @property
    def finder(self) -> KernelFinder:
        return self._finder if self._finder is not None else default_finder()

    def kernel_type(self) -> KernelType | None:
        """The kernel type (None for a kernelspec); blocking on first use (a listing).

        Raises:
            NoSuchKernel: no kernel type has that id (the error names close ones).
        """
        if self._type is None and self.by_kernel_type:
            self._type = self.finder.get(self.name)
        return self._type

    def spec(self) -> KernelSpec:
        """The kernelspec: the last plan's, the one given, or looked up by name or id.

        Raises:
            NoSuchKernel: nothing has that name.
            KernelSpecError: the kernelspec is broken.
            DiscoveryError: the kernel type has no kernelspec.
        """
        if self.plan is not None:
            return self.plan.spec
        if self._spec is not None:
            return self._spec
        if not self.by_kernel_type:
            self._spec = get_kernel_spec(self.name)
            return self._spec
        kernel_type = self.kernel_type()
        assert kernel_type is not None
        if kernel_type.spec is None:
            why = "; ".join(kernel_type.problems) or "it has no kernelspec"
            raise DiscoveryError(f"kernel {kernel_type.id} has no kernelspec: {why}")
        return kernel_type.spec

    async def prepare(self, factory: KernelProvisionerFactory) -> KernelLaunch:
        """What this start launches (see :meth:`AsyncKernelManager.start_kernel` for the
        errors)."""
        if self.by_kernel_type:
            self.plan = await asyncio.to_thread(self._prepare_plan)
            return plan_launch_of(self.plan)
        return spec_launch(self.spec(), factory)

    def _prepare_plan(self) -> LaunchPlan:
        kernel_type = self.kernel_type()
        assert kernel_type is not None
        return self.finder.prepare(kernel_type)
