"""A provider whose listing hangs (until the tests release it, 60 s at most)."""

from __future__ import annotations

import threading

from kernelkit.discovery import KernelProvider, KernelType

RELEASE = threading.Event()


class HangingProvider(KernelProvider):
    def find_kernels(self) -> list[KernelType]:
        RELEASE.wait(60)
        return [KernelType(name="late", display_name="Late", language="python")]
