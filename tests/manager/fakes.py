"""Kernelspecs for tests/manager/fake_kernel.py (used by manager, CLI and reliability tests)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from kernelkit.specs import KernelSpec

FAKE_KERNEL = Path(__file__).with_name("fake_kernel.py")


def fake_spec(*options: str, name: str = "fake", **fields: Any) -> KernelSpec:
    """A kernelspec running tests/manager/fake_kernel.py with ``options``."""
    return KernelSpec(
        name=name,
        resource_dir=FAKE_KERNEL.parent,
        argv=(sys.executable, str(FAKE_KERNEL), "{connection_file}", *options),
        display_name=f"Fake ({' '.join(options)})",
        language="fake",
        metadata={"kernelkit": {"ports": "write-back"}},
        **fields,
    )
