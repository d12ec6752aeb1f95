"""The KernelSpec value object: what a kernel.json says, where it lives, and what is wrong."""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

# typing in annotations only, imported when they are inspected (kernelkit.specs._typing)
TYPE_CHECKING = False
if not TYPE_CHECKING:
    from kernelkit.specs._typing import typing
else:
    import typing

__all__ = [
    "KernelSpec",
    "environment_prefix_of",
    "is_bare_python",
    "prefix_interpreter",
]

if TYPE_CHECKING:
    InterruptMode = typing.Literal["signal", "message"]

# Jupyter's argv templates: {name}; unknown names are left as they are. A pattern, not
# compiled here: re compiles it on first use (launching), never while listing.
_TEMPLATE = r"\{([A-Za-z0-9_]+)\}"
_KERNELS_TAIL = ("share", "jupyter", "kernels")
_BIN = "Scripts" if os.name == "nt" else "bin"
_EXE = ".exe" if os.name == "nt" else ""


def is_bare_python(arg: str) -> bool:
    """True for a bare ``python``, ``python3`` or ``python3.X`` (no directory part).

    Any case; ``python2`` too; then an optional ``w`` and ``.exe`` (Windows). Written
    out rather than as a regular expression: compiling one costs more than a listing's
    calls to this.
    """
    name = arg.lower().removesuffix(".exe").removesuffix("w")
    if not name.startswith("python"):
        return False
    version = name[6:]
    if version in ("", "2", "3"):
        return True
    return version[:1] in ("2", "3") and version[1:2] == "." and version[2:].isdecimal()


def _is_executable_file(path: Path | str) -> bool:
    try:
        return os.path.isfile(path) and os.access(path, os.X_OK)
    except OSError:
        return False


def prefix_interpreter(prefix: Path, name: str | None = None) -> Path | None:
    """The Python interpreter of an environment prefix, or None.

    With ``name`` (e.g. ``python3.11``) that exact binary is preferred; then ``python3``
    and ``python``. On Windows ``python.exe`` sits in the prefix itself.
    """
    candidates = []
    if name:
        candidates.append(prefix / _BIN / name)
    candidates += [prefix / _BIN / f"python3{_EXE}", prefix / _BIN / f"python{_EXE}"]
    if os.name == "nt":
        candidates.insert(0, prefix / "python.exe")
    for candidate in candidates:
        if _is_executable_file(candidate):
            return candidate
    return None


def environment_prefix_of(resource_dir: Path) -> Path | None:
    """The prefix P when ``resource_dir`` is ``P/share/jupyter/kernels/<name>`` and P holds
    a Python interpreter; None otherwise."""
    kernels = resource_dir.parent
    if tuple(p.lower() for p in kernels.parts[-3:]) != _KERNELS_TAIL:
        return None
    prefix = kernels.parent.parent.parent
    return prefix if prefix_interpreter(prefix) is not None else None


@dataclass(frozen=True, slots=True)
class KernelSpec:
    """A kernelspec: the contents of one ``kernel.json`` and the directory holding it.

    ``problems`` lists what is wrong with it (empty means healthy); each entry names the
    file and the problem. A spec with problems is still returned by scans, so a broken
    spec never hides. ``env`` and ``metadata`` are plain dicts: treat them as read-only.
    """

    name: str
    resource_dir: Path
    argv: tuple[str, ...]
    display_name: str
    language: str
    interrupt_mode: typing.Literal["signal", "message"] = "signal"
    env: Mapping[str, str] = field(default_factory=dict, hash=False)
    metadata: Mapping[str, typing.Any] = field(default_factory=dict, hash=False)
    kernel_protocol_version: str | None = None
    problems: tuple[str, ...] = ()

    @property
    def healthy(self) -> bool:
        """True when nothing is known to be wrong with this spec."""
        return not self.problems

    @property
    def resource_files(self) -> tuple[Path, ...]:
        """Files beside kernel.json (logos, kernel.js, ...), sorted by name."""
        try:
            with os.scandir(self.resource_dir) as it:
                files = [
                    Path(e.path)
                    for e in it
                    if e.name != "kernel.json" and e.is_file(follow_symlinks=True)
                ]
        except OSError:
            return ()  # an unreadable directory is already one of `problems`
        return tuple(sorted(files))

    @property
    def environment_prefix(self) -> Path | None:
        """The environment prefix P when this spec lives in ``P/share/jupyter/kernels``
        and P holds a Python interpreter (a venv, conda env, or system prefix)."""
        return environment_prefix_of(self.resource_dir)

    def interpreter(self) -> Path | None:
        """The Python interpreter of :attr:`environment_prefix`, if any."""
        prefix = self.environment_prefix
        if prefix is None:
            return None
        first = self.argv[0] if self.argv and is_bare_python(self.argv[0]) else None
        return prefix_interpreter(prefix, first)

    def format_argv(
        self, *, connection_file: str | os.PathLike[str], python: str | None = None
    ) -> list[str]:
        """The command line to launch this kernel.

        ``{connection_file}`` (made absolute), ``{resource_dir}`` and ``{prefix}`` (the
        environment prefix, else ``sys.prefix``) are filled in; other ``{names}`` are left
        as they are, as Jupyter does. A bare ``python``/``python3``/``python3.X`` argv[0]
        belongs to the environment holding the spec: it becomes ``python`` if given, else
        that environment's interpreter, else ``sys.executable`` for ``python``, ``python3``
        and the running version's ``python3.X`` (a different ``python3.X`` is left to be
        found on PATH, since swapping in another version would break the kernel).
        """
        prefix = self.environment_prefix
        values = {
            "connection_file": os.path.abspath(os.fspath(connection_file)),
            "resource_dir": str(self.resource_dir),
            "prefix": str(prefix) if prefix is not None else sys.prefix,
        }

        def fill(match: re.Match[str]) -> str:
            return values.get(match.group(1), match.group(0))

        argv = [re.sub(_TEMPLATE, fill, arg) for arg in self.argv]
        if argv and is_bare_python(argv[0]):
            argv[0] = self._python_for(argv[0], python=python, prefix=prefix)
        return argv

    def _python_for(self, bare: str, *, python: str | None, prefix: Path | None) -> str:
        if python is not None:
            return python
        if prefix is not None:
            found = prefix_interpreter(prefix, bare)
            if found is not None:
                return str(found)
        if running_python_matches(bare):
            return sys.executable
        return bare

    def format_env(self, base: Mapping[str, str]) -> dict[str, str]:
        """``base`` updated with this spec's env, ``$VAR``/``${VAR}`` expanded from ``base``.

        As in jupyter_client: a variable missing from ``base`` is left as written
        (``${NOPE}`` stays ``${NOPE}``), and ``$$`` is a literal ``$``.
        """
        import string  # start-up time: listing never formats an environment

        env = dict(base)
        for key, value in self.env.items():
            env[key] = string.Template(value).safe_substitute(base)
        return env

    def to_dict(self) -> dict[str, typing.Any]:
        """The kernel.json object for this spec."""
        d: dict[str, typing.Any] = {
            "argv": list(self.argv),
            "env": dict(self.env),
            "display_name": self.display_name,
            "language": self.language,
            "interrupt_mode": self.interrupt_mode,
            "metadata": dict(self.metadata),
        }
        if self.kernel_protocol_version is not None:
            d["kernel_protocol_version"] = self.kernel_protocol_version
        return d


def running_python_matches(bare: str) -> bool:
    """True when ``bare`` names the running interpreter: python, python3 or python3.X."""
    name = bare.lower().removesuffix(".exe").removesuffix("w")
    major, minor = sys.version_info[:2]
    return name in ("python", f"python{major}", f"python{major}.{minor}")
