"""The change watcher behind :meth:`KernelFinder.watch` (needs asyncio; listing does not)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

from kernelkit._errors import DiscoveryError
from kernelkit.discovery._results import FindResult, KernelChange
from kernelkit.discovery._types import KernelType

__all__ = [
    "diff_listings",
    "watch_changes",
]


def diff_listings(
    before: dict[str, KernelType], after: dict[str, KernelType]
) -> list[KernelChange]:
    """What changed between two listings (id -> kernel type): removed, changed, added."""
    changes = [KernelChange("removed", k) for i, k in before.items() if i not in after]
    for type_id, kernel in after.items():
        old = before.get(type_id)
        if old is None:
            changes.append(KernelChange("added", kernel))
        elif old != kernel:
            changes.append(KernelChange("changed", kernel))
    return changes


async def watch_changes(
    find: Callable[[], FindResult], *, interval: float
) -> AsyncIterator[KernelChange]:
    """Poll ``find`` (cheap while nothing changed: it only stats) every ``interval`` s."""
    if interval <= 0:
        raise DiscoveryError(f"watch interval must be positive, not {interval!r}")
    current = {k.id: k for k in (await asyncio.to_thread(find)).kernels}
    while True:
        # A bounded stat-compare loop (see KernelFinder.watch for why not inotify).
        await asyncio.sleep(interval)
        listing = {k.id: k for k in (await asyncio.to_thread(find)).kernels}
        for change in diff_listings(current, listing):
            yield change
        current = listing
