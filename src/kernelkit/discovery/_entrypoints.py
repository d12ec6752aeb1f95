"""The providers registered under an entry point group, cached on disk.

Reading entry points means importing ``importlib.metadata`` (email, zipfile, csv...) and
opening every installed distribution's metadata: about as much work as listing the
kernels themselves. The result only changes when packages are installed or removed,
which changes the modification time of the ``sys.path`` directory holding them, so it is
cached in ``<cache dir>/entry-points-<hash>.json`` keyed by those directories' ``stat``.

Reading the cache is on the start-up path of every listing, so this module avoids
``json``, ``hashlib``, ``zlib`` and ``tempfile`` (orjson is loaded by kernelspec scanning
anyway).
"""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path

import orjson

from kernelkit._files import atomic_write, kernelkit_log
from kernelkit.specs._listcache import file_key

__all__ = [
    "EntryPointRef",
    "default_cache_dir",
    "load_entry_point",
    "read_entry_points",
]

_FORMAT = 1

#: (name, "module:attr") of one entry point.
EntryPointRef = tuple[str, str]


def default_cache_dir() -> Path:
    """``$KERNELKIT_CACHE_DIR``, else ``$XDG_CACHE_HOME/kernelkit`` (``~/.cache/kernelkit``)."""
    root = os.environ.get("KERNELKIT_CACHE_DIR")
    if root:
        return Path(root)
    xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(xdg) / "kernelkit"


def _path_key() -> list[list[object]]:
    key: list[list[object]] = []
    for entry in sys.path:
        if not entry:
            # the current directory (python -c, the REPL): it holds no installed
            # distributions, and its mtime changes with every file saved there
            continue
        try:
            st = os.stat(entry)
        except OSError:
            key.append([entry, None])
            continue
        key.append([entry, st.st_mtime_ns, st.st_ino])
    return key


def _scan(group: str) -> list[EntryPointRef]:
    # Imported here: the cache exists so that most runs never pay for this import.
    from importlib.metadata import entry_points

    found: dict[str, str] = {}
    for ep in entry_points(group=group):
        found.setdefault(ep.name, ep.value)  # the first on sys.path wins, as for imports
    return sorted(found.items())


def read_entry_points(group: str, *, cache_dir: Path | None = None) -> list[EntryPointRef]:
    """The entry points of ``group`` as (name, value), from the cache when still valid.

    ``cache_dir=None`` uses :func:`default_cache_dir`. An unreadable or unwritable cache
    only costs a scan.
    """
    directory = default_cache_dir() if cache_dir is None else cache_dir
    # Which interpreter and group, in a file name.
    name = file_key(sys.executable + "\0" + group)
    path = directory / f"entry-points-{name}.json"
    key = _path_key()
    try:
        with open(path, "rb") as f:
            cached = orjson.loads(f.read())
        if (
            cached.get("format") == _FORMAT
            and cached.get("executable") == sys.executable
            and cached.get("group") == group
            and cached.get("key") == key
        ):
            return [(str(n), str(v)) for n, v in cached["entries"]]
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        pass  # no cache yet, or a stale or garbled one: scan and rewrite it
    entries = _scan(group)
    doc = {
        "format": _FORMAT,
        "executable": sys.executable,
        "group": group,
        "key": key,
        "entries": entries,
    }
    _write_atomically(path, orjson.dumps(doc))
    return entries


def _write_atomically(path: Path, data: bytes) -> None:
    """Write the cache whole (:mod:`kernelkit._files`); failing to write only means the
    next run scans again."""
    try:
        atomic_write(path, data, private=False)
    except OSError as exc:
        kernelkit_log().debug("cannot write the entry-point cache %s: %s", path, exc)


def load_entry_point(value: str) -> object:
    """What ``module:attr.sub`` names (as ``EntryPoint.load`` does).

    Raises:
        ImportError, AttributeError: from the plugin; the finder reports them.
    """
    module_name, _, attrs = value.split("[", 1)[0].partition(":")  # drop "[extras]"
    obj: object = importlib.import_module(module_name.strip())
    for attr in filter(None, attrs.strip().split(".")):
        obj = getattr(obj, attr)
    return obj
