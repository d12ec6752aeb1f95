"""Helpers for provisioning tests: kernelspecs that run tests/provisioning/fake_kernel.py."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

from kernelkit.provisioning import LocalProvisioner
from kernelkit.specs import KernelSpec

FAKE_KERNEL = Path(__file__).with_name("fake_kernel.py")


def fake_spec(
    *actions: str,
    ports: str | None = "write-back",
    name: str = "fake",
    resource_dir: Path | None = None,
    **fields: Any,
) -> KernelSpec:
    """A kernelspec running the fake kernel with ``actions``; ``ports`` sets the port mode."""
    metadata = dict(fields.pop("metadata", {}))
    if ports is not None:
        metadata["kernelkit"] = {"ports": ports}
    return KernelSpec(
        name=name,
        resource_dir=resource_dir or FAKE_KERNEL.parent,
        argv=(sys.executable, str(FAKE_KERNEL), "{connection_file}", *actions),
        display_name=f"Fake ({' '.join(actions)})",
        language="python",
        metadata=metadata,
        **fields,
    )


def fd_count() -> int:
    return len(os.listdir("/proc/self/fd"))


async def launch(p: LocalProvisioner, **kw: Any) -> Any:
    params = await p.pre_launch(**kw)
    info = await p.launch_kernel(params.cmd, env=params.env, cwd=params.cwd)
    await p.post_launch()
    return info


def files_in(directory: Path) -> list[Path]:
    """What a directory holds (sync, so async tests do not do blocking path calls)."""
    return sorted(directory.iterdir())


def read_json(path: Path) -> Any:
    return json.loads(path.read_bytes())
