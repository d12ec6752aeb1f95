"""The owner's half of the nanny's early start: a nanny on this machine gets its kernel's
launch prepared (command, environment, key, the connection file's path and text), so it
starts the kernel the moment it has read its request, before its own imports
(:mod:`kernelkit.nanny._first`). Nothing is written here: a nanny that never reads its
request (its owner killed first) leaves no file."""

from __future__ import annotations

from typing import Any

from kernelkit.nanny._early import early_launch, resolve
from kernelkit.nanny._wire import NannyConfig

__all__ = ["prepare_early"]


def prepare_early(config: NannyConfig) -> dict[str, Any] | None:
    """The request's ``"early"`` block for a kernelspec given whole (None for another
    kind of kernel, or a named one: the nanny finds and starts those itself)."""
    if config.spec is None:
        return None
    prepared = early_launch(config, resolve(config))
    return prepared.to_dict(config.kernel_id) if prepared is not None else None
