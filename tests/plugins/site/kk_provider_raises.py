"""A provider whose listing fails."""

from __future__ import annotations

from kernelkit.discovery import KernelProvider, KernelType


class RaisingProvider(KernelProvider):
    def find_kernels(self) -> list[KernelType]:
        raise ConnectionRefusedError("cannot reach the kernel registry at registry.invalid")
