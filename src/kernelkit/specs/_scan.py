"""Reading kernelspecs from disk: one directory, or every directory Jupyter searches.

Listing is on the hot path of every command line and editor start, so it reads each
kernel.json exactly once, parses it with orjson, and checks argv[0] with a few stat calls
behind a per-scan cache (a thousand specs usually share a handful of interpreters).
"""

from __future__ import annotations

import errno
import os
import re
import shutil
import stat
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import orjson

from kernelkit._errors import KernelSpecError, NoSuchKernel
from kernelkit.specs._paths import kernel_spec_dirs
from kernelkit.specs._spec import (
    InterruptMode,
    KernelSpec,
    is_bare_python,
    prefix_interpreter,
    running_python_matches,
)

__all__ = [
    "TEMP_PREFIX",
    "check_kernel_json",
    "find_kernel_specs",
    "get_kernel_spec",
    "is_valid_kernel_name",
    "load_kernel_spec",
    "scan_kernel_specs",
]

_KERNEL_JSON = "kernel.json"
#: Prefix of the temporary directories install_kernel_spec makes beside the destination.
TEMP_PREFIX = ".kernelkit-"
_MAX_KERNEL_JSON = 4 << 20  # a kernel.json is a few hundred bytes; refuse absurd ones
_CHUNK = 64 << 10
# O_NONBLOCK: a FIFO named kernel.json must not hang a scan.
_OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NONBLOCK", 0)
_NAME = re.compile(r"[a-z0-9._\-]+")
_TEMPLATE = re.compile(r"\{(resource_dir|prefix)\}")
_NO_ENV: dict[str, str] = {}
_NO_METADATA: dict[str, Any] = {}
_PATH_SEPS = tuple(s for s in (os.sep, os.altsep) if s)


def is_valid_kernel_name(name: str) -> bool:
    """Jupyter's rule for kernel names: ASCII letters, digits, ``-``, ``.`` and ``_``."""
    return _NAME.fullmatch(name.lower()) is not None


def _describe_type(value: object) -> str:
    return "null" if value is None else type(value).__name__


class _Resolver:
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


class _Fields:
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
        self.metadata: dict[str, Any] = {}
        self.kernel_protocol_version: str | None = None
        self.problems: list[str] = []


def _read_bytes(path: str) -> tuple[bytes, tuple[int, ...] | None]:
    """The bytes of a kernel.json and its stat signature (None when too fresh to cache)."""
    # os.open/os.read, not open(): no file object, and no buffer sized for the worst case.
    fd = os.open(path, _OPEN_FLAGS)
    try:
        signature = _signature(os.fstat(fd))
        data = os.read(fd, _CHUNK)
        if len(data) < _CHUNK:
            return data, signature
        chunks = [data]
        size = len(data)
        while chunk := os.read(fd, _CHUNK):
            chunks.append(chunk)
            size += len(chunk)
            if size > _MAX_KERNEL_JSON:
                raise OSError(errno.EFBIG, f"file too large (over {_MAX_KERNEL_JSON} bytes)")
        return b"".join(chunks), signature
    finally:
        os.close(fd)


def _parse(kernel_json: str, data: bytes, out: _Fields) -> None:
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


def _parse_well_formed(d: dict[str, Any], out: _Fields) -> bool:
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


def _parse_checked(kernel_json: str, d: dict[str, Any], out: _Fields) -> None:
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


def _health(
    kernel_json: str, dir_text: str, kernels_dir: str, first: str, resolver: _Resolver
) -> str | None:
    """The health problem of argv[0] (already prefixed with the file), or None."""
    if "{" in first:
        prefix = resolver.environment(kernels_dir)[0]
        values = {"resource_dir": dir_text, "prefix": str(prefix or sys.prefix)}
        first = _TEMPLATE.sub(lambda m: values[m.group(1)], first)
    problem = resolver.argv0_problem(first, kernels_dir)
    return None if problem is None else f"{kernel_json}: {problem}"


def _load(
    resource_dir: Path,
    name: str,
    resolver: _Resolver,
    *,
    in_scan: bool,
    kernels_dir: str | None = None,
) -> KernelSpec | None:
    """Load one spec directory. In a scan, a directory without kernel.json is not a spec
    (None); otherwise it is reported as a problem."""
    dir_text = str(resource_dir)
    kernel_json = dir_text + os.sep + _KERNEL_JSON
    fields = _Fields()
    signature = None
    health = None
    try:
        data, signature = _read_bytes(kernel_json)
    except FileNotFoundError:
        if os.path.islink(kernel_json):
            fields.problems.append(f"{kernel_json}: is a symbolic link to a missing file")
        elif in_scan:
            return None
        elif not os.path.isdir(resource_dir):
            fields.problems.append(f"{resource_dir}: no such kernelspec directory")
        else:
            fields.problems.append(f"{kernel_json}: no such file (not a kernelspec directory)")
    except NotADirectoryError:
        if in_scan:
            return None
        fields.problems.append(f"{resource_dir}: not a directory")
    except IsADirectoryError:
        fields.problems.append(f"{kernel_json}: is a directory, not a file")
    except OSError as exc:
        fields.problems.append(f"{kernel_json}: cannot read: {exc.strerror or exc}")
    else:
        _parse(kernel_json, data, fields)
        if fields.argv:
            if kernels_dir is None:
                kernels_dir = os.path.dirname(dir_text)
            health = _health(kernel_json, dir_text, kernels_dir, fields.argv[0], resolver)
    structural = tuple(fields.problems)
    spec = KernelSpec(
        name=name,
        resource_dir=resource_dir,
        argv=fields.argv,
        display_name=fields.display_name or name,
        language=fields.language,
        interrupt_mode=fields.interrupt_mode,
        env=fields.env,
        metadata=fields.metadata,
        kernel_protocol_version=fields.kernel_protocol_version,
        problems=structural if health is None else (*structural, health),
    )
    if in_scan and signature is not None and kernels_dir is not None:
        _remember(kernel_json, signature, spec, structural, health)
    return spec


# A scan in a long-lived process (a server listing specs on every page load) reuses the
# KernelSpec of an unchanged kernel.json. "Unchanged" is decided as git decides it for its
# index: same inode, size, mtime and ctime, and both times older than the racy window,
# since file times are coarse (a rewrite within one clock tick keeps the same mtime).
# argv[0]'s health is re-checked on every scan. Entries: kernel.json path ->
# (stat signature, spec, structural problems, health problem).
_RACY_NS = 2_000_000_000
_CACHE_LIMIT = 50_000
_cache: dict[str, tuple[tuple[int, ...], KernelSpec, tuple[str, ...], str | None]] = {}


def _signature(st: os.stat_result) -> tuple[int, ...] | None:
    """The stat signature of a kernel.json, or None when it changed too recently to trust."""
    horizon = time.time_ns() - _RACY_NS
    if st.st_mtime_ns >= horizon or st.st_ctime_ns >= horizon:
        return None
    return (st.st_ino, st.st_dev, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def _remember(
    kernel_json: str,
    signature: tuple[int, ...],
    spec: KernelSpec,
    structural: tuple[str, ...],
    health: str | None,
) -> None:
    if len(_cache) >= _CACHE_LIMIT:
        _cache.clear()
    _cache[kernel_json] = (signature, spec, structural, health)


def _cached(
    kernel_json: str, dir_text: str, kernels_dir: str, resolver: _Resolver
) -> KernelSpec | None:
    """The remembered spec for an unchanged kernel.json (health re-checked), or None."""
    entry = _cache.get(kernel_json)
    if entry is None:
        return None
    try:
        signature = _signature(os.stat(kernel_json))
    except OSError:
        return None  # gone or unreadable now: the full load reports it
    old_signature, spec, structural, old_health = entry
    if signature != old_signature:
        return None
    health = (
        _health(kernel_json, dir_text, kernels_dir, spec.argv[0], resolver) if spec.argv else None
    )
    if health == old_health:
        return spec
    spec = replace(spec, problems=structural if health is None else (*structural, health))
    _cache[kernel_json] = (old_signature, spec, structural, health)
    return spec


def load_kernel_spec(
    resource_dir: str | os.PathLike[str], *, name: str | None = None
) -> KernelSpec:
    """Load the kernelspec in ``resource_dir`` (the directory holding kernel.json).

    Never raises for a broken spec: it is returned with ``problems`` filled (invalid JSON,
    missing or malformed fields, argv[0] or its interpreter not found, unreadable files).
    ``name`` defaults to the directory name, lower-cased as Jupyter does.
    """
    path = Path(resource_dir)
    spec = _load(path, name if name is not None else path.name.lower(), _Resolver(), in_scan=False)
    assert spec is not None  # only a scan skips directories
    return spec


def check_kernel_json(source_dir: str | os.PathLike[str]) -> list[str]:
    """The structural problems of ``source_dir/kernel.json`` (no health checks of argv[0]:
    a spec may be installed for an interpreter that is not on this machine yet)."""
    kernel_json = os.path.join(source_dir, _KERNEL_JSON)
    fields = _Fields()
    try:
        _parse(kernel_json, _read_bytes(kernel_json)[0], fields)
    except FileNotFoundError:
        return [f"{kernel_json}: no such file (not a kernelspec directory)"]
    except OSError as exc:
        return [f"{kernel_json}: cannot read: {exc.strerror or exc}"]
    return fields.problems


# --------------------------------------------------------------------------- scanning


def _entries(directory: Path) -> list[os.DirEntry[str]] | None:
    """The entries of a kernels directory sorted by name; None if it does not exist.

    Raises OSError when it exists but cannot be listed.
    """
    try:
        with os.scandir(directory) as it:
            return sorted(it, key=lambda e: e.name)
    except (FileNotFoundError, NotADirectoryError):
        return None


def _unreadable_dir(directory: Path, exc: OSError) -> KernelSpec:
    return KernelSpec(
        name=str(directory),
        resource_dir=directory,
        argv=(),
        display_name=f"(unreadable kernels directory {directory})",
        language="",
        problems=(f"{directory}: cannot list the kernels directory: {exc.strerror or exc}",),
    )


def _spec_dirs(dirs: Sequence[str | os.PathLike[str]] | None) -> list[Path]:
    return kernel_spec_dirs() if dirs is None else [Path(d) for d in dirs]


def _candidates(directory: Path, seen: Mapping[str, object]) -> Iterator[tuple[str, str]]:
    """(lower-cased name, entry name) of each subdirectory not already seen."""
    entries = _entries(directory)
    for entry in entries or ():
        name = entry.name.lower()
        if name in seen or name.startswith(TEMP_PREFIX):
            continue
        try:
            if not entry.is_dir():
                continue
        except OSError:
            continue  # vanished or unstat-able entry: not a spec directory
        yield name, entry.name


def scan_kernel_specs(dirs: Sequence[str | os.PathLike[str]] | None = None) -> list[KernelSpec]:
    """Every kernelspec in ``dirs`` (default :func:`kernel_spec_dirs`), broken ones included.

    One spec per name: the first directory in search order wins, as in Jupyter (names are
    lower-cased; within one directory, names differing only in case resolve to the first
    in sorted order). A kernels directory that exists but cannot be listed is reported as
    a pseudo-spec whose ``name`` and ``resource_dir`` are that directory's path, with the
    reason in ``problems`` (a path can never clash with a real kernel name). Entries named
    ``.kernelkit-*`` are skipped: install uses them for its temporary copies.

    In a long-lived process, the KernelSpec of a kernel.json unchanged since the last scan
    (same inode, size and times, older than two seconds) is reused rather than re-read;
    argv[0]'s health is checked again on every scan. Specs are frozen: do not mutate their
    ``env`` or ``metadata``.
    """
    resolver = _Resolver()
    seen: dict[str, KernelSpec] = {}
    found: list[KernelSpec] = []
    for directory in _spec_dirs(dirs):
        try:
            candidates = list(_candidates(directory, seen))
        except OSError as exc:
            found.append(_unreadable_dir(directory, exc))
            continue
        kernels_dir = str(directory)
        for name, entry_name in candidates:
            if name in seen:
                continue  # a case variant of a name met earlier in this directory
            dir_text = kernels_dir + os.sep + entry_name
            spec = _cached(dir_text + os.sep + _KERNEL_JSON, dir_text, kernels_dir, resolver)
            if spec is None:
                path = directory / entry_name
                spec = _load(path, name, resolver, in_scan=True, kernels_dir=kernels_dir)
            if spec is not None:
                seen[name] = spec
                found.append(spec)
    return found


def _is_spec_dir(path: Path) -> bool:
    try:
        os.lstat(os.path.join(path, _KERNEL_JSON))
    except (FileNotFoundError, NotADirectoryError):
        return False
    except OSError:
        return True  # exists but cannot be checked: a spec, reported broken when loaded
    return True


def find_kernel_specs(*, dirs: Sequence[str | os.PathLike[str]] | None = None) -> dict[str, Path]:
    """Kernel names mapped to their resource directories (first directory wins).

    Cheap: no kernel.json is parsed. Broken specs are included (load them to see why);
    unreadable kernels directories are skipped here and reported by
    :func:`scan_kernel_specs`.
    """
    found: dict[str, Path] = {}
    for directory in _spec_dirs(dirs):
        try:
            candidates = list(_candidates(directory, found))
        except OSError:
            continue  # reported by scan_kernel_specs
        for name, entry_name in candidates:
            path = directory / entry_name
            if name not in found and _is_spec_dir(path):
                found[name] = path
    return found


def get_kernel_spec(
    name: str,
    *,
    dirs: Sequence[str | os.PathLike[str]] | None = None,
    allow_broken: bool = False,
) -> KernelSpec:
    """The kernelspec called ``name`` (case-insensitive), from the first directory holding it.

    Raises:
        NoSuchKernel: no spec has that name; the message lists the available names.
        KernelSpecError: the spec is broken (its problems are listed), unless
            ``allow_broken`` is true, in which case it is returned with its problems.
    """
    spec_dirs = _spec_dirs(dirs)
    wanted = name.lower()
    for directory in spec_dirs:
        try:
            entries = _entries(directory)
        except OSError:
            continue
        for entry in entries or ():
            if entry.name.lower() != wanted:
                continue
            path = Path(entry.path)
            if not path.is_dir() or not _is_spec_dir(path):
                continue
            spec = _load(path, wanted, _Resolver(), in_scan=False)
            assert spec is not None
            if spec.problems and not allow_broken:
                raise KernelSpecError(
                    f"kernelspec {wanted!r} in {path} is broken:\n  " + "\n  ".join(spec.problems)
                )
            return spec
    raise NoSuchKernel(name, available=list(find_kernel_specs(dirs=spec_dirs)))
