"""``kernelkit --help`` from a cache, without importing typer and click.

The top-level help is a function of the command declarations (the ``cli`` package's
source), the installed typer, the program name and the terminal width. The first
``kernelkit --help`` for a combination runs the typer app as always, keeps what it
printed in the cache directory and prints it; later ones print the kept text. Anything
that changes the text changes the key, so a stale text is never printed; a cache that
cannot be read or written only costs the app run. tests/cli/test_fast_help.py compares
the cached text with the app's.
"""

from __future__ import annotations

import hashlib
import io
import os
import sys
from pathlib import Path

from kernelkit._files import atomic_write, kernelkit_log

__all__ = ["cached_help", "help_key", "remember_help"]

_FORMAT = 1


def _cache_dir() -> Path:
    # As kernelkit.discovery's entry-point cache (that package is not imported here).
    root = os.environ.get("KERNELKIT_CACHE_DIR")
    if root:
        return Path(root)
    xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(xdg) / "kernelkit"


def help_key() -> str:
    """What the help text depends on, as one string (None of it is secret)."""
    import shutil  # the width click formats to comes from here too

    parts: list[object] = [
        _FORMAT,
        sys.version,
        sys.argv[0],
        getattr(sys.modules.get("__main__"), "__package__", None),
        shutil.get_terminal_size().columns,
    ]
    cli_dir = Path(__file__).parent
    for source in sorted(cli_dir.glob("*.py")):
        st = source.stat()
        parts.append((source.name, st.st_mtime_ns, st.st_size))
    parts.append(_typer_stamp())
    return repr(parts)


def _typer_stamp() -> object:
    # The installed typer, without importing it: its package directory's files.
    for entry in sys.path:
        init = Path(entry or ".", "typer", "__init__.py")
        try:
            st = init.stat()
        except OSError:
            continue
        return (str(init), st.st_mtime_ns, st.st_size)
    return None


def _cache_file(key: str) -> Path:
    digest = hashlib.sha1(key.encode("utf-8", "surrogateescape")).hexdigest()[:16]
    return _cache_dir() / f"help-{digest}.txt"


def cached_help(key: str) -> str | None:
    """The help text kept for ``key``, or None."""
    try:
        data = _cache_file(key).read_bytes()
    except OSError:
        return None
    stored_key, sep, text = data.decode("utf-8", "surrogateescape").partition("\0")
    return text if sep and stored_key == key else None


def remember_help(key: str) -> None:
    """Run the typer app's ``--help`` (it exits), keeping what it printed for ``key``."""
    from kernelkit.cli._app import app

    real = sys.stdout
    captured = io.StringIO()
    sys.stdout = captured
    try:
        app()
    except SystemExit as exc:
        sys.stdout = real
        text = captured.getvalue()
        real.write(text)
        if exc.code in (0, None):
            path = _cache_file(key)
            try:
                atomic_write(path, (key + "\0" + text).encode(), private=False)
            except OSError as exc:  # the next --help runs the app again
                kernelkit_log().debug("cannot write the help cache %s: %s", path, exc)
        raise
    finally:
        sys.stdout = real
