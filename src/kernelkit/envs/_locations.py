"""Where environments live, and finding them all from the filesystem alone."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from kernelkit.envs._environment import Environment, EnvKind, _inspect, environment_id

__all__ = [
    "EnvLocations",
    "EnvironmentScan",
    "ScanProblem",
    "find_environments",
    "remember_environments",
]

# Conda, mamba and micromamba base installs in their usual places (checked with one
# stat each; those that do not exist cost nothing more).
_CONDA_ROOT_NAMES = (
    "miniconda3",
    "miniconda",
    "anaconda3",
    "anaconda",
    "miniforge3",
    "mambaforge",
    "micromamba",
    ".local/share/mamba",
    ".mamba",
)
_SYSTEM_CONDA_ROOTS = ("/opt/conda", "/opt/miniconda3", "/opt/anaconda3", "/opt/miniforge3")
_PROJECT_VENVS = (".venv", "venv", ".conda")


def _paths(value: str | None) -> tuple[Path, ...]:
    if not value:
        return ()
    return tuple(Path(p).expanduser() for p in value.split(os.pathsep) if p)


@dataclass(frozen=True, slots=True)
class EnvLocations:
    """Where to look for environments. Frozen; build one with :meth:`from_environ`.

    ``EnvLocations()`` looks nowhere (useful in tests); :meth:`from_environ` gives the
    usual places, from environment variables and the home directory.

    - ``prefixes``: environments named explicitly.
    - ``project_dirs``: each is checked for ``.venv``, ``venv``, ``.conda`` and
      pixi's ``.pixi/envs/*`` (by default the current directory and every parent).
    - ``remembered_files``: files of prefixes seen before (one a line, written by
      :func:`remember_environments`), so that a project environment's kernel id keeps
      working from any directory while the environment exists; entries whose
      environment is gone are skipped without a word.
    - ``conda_roots``: conda/mamba/micromamba base installs (the base itself and its
      ``envs/``); ``conda_envs_dirs``: directories whose children are conda prefixes;
      ``conda_environment_files``: ``environments.txt`` files (one prefix a line).
    - ``pyenv_roots``: ``$PYENV_ROOT`` directories (their ``versions/*``).
    - ``virtualenvwrapper_dirs``, ``poetry_dirs``, ``pipenv_dirs``, ``pixi_envs_dirs``:
      directories whose children are environments of that kind.
    """

    prefixes: tuple[Path, ...] = ()
    project_dirs: tuple[Path, ...] = ()
    remembered_files: tuple[Path, ...] = ()
    conda_roots: tuple[Path, ...] = ()
    conda_envs_dirs: tuple[Path, ...] = ()
    conda_environment_files: tuple[Path, ...] = ()
    pyenv_roots: tuple[Path, ...] = ()
    virtualenvwrapper_dirs: tuple[Path, ...] = ()
    poetry_dirs: tuple[Path, ...] = ()
    pipenv_dirs: tuple[Path, ...] = ()
    pixi_envs_dirs: tuple[Path, ...] = ()

    @classmethod
    def from_environ(
        cls,
        environ: Mapping[str, str] | None = None,
        *,
        home: Path | None = None,
        cwd: Path | None = None,
    ) -> EnvLocations:
        """The usual places, from ``environ`` (default ``os.environ``) and ``home``.

        Variables read: ``CONDA_ROOT``, ``CONDA_PREFIX``, ``CONDA_EXE``,
        ``MAMBA_ROOT_PREFIX``, ``CONDA_ENVS_PATH``, ``CONDA_ENVS_DIRS``, ``PYENV_ROOT``,
        ``WORKON_HOME``, ``POETRY_VIRTUALENVS_PATH``, ``POETRY_CACHE_DIR``,
        ``XDG_CACHE_HOME``, ``XDG_DATA_HOME``, ``PIXI_HOME``, ``KERNELKIT_ENV_PREFIXES``
        (extra prefixes, path-separated). The current directory and its parents are
        project dirs; the remembered file is ``<XDG_DATA_HOME>/kernelkit/environments.txt``.
        """
        env = os.environ if environ is None else environ
        home = Path.home() if home is None else home
        cwd = Path.cwd() if cwd is None else cwd

        roots: list[Path] = []
        for var in ("CONDA_ROOT", "MAMBA_ROOT_PREFIX"):
            roots.extend(_paths(env.get(var)))
        if env.get("CONDA_EXE"):
            roots.append(Path(env["CONDA_EXE"]).parent.parent)  # <root>/bin/conda
        if env.get("CONDA_PREFIX"):
            active = Path(env["CONDA_PREFIX"])
            roots.append(active.parent.parent if active.parent.name == "envs" else active)
        roots.extend(home / name for name in _CONDA_ROOT_NAMES)
        roots.extend(Path(p) for p in _SYSTEM_CONDA_ROOTS)

        xdg_cache = Path(env.get("XDG_CACHE_HOME") or home / ".cache")
        xdg_data = Path(env.get("XDG_DATA_HOME") or home / ".local" / "share")
        poetry = _paths(env.get("POETRY_VIRTUALENVS_PATH"))
        if not poetry:
            cache = Path(env["POETRY_CACHE_DIR"]) if env.get("POETRY_CACHE_DIR") else None
            poetry = ((cache or xdg_cache / "pypoetry") / "virtualenvs",)
        pixi_home = Path(env.get("PIXI_HOME") or home / ".pixi")

        return cls(
            prefixes=_paths(env.get("KERNELKIT_ENV_PREFIXES")),
            project_dirs=(cwd, *cwd.parents),
            remembered_files=(xdg_data / "kernelkit" / "environments.txt",),
            conda_roots=_dedupe(roots),
            conda_envs_dirs=_dedupe(
                [
                    *_paths(env.get("CONDA_ENVS_PATH")),
                    *_paths(env.get("CONDA_ENVS_DIRS")),
                    home / ".conda" / "envs",
                ]
            ),
            conda_environment_files=(home / ".conda" / "environments.txt",),
            pyenv_roots=_paths(env.get("PYENV_ROOT")) or (home / ".pyenv",),
            virtualenvwrapper_dirs=_paths(env.get("WORKON_HOME")) or (home / ".virtualenvs",),
            poetry_dirs=poetry,
            pipenv_dirs=(xdg_data / "virtualenvs",),
            pixi_envs_dirs=(pixi_home / "envs",),
        )


def _dedupe(paths: list[Path]) -> tuple[Path, ...]:
    return tuple(dict.fromkeys(paths))


@dataclass(frozen=True, slots=True)
class ScanProblem:
    """A place that could not be searched (unreadable, garbled), and why."""

    path: Path
    reason: str


@dataclass(frozen=True, slots=True)
class EnvironmentScan:
    """What :func:`find_environments` found.

    ``environments`` includes broken ones (each with ``problems``); ``problems`` are
    places that could not be searched; ``read_paths`` are the files and directories
    the scan looked at (a cache keyed on their mtimes is valid while none changes).
    """

    environments: tuple[Environment, ...]
    problems: tuple[ScanProblem, ...] = ()
    read_paths: tuple[str, ...] = field(default=(), repr=False)


class _Scanner:
    def __init__(self) -> None:
        self.found: dict[str, Environment] = {}
        self.problems: list[ScanProblem] = []
        self.read: list[str] = []

    def add(
        self,
        prefix: str | Path,
        *,
        kind: EnvKind | None,
        found_via: str,
        must_exist: bool = False,
    ) -> None:
        path = os.path.abspath(prefix)
        if not must_exist and not os.path.lexists(path):
            return  # an optional place (./.venv) that holds nothing
        real = os.path.realpath(path)
        if real in self.found:
            return  # the same environment reached another way: the first place wins
        env = _inspect(path, real, kind=kind, name=None, found_via=found_via)
        if env is None:
            if must_exist:
                self.problems.append(
                    ScanProblem(Path(path), f"{path} is not a Python or conda environment")
                )
            return
        self.found[real] = env
        self.read.append(path)
        # even when missing: a kernelspec installed later creates it
        self.read.append(os.path.join(path, "share", "jupyter", "kernels"))

    def children(self, container: str | Path) -> Iterator[str]:
        """Subdirectories of ``container``; an unreadable one is reported, a missing one is not."""
        directory = os.fspath(container)
        self.read.append(directory)
        try:
            with os.scandir(directory) as entries:
                names = sorted(e.name for e in entries if not e.name.startswith("."))
        except (FileNotFoundError, NotADirectoryError):
            return
        except OSError as exc:
            self.problems.append(
                ScanProblem(Path(directory), f"cannot list {directory}: {exc.strerror or exc}")
            )
            return
        for name in names:
            yield os.path.join(directory, name)

    def remembered_file(self, path: Path) -> None:
        """Prefixes seen before: each still there is added; gone ones are skipped."""
        self.read.append(os.fspath(path))
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except (FileNotFoundError, NotADirectoryError):
            return
        except OSError as exc:
            self.problems.append(ScanProblem(path, f"cannot read {path}: {exc.strerror or exc}"))
            return
        for line in text.splitlines():
            entry = line.strip()
            if entry and os.path.isabs(entry) and os.path.isdir(entry):
                self.add(entry, kind=None, found_via=str(path))

    def environments_file(self, path: Path) -> None:
        self.read.append(os.fspath(path))
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except (FileNotFoundError, NotADirectoryError):
            return
        except OSError as exc:
            self.problems.append(ScanProblem(path, f"cannot read {path}: {exc.strerror or exc}"))
            return
        for number, line in enumerate(text.splitlines(), start=1):
            entry = line.strip()
            if not entry or entry.startswith("#"):
                continue
            prefix = Path(entry).expanduser()
            if not prefix.is_absolute():
                self.problems.append(
                    ScanProblem(path, f"{path}, line {number}: {entry!r} is not an absolute path")
                )
                continue
            real = os.path.realpath(prefix)
            if not os.path.lexists(prefix):
                if real not in self.found:
                    self.found[real] = Environment(
                        id=environment_id(prefix),
                        name=prefix.name,
                        kind="conda",
                        prefix=prefix,
                        found_via=str(path),
                        problems=(
                            f"{prefix} is listed in {path} (line {number}) but does not "
                            "exist: it was deleted; remove that line",
                        ),
                    )
                continue
            self.add(prefix, kind=None, found_via=str(path), must_exist=True)


def find_environments(locations: EnvLocations | None = None) -> EnvironmentScan:
    """Every environment in ``locations`` (default: :meth:`EnvLocations.from_environ`).

    Reads the filesystem only; never runs a subprocess and never raises for a broken
    or unreadable environment: those come back with their ``problems``. The same
    environment reached two ways (a symlink, two listings) is returned once, from the
    first place searched, in the order of the :class:`EnvLocations` fields.
    """
    loc = EnvLocations.from_environ() if locations is None else locations
    scan = _Scanner()

    for prefix in loc.prefixes:
        scan.add(prefix, kind=None, found_via="explicit", must_exist=True)
    for project in loc.project_dirs:
        scan.read.append(os.fspath(project))  # a new .venv here changes its mtime
        for name in _PROJECT_VENVS:
            scan.add(project / name, kind=None, found_via=str(project))
        pixi = project / ".pixi" / "envs"
        if os.path.isdir(pixi):
            for child in scan.children(pixi):
                scan.add(child, kind="pixi", found_via=str(project))
    for remembered in loc.remembered_files:
        scan.remembered_file(remembered)
    for root in loc.conda_roots:
        if os.path.isdir(root / "conda-meta"):  # micromamba's root prefix may hold only envs/
            scan.add(root, kind="conda", found_via=str(root))
        for child in scan.children(root / "envs"):
            scan.add(child, kind="conda", found_via=str(root))
    for envs_dir in loc.conda_envs_dirs:
        for child in scan.children(envs_dir):
            scan.add(child, kind="conda", found_via=str(envs_dir))
    for env_file in loc.conda_environment_files:
        scan.environments_file(env_file)
    for pyenv in loc.pyenv_roots:
        for child in scan.children(pyenv / "versions"):
            scan.add(child, kind="pyenv", found_via=str(pyenv))
    kinds: tuple[tuple[EnvKind, tuple[Path, ...]], ...] = (
        ("virtualenvwrapper", loc.virtualenvwrapper_dirs),
        ("poetry", loc.poetry_dirs),
        ("pipenv", loc.pipenv_dirs),
        ("pixi", loc.pixi_envs_dirs),
    )
    for kind, dirs in kinds:
        for directory in dirs:
            for child in scan.children(directory):
                scan.add(child, kind=kind, found_via=str(directory))

    return EnvironmentScan(
        environments=tuple(scan.found.values()),
        problems=tuple(scan.problems),
        read_paths=tuple(dict.fromkeys(scan.read)),
    )


def remember_environments(prefixes: Iterable[Path], path: Path) -> bool:
    """Add ``prefixes`` to the remembered file ``path`` (see
    :attr:`EnvLocations.remembered_files`); True when it changed.

    Raises:
        OSError: the file or its directory cannot be written.
    """
    try:
        known = set(path.read_text(encoding="utf-8", errors="replace").splitlines())
    except FileNotFoundError:
        known = set()
    new = [str(p) for p in dict.fromkeys(Path(os.path.abspath(p)) for p in prefixes)]
    new = [p for p in new if p not in known]
    if not new:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as f:
        f.write("".join(f"{p}\n" for p in new))
    return True
