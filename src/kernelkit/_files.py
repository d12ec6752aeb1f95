"""Writing kernelkit's own files: whole or not at all, private when they hold secrets.

One writer for connection files, the activation cache and the entry-point cache.
Readers never see half a file: the data goes to a temporary file beside the target
(created ``O_EXCL`` with the file's final mode, so a key is never readable by others,
not even briefly) and ``os.replace`` swaps it in. No fsync: these are runtime and cache
files; the concern is concurrent readers, not power loss.
"""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path

TYPE_CHECKING = False
if TYPE_CHECKING:
    import logging

__all__ = ["atomic_write", "ensure_private_dir", "kernelkit_log"]


def kernelkit_log() -> logging.Logger:
    """The ``kernelkit`` logger. The modules that listing imports log only on rare paths
    (a cache that cannot be written), and importing logging costs more than listing a
    directory of kernelspecs, so it is imported on first use."""
    import logging

    return logging.getLogger("kernelkit")


#: Directories already checked in this process (warn once each).
_checked_dirs: set[Path] = set()


def ensure_private_dir(directory: Path) -> None:
    """Create ``directory`` (and each missing parent) with mode 0700 whatever the umask;
    warn (once per directory and process) when it exists and others may write to it.

    Raises:
        OSError: a level cannot be created.
    """
    if directory.is_dir():
        if directory not in _checked_dirs:
            _checked_dirs.add(directory)
            _warn_if_writable_by_others(directory)
        return
    missing: list[Path] = []
    for level in (directory, *directory.parents):
        if level.is_dir():
            break
        missing.append(level)
    for level in reversed(missing):
        with contextlib.suppress(FileExistsError):  # another process made it meanwhile
            os.mkdir(level, 0o700)
            # mkdir's mode is filtered by the umask; nobody else may list it, ever.
            os.chmod(level, 0o700)
    _checked_dirs.add(directory)


def _warn_if_writable_by_others(directory: Path) -> None:
    if os.name == "nt":
        return
    try:
        st = os.stat(directory)
    except OSError:
        return  # writing into it will say what is wrong
    # Sticky world-writable directories (/tmp) stop others replacing our files.
    if st.st_mode & 0o022 and not st.st_mode & stat.S_ISVTX:
        kernelkit_log().warning(
            "%s (mode %04o) is writable by group or others, who could replace files in it; "
            "run `chmod 700 %s`",
            directory,
            stat.S_IMODE(st.st_mode),
            directory,
        )


def atomic_write(path: Path, data: bytes, *, private: bool = True) -> None:
    """Write ``data`` to ``path`` so readers see the old file or the whole new one.

    ``private``: the file gets mode 0600 and missing directories 0700 (they hold keys);
    otherwise 0644 and ordinary directories (a cache).

    Raises:
        OSError: the directory or file cannot be created or written (nothing is left
            behind).
    """
    if private:
        ensure_private_dir(path.parent)
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
    tmp_name = None
    try:
        fd, tmp_name = _create_beside(path, 0o600 if private else 0o644)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp_name, path)
        tmp_name = None
    finally:
        if tmp_name is not None:
            with contextlib.suppress(FileNotFoundError):  # never created, or already moved
                os.unlink(tmp_name)


def _create_beside(path: Path, mode: int) -> tuple[int, str]:
    # O_EXCL with the final mode is what tempfile.mkstemp does; written out here to avoid
    # importing tempfile (and its random/shutil imports) on the launch path.
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    for _ in range(100):
        name = str(path.parent / f".{path.name}.{os.urandom(6).hex()}.tmp")
        try:
            return os.open(name, flags, mode), name
        except FileExistsError:
            continue
    raise FileExistsError(f"no free temporary name beside {path}")
