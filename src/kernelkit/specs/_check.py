"""Checking one kernel.json: its fields (structure and types, as Jupyter reads them) and
the health of its argv[0] (found, executable, its interpreter there), with per-scan caches
so that a thousand specs sharing a handful of interpreters cost a few stat calls."""

from __future__ import annotations

import os
import re
import stat
import sys
from collections.abc import Sequence
from pathlib import Path

import orjson

from kernelkit.specs._spec import (
    is_bare_python,
    prefix_interpreter,
    running_python_matches,
)

# typing in annotations only, imported when they are inspected (kernelkit.specs._typing)
TYPE_CHECKING = False
if not TYPE_CHECKING:
    from kernelkit.specs._typing import typing
else:
    import typing

if TYPE_CHECKING:
    from kernelkit.specs._spec import InterruptMode

__all__ = [
    "Fields",
    "Resolver",
    "argv0_health",
    "connection_file_problem",
    "launch_problem",
    "parse",
]

_TEMPLATE = r"\{(resource_dir|prefix)\}"  # compiled by re on first use (rare)
_NO_ENV: dict[str, str] = {}
_NO_METADATA: dict[str, typing.Any] = {}
_PATH_SEPS = tuple(s for s in (os.sep, os.altsep) if s)


def _describe_type(value: object) -> str:
    return "null" if value is None else type(value).__name__


class Resolver:
    """Per-scan caches for the health checks of argv[0]."""

    def __init__(self) -> None:
        self._path = os.environ.get("PATH", os.defpath)
        self._which: dict[str, str | None] = {}
        self._files: dict[str, str | None] = {}
        self._prefixes: dict[str, tuple[Path | None, bool]] = {}
        self._argv0: dict[tuple[str, str], str | None] = {}

    def which(self, name: str) -> str | None:
        try:
            return self._which[name]
        except KeyError:
            import shutil  # start-up time: shutil pulls bz2/lzma/fnmatch, rarely needed here

            found = self._which[name] = shutil.which(name, path=self._path)
            return found

    def file_problem(self, path: str) -> str | None:
        """Why ``path`` cannot be executed, or None if it can."""
        try:
            return self._files[path]
        except KeyError:
            pass
        problem: str | None = None
        try:
            st = os.stat(path)
        except FileNotFoundError:
            problem = "does not exist"
        except OSError as exc:
            problem = f"cannot be checked ({exc.strerror or exc})"
        else:
            if stat.S_ISDIR(st.st_mode):
                problem = "is a directory"
            elif not os.access(path, os.X_OK):
                problem = "is not executable"
        self._files[path] = problem
        return problem

    def environment(self, kernels_dir: str) -> tuple[Path | None, bool]:
        """(prefix P, whether P holds a Python) for specs in ``P/share/jupyter/kernels``.

        The prefix is returned only when P holds an interpreter or looks like an
        environment (``pyvenv.cfg`` or ``conda-meta``), so a bare ``python`` in a spec whose
        environment lost its interpreter is reported rather than silently replaced.
        """
        try:
            return self._prefixes[kernels_dir]
        except KeyError:
            pass
        result: tuple[Path | None, bool] = (None, False)
        kernels = Path(kernels_dir)
        if tuple(p.lower() for p in kernels.parts[-3:]) == ("share", "jupyter", "kernels"):
            prefix = kernels.parent.parent.parent
            if prefix_interpreter(prefix) is not None:
                result = (prefix, True)
            elif (prefix / "pyvenv.cfg").exists() or (prefix / "conda-meta").is_dir():
                result = (prefix, False)
        self._prefixes[kernels_dir] = result
        return result

    def argv0_problem(self, first: str, kernels_dir: str) -> str | None:
        """Why argv[0] of a spec in ``kernels_dir`` cannot be started, or None."""
        key = (first, kernels_dir)
        try:
            return self._argv0[key]
        except KeyError:
            problem = self._argv0[key] = self._argv0_problem(first, kernels_dir)
            return problem

    def _argv0_problem(self, first: str, kernels_dir: str) -> str | None:
        prefix, has_python = self.environment(kernels_dir)
        if is_bare_python(first):
            if has_python:
                return None  # the holding environment's interpreter runs it
            if prefix is not None:
                return (
                    f"interpreter missing: argv[0] is {first!r}, which belongs to the "
                    f"environment {prefix}, but it has no Python interpreter any more"
                )
            if running_python_matches(first) or self.which(first) is not None:
                return None
            return (
                f"interpreter missing: argv[0] {first!r} is not in the environment holding "
                f"this spec and not on PATH"
            )
        if any(s in first for s in _PATH_SEPS):
            problem = self.file_problem(first)
            return None if problem is None else f"argv[0] {first!r} {problem}"
        if self.which(first) is None:
            return f"argv[0] {first!r} is not found on PATH"
        return None


# --------------------------------------------------------------------------- parsing


class Fields:
    """What a kernel.json holds, after validation, plus what is wrong with it."""

    __slots__ = (
        "argv",
        "display_name",
        "env",
        "interrupt_mode",
        "kernel_protocol_version",
        "language",
        "metadata",
        "problems",
    )

    def __init__(self) -> None:
        self.argv: tuple[str, ...] = ()
        self.display_name = ""
        self.language = ""
        self.interrupt_mode: InterruptMode = "signal"
        self.env: dict[str, str] = {}
        self.metadata: dict[str, typing.Any] = {}
        self.kernel_protocol_version: str | None = None
        self.problems: list[str] = []


def connection_file_problem(argv: Sequence[str]) -> str | None:
    """Why a kernel started with ``argv`` by the local provisioner could never learn its
    ports and key (no ``{connection_file}`` in it), or None."""
    for arg in argv:
        if "{connection_file}" in arg:
            return None
    return (
        "its argv has no {connection_file}: the kernel would never learn its ports and "
        "key, and nothing could connect to it; add the connection file argument where "
        'the kernel takes it (ipykernel: "-f", "{connection_file}")'
    )


def parse(kernel_json: str, data: bytes, out: Fields) -> None:
    """Validate the JSON of a kernel.json into ``out`` (structural problems only)."""
    try:
        d = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        out.problems.append(f"{kernel_json}: invalid JSON: {exc}")
        return
    if type(d) is not dict:
        out.problems.append(f"{kernel_json}: expected a JSON object, got {_describe_type(d)}")
    elif not _parse_well_formed(d, out):
        _parse_checked(kernel_json, d, out)


def launch_problem(kernel_json: str, fields: Fields) -> str | None:
    """Why a well-formed spec cannot be launched as it is written (health, not
    structure: it may still be installed), or None."""
    # A spec naming its own provisioner (a gateway's, a remote one) passes its own
    # arguments: only the local launch needs the connection file in argv.
    if not fields.argv or "kernel_provisioner" in fields.metadata:
        return None
    problem = connection_file_problem(fields.argv)
    return None if problem is None else f"{kernel_json}: {problem}"


def _parse_well_formed(d: dict[str, typing.Any], out: Fields) -> bool:
    """The fast path for the usual, valid kernel.json; False sends it to the careful one."""
    argv = d.get("argv")
    display_name = d.get("display_name")
    language = d.get("language", "")
    mode = d.get("interrupt_mode", "signal")
    env = d.get("env", _NO_ENV)
    metadata = d.get("metadata", _NO_METADATA)
    version = d.get("kernel_protocol_version")
    if not (
        type(argv) is list
        and argv
        and type(display_name) is str
        and display_name.strip()
        and type(language) is str
        and (mode == "signal" or mode == "message")
        and type(env) is dict
        and type(metadata) is dict
        and (version is None or type(version) is str)
    ):
        return False
    for arg in argv:
        if type(arg) is not str:
            return False
    for value in env.values():
        if type(value) is not str:
            return False
    if not argv[0]:
        return False
    out.argv = tuple(argv)
    out.display_name = display_name
    out.language = language
    out.interrupt_mode = mode
    out.env = env if env is not _NO_ENV else {}
    out.metadata = metadata if metadata is not _NO_METADATA else {}
    out.kernel_protocol_version = version
    return True


def _parse_checked(kernel_json: str, d: dict[str, typing.Any], out: Fields) -> None:
    """Validate field by field, recording every problem."""
    problems = out.problems

    argv = d.get("argv")
    if "argv" not in d:
        problems.append(f"{kernel_json}: missing 'argv' (the command that starts the kernel)")
    elif not isinstance(argv, list):
        problems.append(
            f"{kernel_json}: 'argv' must be a list of strings, got {_describe_type(argv)}"
        )
    elif not argv:
        problems.append(f"{kernel_json}: 'argv' is empty")
    else:
        bad = [i for i, a in enumerate(argv) if not isinstance(a, str)]
        if bad:
            problems.append(
                f"{kernel_json}: 'argv' must be a list of strings; item {bad[0]} is "
                f"{_describe_type(argv[bad[0]])}"
            )
        elif not argv[0]:
            problems.append(f"{kernel_json}: 'argv' starts with an empty string")
        else:
            out.argv = tuple(argv)

    display_name = d.get("display_name")
    if "display_name" not in d:
        problems.append(f"{kernel_json}: missing 'display_name'")
    elif not isinstance(display_name, str) or not display_name.strip():
        problems.append(
            f"{kernel_json}: 'display_name' must be a non-empty string, got {display_name!r}"
        )
    else:
        out.display_name = display_name

    language = d.get("language", "")
    if isinstance(language, str):
        out.language = language
    else:
        problems.append(
            f"{kernel_json}: 'language' must be a string, got {_describe_type(language)}"
        )

    mode = d.get("interrupt_mode", "signal")
    lowered = mode.lower() if isinstance(mode, str) else None
    if lowered == "signal":
        out.interrupt_mode = "signal"
    elif lowered == "message":
        out.interrupt_mode = "message"
    else:
        problems.append(
            f"{kernel_json}: 'interrupt_mode' is {mode!r}; expected 'signal' or 'message'"
        )

    env = d.get("env", {})
    if isinstance(env, dict) and all(isinstance(v, str) for v in env.values()):
        out.env = env
    elif isinstance(env, dict):
        key = next(k for k, v in env.items() if not isinstance(v, str))
        problems.append(
            f"{kernel_json}: 'env' values must be strings; {key!r} is {_describe_type(env[key])}"
        )
    else:
        problems.append(f"{kernel_json}: 'env' must be an object, got {_describe_type(env)}")

    metadata = d.get("metadata", {})
    if isinstance(metadata, dict):
        out.metadata = metadata
    else:
        problems.append(
            f"{kernel_json}: 'metadata' must be an object, got {_describe_type(metadata)}"
        )

    version = d.get("kernel_protocol_version")
    if version is None or isinstance(version, str):
        out.kernel_protocol_version = version
    else:
        problems.append(
            f"{kernel_json}: 'kernel_protocol_version' must be a string, "
            f"got {_describe_type(version)}"
        )


def argv0_health(
    kernel_json: str, dir_text: str, kernels_dir: str, first: str, resolver: Resolver
) -> str | None:
    """The health problem of argv[0] (already prefixed with the file), or None."""
    if "{" in first:
        prefix = resolver.environment(kernels_dir)[0]
        values = {"resource_dir": dir_text, "prefix": str(prefix or sys.prefix)}
        first = re.sub(_TEMPLATE, lambda m: values[m.group(1)], first)
    problem = resolver.argv0_problem(first, kernels_dir)
    return None if problem is None else f"{kernel_json}: {problem}"
