"""Sandboxed kernels: the kernelspecs of this environment's kernels, asking for the
``sandbox`` provisioner with a given config."""

from __future__ import annotations

import dataclasses
import os
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from kernelkit.specs import KernelSpec, load_kernel_spec

KERNELS = Path(sys.prefix) / "share" / "jupyter" / "kernels"

needs_bwrap = pytest.mark.skipif(
    shutil.which("bwrap") is None or not sys.platform.startswith("linux"),
    reason="bubblewrap (Debian: bubblewrap) is not installed; ./dev setup installs it",
)

Sandboxed = Callable[..., KernelSpec]


@pytest.fixture
def runtime_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    d = tmp_path / "runtime"
    d.mkdir(mode=0o700)
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(d))
    return d


@pytest.fixture
def sandboxed(runtime_dir: Path) -> Sandboxed:
    """``sandboxed(name="python3", **config)``: that kernelspec, sandboxed."""

    def make(name: str = "python3", **config: Any) -> KernelSpec:
        spec = load_kernel_spec(KERNELS / name)
        assert spec.healthy, spec.problems
        # The suite's survivor check finds processes by this variable: pass it in.
        env = dict(config.pop("env", {}))
        env["KERNELKIT_TEST_SESSION"] = os.environ["KERNELKIT_TEST_SESSION"]
        metadata = {
            **spec.metadata,
            "kernel_provisioner": {
                "provisioner_name": "sandbox",
                "config": {"env": env, **config},
            },
        }
        return dataclasses.replace(spec, metadata=metadata)

    return make


def alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie does not count)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"
