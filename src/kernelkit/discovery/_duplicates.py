"""Kernel types that are the same kernel reached another way: :func:`resolve_duplicates`."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import replace

from kernelkit.discovery._providers import runs_ipykernel
from kernelkit.discovery._types import ORIGIN_INTERPRETER, ORIGIN_KERNELSPEC, KernelType
from kernelkit.specs import is_bare_python

__all__ = ["resolve_duplicates"]


_Identity = tuple[int, int] | str


class _Identities:
    """What a path is on disk: (device, inode) of what it points to, cached per path.
    One ``stat`` instead of a ``realpath`` walk, and it sees through symlinks and bind
    mounts alike; a path that cannot be stat'ed stands for itself."""

    def __init__(self) -> None:
        self._seen: dict[str, _Identity] = {}

    def __call__(self, path: str | os.PathLike[str]) -> _Identity:
        text = os.fspath(path)
        found = self._seen.get(text)
        if found is None:
            try:
                st = os.stat(text)
                found = (st.st_dev, st.st_ino)
            except OSError:
                found = text
            self._seen[text] = found
        return found


_BARE = "bare python"


def _ipykernel_prefix(
    kernel: KernelType, identity: _Identities, programs: dict[str, _Identity | None]
) -> _Identity | None:
    """The environment whose interpreter this ipykernel spec runs, or None.
    ``programs`` remembers what each argv[0] means (most specs share a few)."""
    spec = kernel.spec
    if spec is None or not spec.argv or not runs_ipykernel(spec):
        return None
    first = spec.argv[0]
    if first not in programs:
        programs[first] = _program_prefix(first, identity)
    found = programs[first]
    if found == _BARE:
        # runs with the interpreter of the environment holding the spec, if any
        env = kernel.environment
        return identity(env.prefix) if env is not None else None
    return found


def _program_prefix(first: str, identity: _Identities) -> _Identity | None:
    if is_bare_python(first):
        return _BARE
    bin_dir = os.path.dirname(first)
    if not os.path.isabs(first) or os.path.basename(bin_dir) not in ("bin", "Scripts"):
        return None
    return identity(os.path.dirname(bin_dir))


def _contents(kernel: KernelType) -> tuple[str, ...] | None:
    """What a kernelspec's kernel.json says that matters here (None: no spec to compare)."""
    spec = kernel.spec
    if spec is None or kernel.origin != ORIGIN_KERNELSPEC:
        return None
    return (spec.display_name, spec.language, *spec.argv)


def resolve_duplicates(kernels: Sequence[KernelType]) -> list[KernelType]:
    """Drop kernel types that are the same kernel reached another way.

    The rule (``kernels`` is in provider order: spec, env, then others by name):

    1. Two kernelspecs whose directories are the same directory on disk (same device and
       inode: reached through a symlink, a bind mount or two search paths) are one
       kernel; the first listed stays.
    2. An environment's interpreter offered as a kernel (origin ``interpreter``) is
       dropped when a listed kernelspec already starts ipykernel with that
       environment's interpreter (``<prefix>/bin/python...``, or a bare ``python`` in a
       spec that lives in that environment).

    The kernel that stays records the dropped ids in ``aliases``.

    One directory reached twice holds one kernel.json, so only kernelspecs with the same
    contents (argv, display name, language) can be one: only those are ``stat``-ed.
    """
    identity = _Identities()
    programs: dict[str, _Identity | None] = {}
    contents: dict[object, int] = {}
    for kernel in kernels:
        key = _contents(kernel)
        contents[key] = contents.get(key, 0) + 1
    kept: list[KernelType] = []
    by_dir: dict[object, int] = {}
    by_python: dict[_Identity, int] = {}
    aliases: dict[int, list[str]] = {}
    interpreters: list[tuple[KernelType, _Identity]] = []
    for kernel in kernels:
        if kernel.origin == ORIGIN_INTERPRETER and kernel.environment is not None:
            interpreters.append((kernel, identity(kernel.environment.prefix)))
            continue
        if kernel.origin == ORIGIN_KERNELSPEC and kernel.source is not None:
            key = _contents(kernel)
            same = identity(kernel.source) if key is None or contents[key] > 1 else key
            if same in by_dir:
                aliases.setdefault(by_dir[same], []).append(kernel.id)
                continue
            by_dir[same] = len(kept)
            prefix = _ipykernel_prefix(kernel, identity, programs)
            if prefix is not None:
                by_python.setdefault(prefix, len(kept))
        kept.append(kernel)
    for kernel, prefix in interpreters:
        index = by_python.get(prefix)
        if index is not None:
            aliases.setdefault(index, []).append(kernel.id)
        else:
            kept.append(kernel)
    for index, extra in aliases.items():
        kept[index] = replace(kept[index], aliases=(*kept[index].aliases, *extra))
    return kept
