"""Reading kernelspecs from disk: one directory, or every directory Jupyter searches.

Listing is on the hot path of every command line and editor start, so it reads each
kernel.json at most once, parses it with orjson, and checks argv[0] with a few stat
calls behind a per-scan cache (a thousand specs usually share a handful of interpreters).
An unchanged kernel.json is not read again: in one process its KernelSpec is remembered;
across processes, for a directory of many specs, what it says is kept on disk
(kernelkit.specs._listcache). Both trust a file only while its stat is unchanged.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import stat
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import replace
from pathlib import Path

from kernelkit._errors import KernelSpecError, NoSuchKernel
from kernelkit.specs._check import Fields, Resolver, argv0_health, launch_problem, parse
from kernelkit.specs._listcache import MIN_SPECS, CachedSpecs, Signature, write_cached_specs
from kernelkit.specs._paths import kernel_spec_dirs
from kernelkit.specs._spec import (
    KernelSpec,
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
_NAME = r"[a-z0-9._\-]+"  # compiled by re on first use (installing)


def is_valid_kernel_name(name: str) -> bool:
    """Jupyter's rule for kernel names: ASCII letters, digits, ``-``, ``.`` and ``_``."""
    return re.fullmatch(_NAME, name.lower()) is not None


def _read_bytes(path: str) -> tuple[bytes, Signature | None]:
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


def _load(
    resource_dir: Path,
    name: str,
    resolver: Resolver,
    *,
    in_scan: bool,
    kernels_dir: str | None = None,
) -> KernelSpec | None:
    """Load one spec directory. In a scan, a directory without kernel.json is not a spec
    (None); otherwise it is reported as a problem."""
    dir_text = str(resource_dir)
    kernel_json = dir_text + os.sep + _KERNEL_JSON
    fields = Fields()
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
        if exc.errno == errno.ELOOP:
            looped = kernel_json if os.path.isdir(resource_dir) else dir_text
            fields.problems.append(
                f"{looped}: a symbolic link loop (it resolves to itself, directly or "
                "through other links): remove or fix the link"
            )
        else:
            fields.problems.append(f"{kernel_json}: cannot read: {exc.strerror or exc}")
    else:
        parse(kernel_json, data, fields)
        launch = launch_problem(kernel_json, fields)
        if launch is not None:
            fields.problems.append(launch)  # of the file alone: remembered with it
        if fields.argv:
            if kernels_dir is None:
                kernels_dir = os.path.dirname(dir_text)
            health = argv0_health(kernel_json, dir_text, kernels_dir, fields.argv[0], resolver)
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
_cache: dict[str, tuple[Signature, KernelSpec, tuple[str, ...], str | None]] = {}
_STAT_DIR_FD = os.stat in os.supports_dir_fd
_IN_SPEC_DIR = os.sep + _KERNEL_JSON
_DIR_FLAGS = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_CLOEXEC", 0)


def _signature(st: os.stat_result) -> Signature | None:
    """The stat signature of a kernel.json, or None when it changed too recently to trust."""
    horizon = time.time_ns() - _RACY_NS
    if st.st_mtime_ns >= horizon or st.st_ctime_ns >= horizon:
        return None
    return (st.st_ino, st.st_dev, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def _remember(
    kernel_json: str,
    signature: Signature,
    spec: KernelSpec,
    structural: tuple[str, ...],
    health: str | None,
) -> None:
    if len(_cache) >= _CACHE_LIMIT:
        _cache.clear()
    _cache[kernel_json] = (signature, spec, structural, health)


def _cached(
    kernel_json: str, dir_text: str, kernels_dir: str, resolver: Resolver
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
        argv0_health(kernel_json, dir_text, kernels_dir, spec.argv[0], resolver)
        if spec.argv
        else None
    )
    if health == old_health:
        return spec
    spec = replace(spec, problems=structural if health is None else (*structural, health))
    _cache[kernel_json] = (old_signature, spec, structural, health)
    return spec


class _DirCache:
    """The disk cache of one large kernels directory during a scan
    (kernelkit.specs._listcache): read on the first spec not remembered in this
    process, rewritten when what it should hold has changed."""

    def __init__(self, kernels_dir: str) -> None:
        self.kernels_dir = kernels_dir
        self.cached: CachedSpecs | None = None
        self.read_files = False  # some kernel.json was read (its entry may be new)
        self.kernel_jsons: dict[str, str] = {}  # entry name -> kernel.json path
        self._fd: int | None = None
        self._horizon = time.time_ns() - _RACY_NS

    def spec(
        self,
        resource_dir: Path,
        entry_name: str,
        kernel_json: str,
        dir_text: str,
        name: str,
        resolver: Resolver,
    ) -> KernelSpec | None:
        """The spec of an unchanged kernel.json from the cache (health checked now, and
        remembered for this process), or None."""
        cached = self.cached
        if cached is None:
            cached = self.cached = CachedSpecs(self.kernels_dir)
            if cached.entries and _STAT_DIR_FD:
                # stat relative to the open directory: the kernel does not walk the
                # directory's path again for each of a thousand files
                with contextlib.suppress(OSError):  # then by path
                    self._fd = os.open(self.kernels_dir, _DIR_FLAGS)
        entry = cached.entries.get(entry_name)
        if entry is None:
            return None
        try:
            if self._fd is None:
                st = os.stat(kernel_json)
            else:
                st = os.stat(entry_name + _IN_SPEC_DIR, dir_fd=self._fd)
        except OSError:
            return None  # gone or unreadable now: the full load reports it
        signature = (st.st_ino, st.st_dev, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
        if signature[3] >= self._horizon or signature[4] >= self._horizon:
            return None  # too fresh to trust
        got = cached.spec(entry, signature, name, resource_dir)
        if got is None:
            return None
        spec, structural = got
        health = (
            argv0_health(kernel_json, dir_text, self.kernels_dir, spec.argv[0], resolver)
            if spec.argv
            else None
        )
        if health is not None:
            spec = replace(spec, problems=(*structural, health))
        _remember(kernel_json, signature, spec, structural, health)
        return spec

    def close(self) -> None:
        """Close the directory and rewrite the cache if it should hold something else."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        if not self.read_files:
            return  # everything came from this cache or this process's memory
        keep: dict[str, tuple[Signature, KernelSpec, tuple[str, ...]]] = {}
        for entry_name, kernel_json in self.kernel_jsons.items():
            remembered = _cache.get(kernel_json)
            if remembered is not None:  # read and trusted (not too fresh)
                signature, spec, structural, _ = remembered
                keep[entry_name] = (signature, spec, structural)
        if self.cached is None:
            self.cached = CachedSpecs(self.kernels_dir)
        entries = self.cached.entries
        same = set(keep) == set(entries) and all(
            self.cached.spec(entries[n], sig, spec.name, spec.resource_dir)
            == (replace(spec, problems=structural), structural)
            for n, (sig, spec, structural) in keep.items()
        )
        if not same:
            write_cached_specs(self.kernels_dir, keep)


def load_kernel_spec(
    resource_dir: str | os.PathLike[str], *, name: str | None = None
) -> KernelSpec:
    """Load the kernelspec in ``resource_dir`` (the directory holding kernel.json).

    Never raises for a broken spec: it is returned with ``problems`` filled (invalid JSON,
    missing or malformed fields, argv[0] or its interpreter not found, unreadable files).
    ``name`` defaults to the directory name, lower-cased as Jupyter does.
    """
    path = Path(resource_dir)
    spec = _load(path, name if name is not None else path.name.lower(), Resolver(), in_scan=False)
    assert spec is not None  # only a scan skips directories
    return spec


def check_kernel_json(source_dir: str | os.PathLike[str]) -> list[str]:
    """The structural problems of ``source_dir/kernel.json`` (no health checks of argv[0]:
    a spec may be installed for an interpreter that is not on this machine yet)."""
    kernel_json = os.path.join(source_dir, _KERNEL_JSON)
    fields = Fields()
    try:
        parse(kernel_json, _read_bytes(kernel_json)[0], fields)
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
        except FileNotFoundError:
            continue  # vanished meanwhile
        except OSError as exc:
            if exc.errno != errno.ELOOP:
                continue  # unstat-able: not a spec directory
            # A symbolic link loop: loading it reports the loop (never skipped silently).
        yield name, entry.name


def _listing(directory: Path, seen: Mapping[str, object]) -> list[tuple[str, str, Path]] | None:
    """(lower-cased name, entry name, path) of each entry of a kernels directory not
    already seen, sorted by entry name; None if the directory does not exist.

    Whether an entry is a directory is left to :func:`_is_candidate`, asked only for an
    entry that is not remembered: a kernel.json whose stat matches needs no other check.
    ``Path.iterdir`` makes the paths without parsing each again (a third of the cost).

    Raises OSError when it exists but cannot be listed.
    """
    try:
        named = sorted((path.name, path) for path in directory.iterdir())
    except (FileNotFoundError, NotADirectoryError):
        return None
    out = []
    for entry_name, path in named:
        name = entry_name.lower()
        if name not in seen and not name.startswith(TEMP_PREFIX):
            out.append((name, entry_name, path))
    return out


def _is_candidate(path: Path) -> bool:
    """Whether a kernels directory entry may be a spec directory, as ``DirEntry.is_dir``
    says it (symbolic links followed); a symbolic link loop is one, so that loading it
    reports the loop rather than skipping it silently."""
    try:
        return stat.S_ISDIR(os.stat(path).st_mode)
    except FileNotFoundError:
        return False  # vanished meanwhile, or a dangling link
    except OSError as exc:
        return exc.errno == errno.ELOOP  # otherwise unstat-able: not a spec directory


def _scan_dir(
    directory: Path,
    kernels_dir: str,
    candidates: list[tuple[str, str, Path]],
    seen: dict[str, KernelSpec],
    found: list[KernelSpec],
    resolver: Resolver,
    disk: _DirCache | None,
) -> None:
    for name, entry_name, path in candidates:
        if name in seen:
            continue  # a case variant of a name met earlier in this directory
        dir_text = kernels_dir + os.sep + entry_name
        kernel_json = dir_text + os.sep + _KERNEL_JSON
        spec = None
        if kernel_json in _cache:  # remembered in this process
            spec = _cached(kernel_json, dir_text, kernels_dir, resolver)
        if disk is not None and spec is None:
            spec = disk.spec(path, entry_name, kernel_json, dir_text, name, resolver)
        if spec is None:
            if not _is_candidate(path):
                continue
            spec = _load(path, name, resolver, in_scan=True, kernels_dir=kernels_dir)
            if disk is not None and spec is not None:
                disk.read_files = True
        if spec is not None:
            seen[name] = spec
            found.append(spec)
            if disk is not None:
                disk.kernel_jsons[entry_name] = kernel_json


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
    a fresh process gets what an unchanged kernel.json says from a cache file when its
    directory holds 16 or more specs (``$KERNELKIT_CACHE_DIR``, else
    ``~/.cache/kernelkit``; see kernelkit.specs._listcache). argv[0]'s health is checked
    again on every scan. Specs are frozen: do not mutate their ``env`` or ``metadata``
    (specs from one directory's cache share equal values).
    """
    resolver = Resolver()
    seen: dict[str, KernelSpec] = {}
    found: list[KernelSpec] = []
    for directory in _spec_dirs(dirs):
        try:
            candidates = _listing(directory, seen)
        except OSError as exc:
            found.append(_unreadable_dir(directory, exc))
            continue
        if candidates is None:
            continue
        kernels_dir = str(directory)
        disk = _DirCache(kernels_dir) if len(candidates) >= MIN_SPECS else None
        try:
            _scan_dir(directory, kernels_dir, candidates, seen, found, resolver, disk)
        finally:
            if disk is not None:
                disk.close()
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
            spec = _load(path, wanted, Resolver(), in_scan=False)
            assert spec is not None
            if spec.problems and not allow_broken:
                raise KernelSpecError(
                    f"kernelspec {wanted!r} in {path} is broken:\n  " + "\n  ".join(spec.problems)
                )
            return spec
    raise NoSuchKernel(name, available=list(find_kernel_specs(dirs=spec_dirs)))
