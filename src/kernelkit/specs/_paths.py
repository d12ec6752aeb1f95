"""Where kernelspecs live: Jupyter's search path, and the install destinations."""

from __future__ import annotations

import os
from pathlib import Path

from kernelkit._jupyterpaths import jupyter_data_dir, jupyter_path

__all__ = [
    "kernel_spec_dirs",
    "prefix_kernels_dir",
    "system_kernels_dir",
    "user_kernels_dir",
]


def _ipython_kernels_dir() -> Path:
    # jupyter_client also searches IPython's legacy kernels directory (when IPython is
    # importable). It is computed here without importing IPython: $IPYTHONDIR or ~/.ipython.
    ipython_dir = os.environ.get("IPYTHONDIR") or os.path.join("~", ".ipython")
    return Path(os.path.normpath(os.path.expanduser(ipython_dir)), "kernels")


def kernel_spec_dirs() -> list[Path]:
    """The directories searched for kernelspecs, in Jupyter's order (first wins for a name).

    That is ``jupyter_core.paths.jupyter_path("kernels")``: ``$JUPYTER_PATH`` entries, then
    the user data directory and the environment's (``sys.prefix``) directory in the order
    jupyter_core prefers (environment first inside a venv or conda env, or as
    ``$JUPYTER_PREFER_ENV_PATH`` says), then the system directories; then IPython's legacy
    ``~/.ipython/kernels`` as jupyter_client's KernelSpecManager adds it. Directories that
    do not exist are included (they are skipped when scanning).
    """
    dirs = [Path(d) for d in jupyter_path("kernels")]
    legacy = _ipython_kernels_dir()
    if legacy not in dirs:
        dirs.append(legacy)
    return dirs


def user_kernels_dir() -> Path:
    """Where ``install_kernel_spec(user=True)`` installs: ``<jupyter data dir>/kernels``."""
    return Path(jupyter_data_dir(), "kernels")


def prefix_kernels_dir(prefix: str | os.PathLike[str]) -> Path:
    """Where ``install_kernel_spec(prefix=P)`` installs: ``P/share/jupyter/kernels``."""
    return Path(os.path.abspath(prefix), "share", "jupyter", "kernels")


def system_kernels_dir() -> Path:
    """Where a system-wide install goes: the first of Jupyter's system directories."""
    import jupyter_core.paths  # start-up time: only installing system-wide asks

    return Path(jupyter_core.paths.SYSTEM_JUPYTER_PATH[0], "kernels")
