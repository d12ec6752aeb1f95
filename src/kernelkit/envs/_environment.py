"""One Python (or conda) environment, described from the filesystem alone.

Nothing here runs a subprocess: the interpreter, its version and whether it has
ipykernel are read from ``pyvenv.cfg``, ``conda-meta/`` records, the name of the
``lib/pythonX.Y`` directory and ``*.dist-info`` directories in ``site-packages``.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from hashlib import sha1
else:
    try:
        # CPython's own SHA-1, the one hashlib falls back on: hashlib itself loads
        # OpenSSL (about 3 ms, more than listing fifty environments) to hash one path.
        from _sha1 import sha1
    except ImportError:  # another interpreter
        from hashlib import sha1

__all__ = [
    "CONDA_KINDS",
    "EnvKind",
    "Environment",
    "environment_holding",
    "environment_id",
    "inspect_environment",
]

#: How an environment was made (or, for a plain directory of venvs, where it was found).
EnvKind = Literal[
    "venv",
    "virtualenv",
    "uv",
    "poetry",
    "pipenv",
    "virtualenvwrapper",
    "pyenv",
    "conda",
    "pixi",
    "system",
]

#: Kinds activated the conda way (PATH, CONDA_PREFIX, etc/conda/activate.d scripts).
CONDA_KINDS: frozenset[str] = frozenset({"conda", "pixi"})

_WINDOWS = os.name == "nt"
_PROJECT_VENV_NAMES = frozenset({".venv", "venv", ".conda", "env", ".env"})
_SLUG = re.compile(r"[^A-Za-z0-9_.-]+")
_PYTHON_LIB = re.compile(r"^python(\d+)\.(\d+)t?$")
_VERSION = re.compile(r"^(\d+)\.(\d+)")


@dataclass(frozen=True, slots=True)
class Environment:
    """A Python or conda environment found on disk.

    ``id`` derives from the environment's real path, so it is the same in every
    process and across runs. ``interpreter`` is None for a conda prefix without
    Python (an R or Java environment, say). ``problems`` is empty when healthy.
    """

    id: str
    name: str
    kind: EnvKind
    prefix: Path
    interpreter: Path | None = None
    python_version: str | None = None
    has_ipykernel: bool = False
    kernels_dir: Path | None = None
    site_packages: Path | None = None
    found_via: str = ""
    problems: tuple[str, ...] = ()

    @property
    def healthy(self) -> bool:
        """True when nothing is wrong with the environment."""
        return not self.problems

    @property
    def is_conda(self) -> bool:
        """True for conda-style prefixes (conda, mamba, micromamba, pixi)."""
        return self.kind in CONDA_KINDS

    @property
    def is_venv(self) -> bool:
        """True for environments made from a base interpreter (they have ``pyvenv.cfg``)."""
        return self.kind not in CONDA_KINDS and self.kind not in ("pyenv", "system")

    @property
    def bin_dir(self) -> Path:
        """The directory activation puts first on PATH."""
        if _WINDOWS:
            return self.prefix if self.is_conda else self.prefix / "Scripts"
        return self.prefix / "bin"


def environment_id(prefix: str | os.PathLike[str], *, name: str | None = None) -> str:
    """A stable id for the environment at ``prefix``: a readable name plus a short hash.

    The hash covers the real (symlink-free) absolute path, so the same environment
    reached through a symlink gets the same id.
    """
    return _make_id(os.path.realpath(os.fspath(prefix)), name)


def _make_id(real: str, name: str | None) -> str:
    digest = sha1(real.encode("utf-8", "surrogateescape")).hexdigest()[:8]
    readable = _SLUG.sub("-", name if name is not None else _readable_name(real)).strip("-")
    return f"{readable or 'env'}-{digest}"


def _readable_name(prefix: str) -> str:
    parent, base = os.path.split(prefix)
    grand, parent_name = os.path.split(parent)
    if base in _PROJECT_VENV_NAMES and parent_name:
        return parent_name  # a project's .venv is best known by the project's name
    if parent_name == "envs" and os.path.basename(grand) == ".pixi":
        project = os.path.basename(os.path.dirname(grand))
        return f"{project}-{base}" if base != "default" else project
    return base or "root"


def _read_pyvenv_cfg(path: str) -> dict[str, str] | None:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            text = f.read()
    except FileNotFoundError:
        return None
    values: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            values[key.strip().lower()] = value.strip()
    return values


def _listdir(path: str) -> list[str]:
    try:
        return os.listdir(path)
    except (FileNotFoundError, NotADirectoryError):
        return []


def _conda_records(prefix: str) -> dict[str, str]:
    """Package name -> version, from ``conda-meta/<name>-<version>-<build>.json`` names."""
    records: dict[str, str] = {}
    for entry in _listdir(os.path.join(prefix, "conda-meta")):
        if not entry.endswith(".json"):
            continue
        parts = entry[:-5].rsplit("-", 2)
        if len(parts) == 3:
            records[parts[0]] = parts[1]
    return records


def _lib_dirs(prefix: str) -> list[tuple[tuple[int, int], str]]:
    """``(major, minor), site-packages`` for each ``lib/pythonX.Y`` under the prefix."""
    if _WINDOWS:
        site = os.path.join(prefix, "Lib", "site-packages")
        return [((0, 0), site)] if os.path.isdir(site) else []
    found = []
    lib = os.path.join(prefix, "lib")
    for entry in _listdir(lib):
        match = _PYTHON_LIB.match(entry)
        if match:
            version = (int(match.group(1)), int(match.group(2)))
            found.append((version, os.path.join(lib, entry, "site-packages")))
    found.sort(reverse=True)
    return found


def _find_interpreter(prefix: str, version: tuple[int, int] | None) -> tuple[str | None, str]:
    """The environment's interpreter and, when it is broken, why (else an empty string)."""
    if _WINDOWS:
        candidates = [
            os.path.join(prefix, "python.exe"),
            os.path.join(prefix, "Scripts", "python.exe"),
        ]
    else:
        names = ["python", "python3"]
        if version is not None:
            names.append(f"python{version[0]}.{version[1]}")
        candidates = [os.path.join(prefix, "bin", name) for name in names]
    dangling: str | None = None
    for candidate in candidates:
        if os.path.exists(candidate):  # follows symlinks: a venv's python points at its base
            return candidate, ""
        if dangling is None and os.path.islink(candidate):
            dangling = candidate
    if dangling is not None:
        target = os.readlink(dangling)
        return dangling, (
            f"interpreter {dangling} is a broken link to {target} (its base Python was "
            "removed or moved): recreate the environment"
        )
    return None, ""


def _has_package(site_packages: str, project: str) -> bool:
    prefix = project + "-"
    for entry in _listdir(site_packages):
        if entry.startswith(prefix) and entry.endswith((".dist-info", ".egg-info")):
            return True
    return False


def _parse_version(text: str | None) -> tuple[int, int] | None:
    if not text:
        return None
    match = _VERSION.match(text)
    return (int(match.group(1)), int(match.group(2))) if match else None


def _clean_version(text: str) -> str:
    # virtualenv writes 3.11.7.final.0: keep the numeric part only
    parts = text.split(".")[:3]
    if len(parts) == 3 and not parts[2].isdigit():
        parts = parts[:2]
    return ".".join(parts)


_KERNELS_TAIL = ("share", "jupyter", "kernels")


def environment_holding(kernels_dir: Path) -> Environment | None:
    """The environment whose ``share/jupyter/kernels`` is ``kernels_dir``, if it is one
    (with an interpreter, or a conda prefix): its kernels start with it activated."""
    if tuple(p.lower() for p in kernels_dir.parts[-3:]) != _KERNELS_TAIL:
        return None
    env = inspect_environment(kernels_dir.parent.parent.parent)
    if env is None or not (env.interpreter is not None or env.is_conda) or env.problems:
        return None
    return env


def inspect_environment(
    prefix: str | os.PathLike[str],
    *,
    kind: EnvKind | None = None,
    name: str | None = None,
    found_via: str = "",
) -> Environment | None:
    """Describe the environment at ``prefix`` from its files, or None if it is not one.

    ``kind`` overrides what the files say (a venv found in ``$WORKON_HOME`` is a
    virtualenvwrapper environment). A prefix that does not exist at all is returned
    as an unhealthy environment, so a deleted environment is reported, not hidden.
    Never raises for a broken environment; an unreadable one comes back with problems.
    """
    path = os.path.abspath(os.fspath(prefix))
    return _inspect(path, os.path.realpath(path), kind=kind, name=name, found_via=found_via)


def _inspect(
    path: str, real: str, *, kind: EnvKind | None, name: str | None, found_via: str
) -> Environment | None:
    """:func:`inspect_environment` for an absolute path whose real path is known."""
    env_id = _make_id(real, name)
    shown = name if name is not None else _readable_name(path)
    try:
        if not os.path.isdir(path):
            reason = (
                f"{path} does not exist (deleted?): remove it from where it is listed"
                if not os.path.lexists(path)
                else f"{path} is not a directory"
            )
        else:
            return _inspect_dir(path, env_id=env_id, name=shown, kind=kind, found_via=found_via)
    except OSError as exc:
        reason = f"cannot read {exc.filename or path}: {exc.strerror or exc}"
    return Environment(
        id=env_id,
        name=shown,
        kind=kind or "venv",
        prefix=Path(path),
        found_via=found_via,
        problems=(reason,),
    )


def _inspect_dir(
    path: str, *, env_id: str, name: str, kind: EnvKind | None, found_via: str
) -> Environment | None:
    problems: list[str] = []
    cfg = _read_pyvenv_cfg(os.path.join(path, "pyvenv.cfg"))
    is_conda = os.path.isdir(os.path.join(path, "conda-meta"))
    records = _conda_records(path) if is_conda else {}
    libs = _lib_dirs(path)

    if cfg is None and not is_conda and not libs:
        return None  # not an environment (and not worth a complaint: just a directory)

    detected: EnvKind
    if is_conda:
        detected = "conda"
    elif cfg is not None and "uv" in cfg:
        detected = "uv"
    elif cfg is not None and "virtualenv" in cfg:
        detected = "virtualenv"
    elif cfg is not None:
        detected = "venv"
    else:
        detected = "system"  # an installed Python (a pyenv version, /usr, /usr/local)
    # pyenv's versions/ also holds pyenv-virtualenv venvs (as symlinks): those are venvs
    env_kind: EnvKind = detected if kind == "pyenv" and cfg is not None else kind or detected

    version_text: str | None = None
    if cfg is not None:
        version_text = cfg.get("version_info") or cfg.get("version")
    if version_text is None and "python" in records:
        version_text = records["python"]
    if version_text is None and kind == "pyenv" and _parse_version(os.path.basename(path)):
        version_text = os.path.basename(path)  # pyenv names a version's directory after it
    version = _parse_version(version_text)
    if version_text is None and libs and libs[0][0] != (0, 0):
        version = libs[0][0]
        version_text = f"{version[0]}.{version[1]}"
    if version_text is not None:
        version_text = _clean_version(version_text)

    interpreter, interpreter_problem = _find_interpreter(path, version)
    if interpreter_problem:
        problems.append(interpreter_problem)
    elif interpreter is None and not is_conda:
        bin_dir = os.path.join(path, "bin")
        problems.append(f"{path} has no Python interpreter in {bin_dir}: recreate it")

    site_packages = next(
        (site for v, site in libs if version is None or v in (version, (0, 0))), None
    )
    has_site = site_packages is not None and os.path.isdir(site_packages)
    has_ipykernel = "ipykernel" in records or (
        site_packages is not None and has_site and _has_package(site_packages, "ipykernel")
    )

    kernels = os.path.join(path, "share", "jupyter", "kernels")
    return Environment(
        id=env_id,
        name=name,
        kind=env_kind,
        prefix=Path(path),
        interpreter=Path(interpreter) if interpreter is not None else None,
        python_version=version_text if interpreter is not None or "python" in records else None,
        has_ipykernel=has_ipykernel,
        kernels_dir=Path(kernels) if os.path.isdir(kernels) else None,
        site_packages=Path(site_packages) if site_packages is not None and has_site else None,
        found_via=found_via,
        problems=tuple(problems),
    )
