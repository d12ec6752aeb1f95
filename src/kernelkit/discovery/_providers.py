"""The built-in providers: ``spec`` (Jupyter's kernelspec directories) and ``env``
(Python and conda environments, each with its own kernelspecs and interpreter)."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from kernelkit.discovery._types import (
    ORIGIN_ENVIRONMENT,
    ORIGIN_INTERPRETER,
    ORIGIN_KERNELSPEC,
    KernelProvider,
    KernelType,
    LaunchPlan,
    plan_launch,
    shared_activator,
)
from kernelkit.envs import (
    Environment,
    EnvironmentScan,
    EnvLocations,
    environment_holding,
    environment_id,
    find_environments,
)
from kernelkit.specs import (
    KernelSpec,
    is_bare_python,
    kernel_spec_dirs,
    provisioner_problem,
    scan_kernel_specs,
)

if TYPE_CHECKING:
    from kernelkit.envs import Activator

__all__ = [
    "EnvProvider",
    "SpecProvider",
    "interpreter_kernel_spec",
    "runs_ipykernel",
]


def runs_ipykernel(spec: KernelSpec) -> bool:
    """True when the spec starts ipykernel (``-m ipykernel_launcher`` or ``-m ipykernel``)."""
    for arg in spec.argv[1:]:
        if arg in ("ipykernel_launcher", "ipykernel") or arg.endswith("ipykernel_launcher.py"):
            return True
    return False


def interpreter_kernel_spec(env: Environment) -> KernelSpec:
    """The kernelspec ipykernel would install for ``env``'s interpreter, made in memory.

    Its resource directory is ipykernel's bundled ``resources`` (the logos), when present.
    """
    assert env.interpreter is not None
    resources = env.site_packages / "ipykernel" / "resources" if env.site_packages else None
    version = f" {env.python_version}" if env.python_version else ""
    return KernelSpec(
        name="python3",
        resource_dir=resources if resources is not None and resources.is_dir() else env.prefix,
        argv=(str(env.interpreter), "-m", "ipykernel_launcher", "-f", "{connection_file}"),
        display_name=f"Python{version} ({env.name})",
        language="python",
        metadata={"debugger": True},
    )


def _spec_type(
    spec: KernelSpec,
    *,
    name: str,
    display_name: str | None = None,
    environment: Environment | None = None,
    problems: tuple[str, ...] | None = None,
) -> KernelType:
    return KernelType(
        name=name,
        display_name=display_name if display_name is not None else spec.display_name,
        language=spec.language,
        origin=ORIGIN_KERNELSPEC,
        source=spec.resource_dir,
        metadata=spec.metadata,
        problems=_with_provisioner_problem(spec, spec.problems if problems is None else problems),
        spec=spec,
        environment=environment,
    )


def _with_provisioner_problem(spec: KernelSpec, problems: tuple[str, ...]) -> tuple[str, ...]:
    # A spec naming a provisioner that is not installed is broken now, not at launch.
    problem = provisioner_problem(spec)
    return problems if problem is None else (*problems, problem)


def _watch_spec(paths: list[str], spec: KernelSpec) -> None:
    # kernel.json alone: a spec directory added, removed or swapped changes the watched
    # kernels directory, and an edit changes kernel.json itself
    paths.append(f"{os.fspath(spec.resource_dir)}{os.sep}kernel.json")
    if spec.argv and os.path.isabs(spec.argv[0]):
        paths.append(spec.argv[0])  # the interpreter or program it starts


class _BuiltinProvider(KernelProvider):
    """Plans launches with :func:`~kernelkit.discovery.plan_launch` and this provider's
    activator (None: the process-wide :func:`~kernelkit.discovery.shared_activator`)."""

    _activator: Activator | None = None

    def prepare(self, kernel_type: KernelType) -> LaunchPlan:
        return plan_launch(kernel_type, activator=self._activator)


class SpecProvider(_BuiltinProvider):
    """Kernelspecs in Jupyter's search path (:func:`kernelkit.specs.kernel_spec_dirs`).

    Ids are ``spec/<kernel name>``. A spec inside an environment
    (``<prefix>/share/jupyter/kernels/<name>``, with a Python or conda prefix) is
    launched with that environment activated.
    """

    def __init__(
        self,
        dirs: Sequence[str | os.PathLike[str]] | None = None,
        *,
        activator: Activator | None = None,
    ) -> None:
        self._dirs = None if dirs is None else [Path(d) for d in dirs]
        self._activator = activator
        self._watched: list[str] | None = None
        self._lock = threading.Lock()

    def find_kernels(self) -> list[KernelType]:
        dirs = kernel_spec_dirs() if self._dirs is None else list(self._dirs)
        specs = scan_kernel_specs(dirs)
        watched: list[str] = [str(d) for d in dirs]
        # keyed by the kernels directory's path as text: cheaper than Path.parent and
        # Path hashing, once per spec
        envs: dict[str, Environment | None] = {}
        found = []
        for spec in specs:
            _watch_spec(watched, spec)
            kernels = os.path.dirname(os.fspath(spec.resource_dir))
            if kernels not in envs:
                envs[kernels] = environment_holding(spec.resource_dir.parent)
            env = envs[kernels]
            problems = None if env is None else _judged_in(spec, env, self._activator)
            found.append(_spec_type(spec, name=spec.name, environment=env, problems=problems))
        with self._lock:
            self._watched = watched
        return found

    def watched_paths(self) -> list[str] | None:
        with self._lock:
            return self._watched


class EnvProvider(_BuiltinProvider):
    """Kernels of Python and conda environments found on disk (:mod:`kernelkit.envs`).

    For each environment: the kernelspecs in its own ``share/jupyter/kernels``, Python
    or not (id ``env/<env-id>/<kernel name>``), and its interpreter as a kernel
    (``env/<env-id>/python3``) when ipykernel is installed but no spec starts it.
    A broken environment with no kernels to show is listed as ``env/<env-id>`` with its
    problems. Kernels start with their environment activated.
    """

    def __init__(
        self, locations: EnvLocations | None = None, *, activator: Activator | None = None
    ) -> None:
        self._locations = locations
        self._activator = activator
        self._watched: list[str] | None = None
        self._lock = threading.Lock()

    @property
    def locations(self) -> EnvLocations:
        """Where this provider looks (default: :meth:`EnvLocations.from_environ`)."""
        return self._locations or EnvLocations.from_environ()

    def find_kernels(self) -> list[KernelType]:
        scan = find_environments(self.locations)
        watched: list[str] = list(scan.read_paths)
        found: list[KernelType] = []
        for env in scan.environments:
            found.extend(_environment_kernels(env, watched, self._activator))
        for problem in _scan_problems(scan):
            found.append(problem)
        with self._lock:
            self._watched = watched
        return found

    def watched_paths(self) -> list[str] | None:
        with self._lock:
            return self._watched


def _scan_problems(scan: EnvironmentScan) -> Iterator[KernelType]:
    for problem in scan.problems:
        yield KernelType(
            name=environment_id(problem.path),
            display_name=f"(cannot search {problem.path})",
            language="",
            origin=ORIGIN_ENVIRONMENT,
            source=problem.path,
            problems=(problem.reason,),
        )


def _bin_problem(spec: KernelSpec, env: Environment, activator: Activator | None) -> str | None:
    """The "not found on PATH" problem of a spec whose program is on the environment's
    PATH once activated (its bin, or a directory its activation scripts add, as far as
    the activation cache knows; unknown until activated is not a problem either)."""
    if not spec.argv:
        return None
    first = spec.argv[0]
    if os.sep in first or is_bare_python(first):
        return None
    from kernelkit.envs import which_activated  # start-up time (see kernelkit.envs)

    if which_activated(env, first, activator=activator or shared_activator()) is not False:
        return f"argv[0] {first!r} is not found on PATH"
    return None


def _judged_in(spec: KernelSpec, env: Environment, activator: Activator | None) -> tuple[str, ...]:
    """``spec``'s problems judged in ``env`` (activated), not in this process."""
    if not spec.problems:
        return ()
    on_path = _bin_problem(spec, env, activator)
    return tuple(p for p in spec.problems if on_path is None or not p.endswith(on_path))


def _environment_kernels(
    env: Environment, watched: list[str], activator: Activator | None = None
) -> list[KernelType]:
    found: list[KernelType] = []
    prefix = str(env.prefix)
    watched.append(os.path.join(prefix, "bin"))
    if env.site_packages is not None:
        watched.append(str(env.site_packages))
    if env.is_conda:
        watched.append(os.path.join(prefix, "conda-meta"))
    specs = scan_kernel_specs([env.kernels_dir]) if env.kernels_dir is not None else []
    starts_ipykernel = False
    for spec in specs:
        _watch_spec(watched, spec)
        starts_ipykernel = starts_ipykernel or runs_ipykernel(spec)
        problems = _judged_in(spec, env, activator)
        found.append(
            _spec_type(
                spec,
                name=f"{env.id}/{spec.name}",
                display_name=f"{spec.display_name} ({env.name})",
                environment=env,
                problems=problems + env.problems,
            )
        )
    if env.has_ipykernel and env.interpreter is not None and not starts_ipykernel:
        spec = interpreter_kernel_spec(env)
        found.append(
            KernelType(
                name=f"{env.id}/{spec.name}",
                display_name=spec.display_name,
                language="python",
                origin=ORIGIN_INTERPRETER,
                source=env.prefix,
                metadata=spec.metadata,
                problems=env.problems,
                spec=spec,
                environment=env,
            )
        )
    if not found and env.problems:
        found.append(
            KernelType(
                name=env.id,
                display_name=f"{env.name} ({env.kind} environment)",
                language="",
                origin=ORIGIN_ENVIRONMENT,
                source=env.prefix,
                problems=env.problems,
                environment=env,
            )
        )
    return found
