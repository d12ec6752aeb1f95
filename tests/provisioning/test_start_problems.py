"""Starts that cannot work are said early (issue 14.4, 14.10): a kernel that never binds
its ports is reported within seconds, with its output; a spec whose argv has no
``{connection_file}`` fails at once and leaves no file."""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path

import pytest

from kernelkit import KernelSpecError, KernelStartError
from kernelkit.provisioning import LocalProvisioner
from kernelkit.specs import KernelSpec
from tests.provisioning.conftest import MakeProvisioner
from tests.provisioning.helpers import files_in, launch

_SLEEPER = "import time; print('sleeper is up', flush=True); time.sleep(120)"


async def test_a_kernel_that_never_binds_its_ports_is_reported_early(
    make_provisioner: MakeProvisioner, runtime_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    spec = KernelSpec(
        name="sleeper",
        resource_dir=Path(__file__).parent,
        language="python",
        argv=(sys.executable, "-c", _SLEEPER, "{connection_file}"),
        display_name="Sleeper",
        metadata={"kernelkit": {"ports": "write-back"}},
    )
    p: LocalProvisioner = make_provisioner(spec, startup_timeout=5.0)
    started, wall = time.monotonic(), time.time()
    with (
        caplog.at_level(logging.WARNING, logger="kernelkit.provisioning"),
        pytest.raises(KernelStartError) as caught,
    ):
        await launch(p)
    took = time.monotonic() - started
    [record] = [r for r in caplog.records if "has not bound its ports" in r.getMessage()]
    notice = record.getMessage()
    assert "is running but has not bound its ports after 3 s" in notice
    assert "waiting up to 5 s" in notice
    assert "sleeper is up" in notice  # its output so far
    assert record.created - wall < 5.0  # said before the start timeout ran out
    message = str(caught.value)
    assert "the kernel process is running but has not bound its ports" in message
    assert "sleeper is up" in message
    assert took < 30.0  # the start timeout, not more
    assert files_in(runtime_dir) == []


async def test_a_spec_without_connection_file_fails_at_once_and_leaves_nothing(
    make_provisioner: MakeProvisioner, runtime_dir: Path
) -> None:
    spec = KernelSpec(
        name="nocf",
        resource_dir=Path(__file__).parent,
        language="python",
        argv=(sys.executable, "-m", "kernelkit.testing"),
        display_name="No connection file",
    )
    p = make_provisioner(spec)
    started = time.monotonic()
    with pytest.raises(KernelSpecError, match=r"argv has no \{connection_file\}") as caught:
        await launch(p)
    assert time.monotonic() - started < 5.0
    assert "kernel 'nocf'" in str(caught.value)
    assert not p.has_process
    assert files_in(runtime_dir) == []
