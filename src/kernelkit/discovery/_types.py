"""What discovery yields (:class:`KernelType`), and the interface of a provider."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from kernelkit._errors import DiscoveryError, KernelSpecError
from kernelkit.envs import Activator, Environment
from kernelkit.specs import KernelSpec

if TYPE_CHECKING:
    # only annotations use it; importing it for real would add sockets and secrets to
    # every listing's import time
    from kernelkit._connection import ConnectionInfo

__all__ = [
    "ORIGIN_ENVIRONMENT",
    "ORIGIN_INTERPRETER",
    "ORIGIN_KERNELSPEC",
    "DiscoveryProblem",
    "KernelHandle",
    "KernelProvider",
    "KernelType",
    "LaunchOptions",
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
class LaunchOptions:
    """What the caller adds to a launch: extra environment variables (on top of the
    activated environment), the working directory, extra arguments, the kernel id
    (default: a new UUID), and a ``parent`` passed to traitlets-based provisioners."""

    kernel_id: str | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    cwd: str | None = None
    extra_arguments: Sequence[str] = ()
    parent: object | None = None


@dataclass(frozen=True, slots=True)
class LaunchPlan:
    """What launching a kernel type here takes, for a caller that starts and manages the
    kernel itself (what :meth:`KernelFinder.prepare` returns)::

        plan = finder.prepare("env/myenv-1a2b3c4d/python3")
        km = AsyncKernelManager(kernel_spec=plan.spec)
        await km.start_kernel(env=plan.env, inherit_env=False)

    ``spec`` is the kernelspec to launch. Its ``problems`` are the kernel type's, judged
    in the kernel's environment (a program on that environment's ``PATH`` is not a
    problem there), so a plan's spec is always healthy: a broken kernel type has no plan.

    ``env`` is the complete environment to launch with: the kernel's environment
    activated over this process's environment (a copy of it when the kernel has no
    environment), the caller's variables on top. The spec's own ``env`` is not applied
    yet: the provisioner applies it at launch.
    """

    kernel_type: KernelType
    spec: KernelSpec
    env: Mapping[str, str]

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
            _shared = Activator()
        return _shared


def plan_launch(
    kernel_type: KernelType,
    *,
    activator: Activator | None = None,
    base: Mapping[str, str] | None = None,
) -> LaunchPlan:
    """The :class:`LaunchPlan` of a kernel type launched from its kernelspec: its spec,
    and its environment activated over ``base`` (default ``os.environ``) by
    ``activator`` (default :func:`shared_activator`). Blocking: activating a conda
    prefix may run its activation scripts (once; the result is cached).

    Raises:
        DiscoveryError: the kernel type has no kernelspec (a broken environment).
        KernelSpecError: the kernel type is broken (the message lists its problems).
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
    environment = kernel_type.environment
    if environment is None:
        env = dict(os.environ if base is None else base)
    else:
        env = (activator or shared_activator()).activate(environment, base)
    return LaunchPlan(kernel_type, spec, env)


class KernelHandle(Protocol):
    """A launched kernel: where it listens and its lifecycle. What
    :meth:`KernelProvider.launch` returns; a launched provisioner
    (``kernelkit.provisioning.KernelProvisionerBase``) is one."""

    kernel_id: str
    connection_info: ConnectionInfo | None

    async def poll(self) -> int | None: ...

    async def wait(self) -> int | None: ...

    async def send_signal(self, signum: int) -> None: ...

    async def terminate(self, restart: bool = False) -> None: ...

    async def kill(self, restart: bool = False) -> None: ...

    async def stop(self, *, grace: float | None = None, restart: bool = False) -> int | None: ...

    async def cleanup(self, restart: bool = False) -> None: ...


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
        """What launching ``kernel_type`` here takes (its kernelspec and activated
        environment), for a caller that manages the kernel itself; see
        :meth:`KernelFinder.prepare`. Blocking (activation may run scripts).

        The default is :func:`plan_launch`, unless this provider overrides
        :meth:`launch` (its kernels start its own way, e.g. remotely): then it raises
        DiscoveryError, since no kernelspec launched here would be the same kernel.

        Raises:
            DiscoveryError: the kernel type cannot be launched from a kernelspec here.
            KernelSpecError: the kernel type is broken.
            EnvironmentActivationError: its environment could not be activated.
        """
        if type(self).launch is not KernelProvider.launch:
            raise DiscoveryError(
                f"kernel provider {type(self).__qualname__} launches {kernel_type.id} its "
                "own way: launch it with KernelFinder.launch() or alaunch()"
            )
        return plan_launch(kernel_type)

    async def launch(self, kernel_type: KernelType, options: LaunchOptions) -> KernelHandle:
        """Launch ``kernel_type``; return its provisioner, launched (the kernel handle:
        connection info, poll, wait, signals, stop, cleanup).

        The default launches ``kernel_type.spec`` with the provisioner its metadata asks
        for (:class:`~kernelkit.provisioning.KernelProvisionerFactory`), in
        ``kernel_type.environment`` activated, if any.

        Raises:
            DiscoveryError: the kernel type has no spec to launch.
            EnvironmentActivationError: its environment could not be activated.
            ProvisioningError: the provisioner is missing or the kernel failed to start.
        """
        # Imported here, not at the top: provisioning pulls in pyzmq and asyncio, and
        # listing kernels (the hot path of every command line and editor) never needs them.
        from kernelkit.discovery._launch import launch_kernel_type

        return await launch_kernel_type(kernel_type, options)
