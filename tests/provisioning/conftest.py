"""Fixtures for provisioning tests."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from kernelkit.provisioning import LocalProvisioner
from kernelkit.specs import KernelSpec


@pytest.fixture
def runtime_dir(tmp_path: Path) -> Path:
    d = tmp_path / "runtime"
    d.mkdir(mode=0o700)
    return d


MakeProvisioner = Callable[..., LocalProvisioner]


@pytest.fixture
async def make_provisioner(runtime_dir: Path) -> AsyncIterator[MakeProvisioner]:
    """Build LocalProvisioners in the test's runtime dir; every one is cleaned up after."""
    made: list[LocalProvisioner] = []

    def make(spec: KernelSpec, **options: Any) -> LocalProvisioner:
        options.setdefault("runtime_dir", runtime_dir)
        options.setdefault("startup_timeout", 10.0)
        p = LocalProvisioner(kernel_id=f"k{len(made)}", kernel_spec=spec, **options)
        made.append(p)
        return p

    yield make
    for p in made:
        await p.cleanup()
