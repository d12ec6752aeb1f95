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


_LAUNCH_AND_LEAVE = """
import asyncio, json, sys
sys.path.insert(0, {root!r})
from kernelkit.provisioning import LocalProvisioner
from tests.provisioning.helpers import fake_spec

async def main():
    spec = fake_spec("echo-env:JPY_PARENT_PID", "writeback")
    p = LocalProvisioner(kernel_id="detached", kernel_spec=spec, runtime_dir={runtime_dir!r},
                         independent=True, log_file={log_file!r})
    params = await p.pre_launch()
    await p.launch_kernel(params.cmd, env=params.env)
    p._capture.drain()  # what it printed so far reaches the log before we leave
    print(json.dumps(await p.get_provisioner_info()), flush=True)

asyncio.run(main())
"""


def launch_in_another_process(runtime_dir: Path, log_file: Path) -> dict[str, Any]:
    """Launch a fake kernel from a separate Python process that then exits without
    cleaning up (as a crashed server would), and return its provisioner info."""
    import subprocess

    root = str(Path(__file__).resolve().parents[2])
    code = _LAUNCH_AND_LEAVE.format(root=root, runtime_dir=str(runtime_dir), log_file=str(log_file))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, check=True, timeout=60)
    info: dict[str, Any] = json.loads(out.stdout)
    return info
