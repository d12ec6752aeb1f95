"""Installing and removing kernelspecs."""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Sequence
from pathlib import Path

from kernelkit._errors import KernelSpecError, NoSuchKernel
from kernelkit.specs._paths import prefix_kernels_dir, system_kernels_dir, user_kernels_dir
from kernelkit.specs._scan import (
    TEMP_PREFIX,
    check_kernel_json,
    find_kernel_specs,
    is_valid_kernel_name,
)

__all__ = ["install_kernel_spec", "remove_kernel_spec"]


def _remove_tree(path: Path) -> None:
    if path.is_symlink():
        path.unlink()
    else:
        shutil.rmtree(path)


def install_kernel_spec(
    source_dir: str | os.PathLike[str],
    *,
    kernel_name: str | None = None,
    user: bool = False,
    prefix: str | os.PathLike[str] | None = None,
) -> Path:
    """Copy the kernelspec directory ``source_dir`` into a kernels directory.

    The destination is, as in jupyter_client: ``<jupyter data dir>/kernels`` with
    ``user=True``; ``<prefix>/share/jupyter/kernels`` with ``prefix``; otherwise the first
    system directory (``/usr/local/share/jupyter/kernels`` on Linux). The name defaults to
    the source directory's name and is lower-cased. ``source_dir/kernel.json`` is validated
    first. An existing spec of that name is replaced: the copy is made beside it and
    swapped in, so a failed copy leaves the old spec intact. Returns the installed directory.

    Raises:
        KernelSpecError: an invalid name, both ``user`` and ``prefix``, an invalid
            kernel.json (its problems listed), or a copy that failed.
    """
    source = Path(source_dir)
    name = (kernel_name or source.resolve().name).lower()
    if not is_valid_kernel_name(name):
        raise KernelSpecError(
            f"invalid kernel name {name!r}: use only ASCII letters, digits, '-', '.' and '_'"
        )
    if user and prefix is not None:
        raise KernelSpecError("install_kernel_spec: give either user=True or prefix, not both")
    problems = check_kernel_json(source)
    if problems:
        raise KernelSpecError(
            f"cannot install {source} as kernelspec {name!r}:\n  " + "\n  ".join(problems)
        )
    if user:
        kernels_dir = user_kernels_dir()
    elif prefix is not None:
        kernels_dir = prefix_kernels_dir(prefix)
    else:
        kernels_dir = system_kernels_dir()
    destination = kernels_dir / name
    token = os.urandom(4).hex()
    staging = kernels_dir / f"{TEMP_PREFIX}install-{name}-{token}"
    retired = kernels_dir / f"{TEMP_PREFIX}old-{name}-{token}"
    try:
        kernels_dir.mkdir(parents=True, exist_ok=True)
        shutil.copytree(source, staging, symlinks=False)
        if destination.is_symlink() or destination.exists():
            os.replace(destination, retired)
        os.replace(staging, destination)
    except OSError as exc:
        raise KernelSpecError(
            f"cannot install kernelspec {name!r} into {destination}: {exc}"
        ) from exc
    finally:
        for leftover in (staging, retired):
            if leftover.is_symlink() or leftover.exists():
                # Best effort: a leftover .kernelkit-* directory is ignored by scans.
                with contextlib.suppress(OSError):
                    _remove_tree(leftover)
    return destination


def remove_kernel_spec(name: str, *, dirs: Sequence[str | os.PathLike[str]] | None = None) -> Path:
    """Delete the kernelspec directory called ``name`` (the one a lookup finds first).

    A symlinked spec directory is unlinked, not followed. Returns the removed path.

    Raises:
        NoSuchKernel: no spec has that name.
        KernelSpecError: the directory could not be removed.
    """
    specs = find_kernel_specs(dirs=dirs)
    path = specs.get(name.lower())
    if path is None:
        raise NoSuchKernel(name, available=list(specs))
    try:
        _remove_tree(path)
    except OSError as exc:
        raise KernelSpecError(f"cannot remove kernelspec {name!r} at {path}: {exc}") from exc
    return path
