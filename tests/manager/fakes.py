"""Kernelspecs for kernelkit.testing's fake kernel (used by manager, CLI and reliability tests)."""

from __future__ import annotations

from typing import Any

from kernelkit.specs import KernelSpec
from kernelkit.testing import fake_kernel_spec


def fake_spec(*options: str, name: str = "fake", **fields: Any) -> KernelSpec:
    """A kernelspec running ``python -m kernelkit.testing`` with ``options``."""
    return fake_kernel_spec(*options, name=name, **fields)
