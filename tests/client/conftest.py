"""Fixtures of the direct-lane tests (test_direct_io*.py): a fake kernel process with its
manager and a ready blocking client, its own runtime directory, and a record of which
requests went through the lane. Modules with fixtures of the same names keep their own."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kernelkit.client import KernelClient
from kernelkit.client import _driver as driver_module
from kernelkit.manager import KernelManager
from kernelkit.protocol import Message
from kernelkit.testing import fake_kernel_spec


@pytest.fixture
def runtime_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    d = tmp_path / "runtime"
    d.mkdir(mode=0o700)
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(d))
    return d


@pytest.fixture
def lane_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The msg_type of every request that went through the direct lane (with a "!"
    when it raised there)."""
    calls: list[str] = []
    real = driver_module.call_direct

    def counting(*args: Any, **kw: Any) -> Message | None:
        try:
            reply = real(*args, **kw)
        except BaseException:
            calls.append(args[3].msg_type + "!")
            raise
        if reply is not None:
            calls.append(args[3].msg_type)
        return reply

    monkeypatch.setattr(driver_module, "call_direct", counting)
    return calls


@pytest.fixture
def km(runtime_dir: Path) -> Iterator[KernelManager]:
    with KernelManager(kernel_spec=fake_kernel_spec(), autorestart=False) as manager:
        yield manager


@pytest.fixture
def kc(km: KernelManager) -> Iterator[KernelClient]:
    with km.client() as client:
        client.wait_for_ready(timeout=20)
        yield client
