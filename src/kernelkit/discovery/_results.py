"""What a listing returns (:class:`FindResult`) and what a watcher sees change
(:class:`KernelChange`)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Literal

from kernelkit._errors import NoSuchKernel
from kernelkit.discovery._types import DiscoveryProblem, KernelType

__all__ = [
    "FindResult",
    "KernelChange",
]


@dataclass(frozen=True, slots=True)
class FindResult:
    """One listing: kernel types (broken ones included, each with ``problems``) in
    provider order, and providers that failed as a whole."""

    kernels: tuple[KernelType, ...]
    problems: tuple[DiscoveryProblem, ...] = ()
    _by_id: Mapping[str, KernelType] = field(default_factory=dict, repr=False, compare=False)

    def __iter__(self) -> Iterator[KernelType]:
        return iter(self.kernels)

    def __len__(self) -> int:
        return len(self.kernels)

    @property
    def healthy(self) -> tuple[KernelType, ...]:
        """The kernel types with no known problem."""
        return tuple(k for k in self.kernels if not k.problems)

    @property
    def broken(self) -> tuple[KernelType, ...]:
        """The kernel types with problems."""
        return tuple(k for k in self.kernels if k.problems)

    def get(self, type_id: str) -> KernelType:
        """The kernel type with this id or alias; a bare name (``python3``) matches
        ``spec/<name>`` first, then the only type with that name.

        Raises:
            NoSuchKernel: nothing matches (the error lists the ids).
        """
        found = self._by_id.get(type_id)
        if found is None and "/" not in type_id:
            found = self._by_id.get(f"spec/{type_id}")
            if found is None:
                named = [k for k in self.kernels if k.name.rsplit("/", 1)[-1] == type_id]
                found = named[0] if len(named) == 1 else None
        if found is None:
            raise NoSuchKernel(type_id, available=[k.id for k in self.kernels])
        return found


@dataclass(frozen=True, slots=True)
class KernelChange:
    """A change seen by :meth:`KernelFinder.watch`: a kernel type ``added``,
    ``changed`` (anything about it, health included) or ``removed``."""

    kind: Literal["added", "changed", "removed"]
    kernel: KernelType
