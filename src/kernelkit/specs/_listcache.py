"""The kernelspecs of a large kernels directory, remembered on disk between processes.

A fresh process listing a directory of many kernelspecs would open and parse every
kernel.json again. What each one held is kept instead in
``<cache dir>/kernelspecs/<hash of the directory>.json``, one file per kernels directory
with at least :data:`MIN_SPECS` specs (below that, reading the cache costs as much as
reading the specs). An entry is used only while ``stat`` of its kernel.json gives the
same signature: inode, device, size, mtime and ctime, both times older than the racy
window (git's rule for its index; see ``_scan._signature``). ctime cannot be set back,
so an edit in place that keeps the size and restores the mtime still shows. The kernels
directory itself is listed every time, so specs added or removed are always seen.

What is kept is what the file says (its fields and its structural problems); the health
of argv[0] depends on the machine, not the file, and is checked again on every listing.
Specs of one directory mostly say the same things (one interpreter, empty ``env``), so
each distinct value is stored once and shared by the specs that hold it, as the
in-process cache already shares whole specs: specs are read-only.

A missing, garbled or foreign cache file only means reading the kernel.json files
(logged at debug level); one that cannot be written, the same next time. Files are
written whole (kernelkit._files.atomic_write), mode 0600 in a 0700 directory, and read
only when this user owns them and nobody else can write them: what a cached spec says
is what gets launched.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import orjson

from kernelkit._files import atomic_write, kernelkit_log
from kernelkit.specs._spec import KernelSpec

__all__ = [
    "MIN_SPECS",
    "CachedSpecs",
    "Signature",
    "cache_file",
    "file_key",
    "write_cached_specs",
]

_FORMAT = 2
#: Kernels directories with fewer candidate specs are not cached.
MIN_SPECS = 16

#: (inode, device, size, mtime_ns, ctime_ns) of a kernel.json.
Signature = tuple[int, int, int, int, int]

# One entry: [signature, argv, display_name, language, interrupt_mode, env, metadata,
# kernel_protocol_version, structural problems]; argv, env, metadata and problems are
# indexes into the document's "values".
_MODES = ("signal", "message")


def _cache_root() -> Path:
    """``$KERNELKIT_CACHE_DIR``, else ``$XDG_CACHE_HOME/kernelkit`` (``~/.cache/kernelkit``)."""
    root = os.environ.get("KERNELKIT_CACHE_DIR")
    if root:
        return Path(root)
    xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(xdg) / "kernelkit"


def _foreign(st: os.stat_result) -> str | None:
    """Why a cache file may not be trusted (another user's, or writable by others)."""
    getuid = getattr(os, "getuid", None)
    if getuid is not None and st.st_uid != getuid():
        return f"owned by user {st.st_uid}, not by this one"
    if os.name != "nt" and st.st_mode & 0o022:
        return f"writable by group or others (mode {st.st_mode & 0o777:04o})"
    return None


def file_key(text: str) -> str:
    """16 hex digits naming a cache file for ``text`` (FNV-1a, 64 bits): a cache key,
    not a secret, and no hashing module to import on the listing path."""
    digest = 0xCBF29CE484222325
    for byte in text.encode("utf-8", "surrogateescape"):
        digest = ((digest ^ byte) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return f"{digest:016x}"


def cache_file(kernels_dir: str) -> Path:
    """Where the specs of ``kernels_dir`` are kept."""
    return _cache_root() / "kernelspecs" / f"{file_key(kernels_dir)}.json"


class CachedSpecs:
    """The cached specs of one kernels directory, as read from its cache file."""

    def __init__(self, kernels_dir: str) -> None:
        self.kernels_dir = kernels_dir
        self.entries: dict[str, object] = {}
        # each shared value, checked once, as each field needs it (None: not usable)
        self._strings: list[tuple[str, ...] | None] = []
        self._envs: list[dict[str, str] | None] = []
        self._objects: list[dict[str, object] | None] = []
        path = cache_file(kernels_dir)
        try:
            with open(path, "rb") as f:
                foreign = _foreign(os.fstat(f.fileno()))
                data = b"" if foreign else f.read()
            if foreign:
                # what it says would be launched: only a file no one else can write
                kernelkit_log().debug("ignoring the kernelspec cache %s: %s", path, foreign)
                return
            doc = orjson.loads(data)
        except FileNotFoundError:
            return
        except (OSError, orjson.JSONDecodeError) as exc:
            kernelkit_log().debug("ignoring the kernelspec cache %s: %s", path, exc)
            return
        if not (
            type(doc) is dict
            and doc.get("format") == _FORMAT
            and doc.get("dir") == kernels_dir
            and type(doc.get("entries")) is dict
            and type(doc.get("values")) is list
        ):
            kernelkit_log().debug("ignoring the kernelspec cache %s: not one of ours", path)
            return
        self.entries = doc["entries"]
        for value in doc["values"]:
            strings = tuple(value) if type(value) is list else None
            if strings is not None and not all(type(s) is str for s in strings):
                strings = None
            self._strings.append(strings)
            mapping = value if type(value) is dict else None
            self._objects.append(mapping)
            if mapping is not None and all(type(v) is str for v in mapping.values()):
                self._envs.append(mapping)
            else:
                self._envs.append(None)

    def spec(
        self, entry: object, signature: Signature, name: str, resource_dir: Path
    ) -> tuple[KernelSpec, tuple[str, ...]] | None:
        """(the spec, its structural problems) from ``entry`` (of :attr:`entries`) when
        its kernel.json still has this ``signature``; None when it has not, or the entry
        is malformed."""
        if type(entry) is not list:
            return None
        try:
            sig, argv_at, display_name, language, mode, env_at, metadata_at, version, at = entry
            if tuple(sig) != signature:
                return None
            argv = self._strings[argv_at]
            problems = self._strings[at]
            env = self._envs[env_at]
            metadata = self._objects[metadata_at]
        except (TypeError, ValueError, IndexError):  # not what this version writes
            return None
        if (
            argv is None
            or problems is None
            or env is None
            or metadata is None
            or type(display_name) is not str
            or type(language) is not str
            or mode not in _MODES
            or not (version is None or type(version) is str)
        ):
            return None
        spec = KernelSpec(
            name,
            resource_dir,
            argv,
            display_name,
            language,
            "signal" if mode == "signal" else "message",
            env,
            metadata,
            version,
            problems,
        )
        return spec, problems


def write_cached_specs(
    kernels_dir: str, specs: dict[str, tuple[Signature, KernelSpec, tuple[str, ...]]]
) -> None:
    """Replace the cache of ``kernels_dir`` with ``specs`` (entry name -> signature, spec
    read from it, its structural problems); failing only costs a re-read next time."""
    values: list[object] = []
    index: dict[object, int] = {}

    def ref(value: tuple[str, ...] | Mapping[str, object]) -> int:
        """The index of ``value`` in ``values`` (added once): a tuple is its own key, an
        object its JSON text (an empty one, the commonest, without serializing)."""
        if isinstance(value, tuple):
            key: object = value
        elif value:
            key = orjson.dumps(dict(value), option=orjson.OPT_SORT_KEYS)
        else:
            key = b"{}"
        found = index.get(key)
        if found is None:
            found = index[key] = len(values)
            values.append(list(value) if isinstance(value, tuple) else dict(value))
        return found

    path = cache_file(kernels_dir)
    try:
        entries = {
            entry_name: [
                list(signature),
                ref(spec.argv),
                spec.display_name,
                spec.language,
                spec.interrupt_mode,
                ref(spec.env),
                ref(spec.metadata),
                spec.kernel_protocol_version,
                ref(structural),
            ]
            for entry_name, (signature, spec, structural) in specs.items()
        }
        data = orjson.dumps(
            {"format": _FORMAT, "dir": kernels_dir, "values": values, "entries": entries}
        )
        atomic_write(path, data, private=True)
    except (OSError, TypeError) as exc:
        kernelkit_log().debug("cannot write the kernelspec cache %s: %s", path, exc)
