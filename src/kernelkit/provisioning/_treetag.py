"""The launch's tag and the child subreaper (see :mod:`kernelkit.provisioning._reaper`),
apart from the rest: the nanny needs them before it starts its kernel, and imports
nothing else first (no typing, no dataclasses)."""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ["TREE_ENV", "new_tree_tag", "set_child_subreaper", "tag_environ"]

#: The environment variable that marks every process of one kernel launch.
TREE_ENV = "KERNELKIT_TREE"

_PR_SET_CHILD_SUBREAPER = 36


def new_tree_tag(kernel_id: str) -> str:
    """A tag for one launch of kernel ``kernel_id`` (unique even across restarts)."""
    return f"{kernel_id}.{os.urandom(6).hex()}"


def tag_environ(env: Mapping[str, str], tag: str) -> dict[str, str]:
    """``env`` with the launch's tag added (what the kernel process is started with)."""
    tagged = dict(env)
    tagged[TREE_ENV] = tag
    return tagged


def set_child_subreaper() -> bool:
    """Make this process adopt the orphans below it (Linux ``PR_SET_CHILD_SUBREAPER``).

    Returns False where the system has no such thing. Only for a process whose every
    child is its own business (the nanny): it must then reap them, see :func:`reap_orphans`.
    """
    if not sys.platform.startswith("linux"):
        return False
    import ctypes  # here: `kernelkit run` starts its kernel early without it

    # The running program's own symbols include libc's (find_library would run ldconfig).
    libc = ctypes.CDLL(None, use_errno=True)
    return int(libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)) == 0
