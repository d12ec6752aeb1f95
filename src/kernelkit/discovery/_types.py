"""What discovery yields (:class:`KernelType`), what launching one takes
(:class:`LaunchPlan`), and the interface of a provider with its default behaviour."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kernelkit._errors import DiscoveryError, KernelSpecError
from kernelkit.envs import Environment
from kernelkit.specs import DEFAULT_PROVISIONER, KernelSpec, provisioner_choice

if TYPE_CHECKING:
    from kernelkit.envs import Activator

__all__ = [
    "ORIGIN_ENVIRONMENT",
    "ORIGIN_INTERPRETER",
    "ORIGIN_KERNELSPEC",
    "DiscoveryProblem",
    "KernelProvider",
    "KernelType",
    "LaunchPlan",
    "plan_launch",
    "shared_activator",
]

#: A kernel.json on disk; ``source`` is its directory.
ORIGIN_KERNELSPEC = "kernelspec"
#: An environment's Python with ipykernel installed but no kernel.json; ``source`` is the
#: environment prefix.
ORIGIN_INTERPRETER = "interpreter"
#: Not a kernel: an environment that is broken (deleted, unreadable), listed so that
#: ``kernelkit list --broken`` can say why; always has ``problems``.
ORIGIN_ENVIRONMENT = "environment"


@dataclass(frozen=True, slots=True)
class KernelType:
    """A kind of kernel one can launch: found by a provider, launched by it.

    ``id`` is ``<provider>/<name>``: ``spec/python3``, ``env/<env-id>/python3``. The
    provider part is filled in by :class:`~kernelkit.KernelFinder` from the name the
    provider is registered under, so a provider only chooses ``name`` (unique within it).
    ``problems`` is empty when the kernel looks launchable. What is needed to launch it:
    ``spec`` (argv, env, interrupt mode) and ``environment`` (activated before launch).
    ``aliases`` are ids of the same kernel reached through other providers (see
    :class:`~kernelkit.KernelFinder` for the rule); launching by an alias works too.
    """

    name: str
    display_name: str
    language: str
    provider: str = ""
    origin: str = ORIGIN_KERNELSPEC
    source: Path | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict, hash=False)
    problems: tuple[str, ...] = ()
    spec: KernelSpec | None = None
    environment: Environment | None = None
    aliases: tuple[str, ...] = ()

    @property
    def id(self) -> str:
        """``<provider>/<name>``."""
        return f"{self.provider}/{self.name}" if self.provider else self.name

    @property
    def healthy(self) -> bool:
        """True when no problem is known."""
        return not self.problems

    @property
    def resource_files(self) -> tuple[Path, ...]:
        """Logos and other files beside the kernel.json (read from disk when asked)."""
        return self.spec.resource_files if self.spec is not None else ()


@dataclass(frozen=True, slots=True)
class DiscoveryProblem:
    """A provider that failed as a whole (raised, hung, failed to load), and why."""

    provider: str
    reason: str
    source: str = ""


@dataclass(frozen=True, slots=True)
class LaunchPlan:
    """What launching a kernel type takes: which provisioner launches it and with what
    configuration, its kernelspec, and its complete environment. What
    :meth:`KernelProvider.prepare` and :meth:`KernelFinder.prepare` return, and what
    every manager launches from (``AsyncKernelManager("env/myenv-1a2b3c4d/python3")``
    prepares it when the kernel starts).

    ``provisioner_name`` and ``provisioner_config`` pick the provisioner (an entry point
    in the ``kernelkit.provisioners`` group) and the keyword arguments it is made with.
    By default they come from the spec's ``metadata.kernel_provisioner``, else the local
    provisioner. A provider of another kind (a remote server, an SSH host, a sandbox)
    names its own provisioner here; the managers need nothing else.

    ``spec`` is the kernelspec to launch. Its ``problems`` are the kernel type's, judged
    in the kernel's environment (a program on that environment's ``PATH`` is not a
    problem there), so a plan's spec is always healthy: a broken kernel type has no plan.

    ``env`` is the complete environment to launch with: the kernel's environment
    activated over this process's environment (a copy of it when the kernel has no
    environment), the caller's variables on top. It is passed as it is, never merged
    over ``os.environ`` again (what activation removed stays removed). The spec's own
    ``env`` is not applied yet: the provisioner applies it at launch.
    """

    kernel_type: KernelType
    spec: KernelSpec
    env: Mapping[str, str]
    provisioner_name: str = DEFAULT_PROVISIONER
    provisioner_config: Mapping[str, Any] = field(default_factory=dict, hash=False)

    @property
    def id(self) -> str:
        """The kernel type's id."""
        return self.kernel_type.id

    @property
    def environment(self) -> Environment | None:
        """The environment ``env`` activates (None: this process's environment)."""
        return self.kernel_type.environment


_shared_lock = threading.Lock()
_shared: Activator | None = None


def shared_activator() -> Activator:
    """The activator of this process's plans (its cache on disk in the user cache)."""
    global _shared
    with _shared_lock:
        if _shared is None:
            # Imported on first use for start-up time: listing needs an activator only
            # for a spec whose program is missing from this process's PATH.
            from kernelkit.envs import Activator

            _shared = Activator()
        return _shared


def plan_launch(
    kernel_type: KernelType,
    *,
    activator: Activator | None = None,
    base: Mapping[str, str] | None = None,
) -> LaunchPlan:
    """The :class:`LaunchPlan` of a kernel type launched from its kernelspec (what
    :meth:`KernelProvider.prepare` does by default): its spec, the provisioner the spec
    asks for (``metadata.kernel_provisioner``, else the local one), and its environment
    activated over ``base`` (default ``os.environ``) by ``activator`` (default
    :func:`shared_activator`). Blocking: activating a conda prefix may run its
    activation scripts (once; the result is cached).

    Raises:
        DiscoveryError: the kernel type has no kernelspec (a broken environment).
        KernelSpecError: the kernel type is broken (the message lists its problems).
        ProvisioningError: the spec's ``metadata.kernel_provisioner`` is malformed.
        EnvironmentActivationError: its environment could not be activated.
    """
    spec = kernel_type.spec
    if spec is None:
        why = "; ".join(kernel_type.problems) or "it has no kernelspec"
        raise DiscoveryError(f"cannot launch {kernel_type.id}: {why}")
    if kernel_type.problems:
        raise KernelSpecError(
            f"kernel {kernel_type.id} ({spec.resource_dir}) is broken:\n  "
            + "\n  ".join(kernel_type.problems)
        )
    if spec.problems:
        # Problems of this process's view only (e.g. a program that the environment's
        # activation puts on PATH): the kernel type, judged in its environment, is fine.
        spec = replace(spec, problems=())
    name, config = provisioner_choice(spec)
    environment = kernel_type.environment
    if environment is None:
        env = dict(os.environ if base is None else base)
    else:
        env = (activator or shared_activator()).activate(environment, base)
    return LaunchPlan(kernel_type, spec, env, provisioner_name=name, provisioner_config=config)


class KernelProvider:
    """A source of kernel types. Subclass it, or write any class with the same methods,
    and register it under the ``kernelkit.providers`` entry point group::

        [project.entry-points."kernelkit.providers"]
        docker = "mypkg.kernels:DockerProvider"

    The finder instantiates it with no arguments, in a worker thread, and calls
    :meth:`find_kernels` there under a time limit. Only :meth:`find_kernels` is
    required. A plain class with no metaclass, so a provider may also inherit traitlets'
    ``LoggingConfigurable`` (``class P(KernelProvider, LoggingConfigurable)``).
    """

    def find_kernels(self) -> Iterable[KernelType]:
        """The kernel types this provider offers, broken ones included (with ``problems``).

        Called from a worker thread; must not run subprocesses if it can help it and
        should finish well within the finder's time limit.
        """
        raise NotImplementedError(f"{type(self).__name__} must implement find_kernels()")

    def watched_paths(self) -> Sequence[str | os.PathLike[str]] | None:
        """Files and directories whose modification times validate the last listing.

        While none of them changed (by ``stat``), the finder reuses the last result of
        :meth:`find_kernels`; a path that did not exist may appear. None (the default)
        means "cannot tell": the provider is asked again every time.
        """
        return None

    def prepare(self, kernel_type: KernelType) -> LaunchPlan:
        """What launching ``kernel_type`` takes: the provisioner and its configuration,
        the kernelspec and the complete environment (see :class:`LaunchPlan`). Managers
        call it (through :meth:`KernelFinder.prepare`) in a worker thread, once per
        start: it may block (activation may run scripts).

        The default is :func:`plan_launch`: the spec's provisioner (the local one unless
        its metadata names another), its environment activated. A provider whose kernels
        start elsewhere (a remote server, another host, a sandbox) overrides this to name
        its provisioner and that provisioner's configuration::

            def prepare(self, kernel_type):
                plan = plan_launch(kernel_type)
                return replace(plan, provisioner_name="my-provisioner",
                               provisioner_config={"host": kernel_type.metadata["host"]})

        Raises:
            DiscoveryError: the kernel type cannot be launched (e.g. it has no spec).
            KernelSpecError: the kernel type is broken.
            EnvironmentActivationError: its environment could not be activated.
        """
        return plan_launch(kernel_type)
