"""``kernelkit run --sandbox``: the limits reach the sandbox, and the reason a kernel
was stopped reaches the terminal."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from kernelkit.cli._sandbox import sandbox_option
from kernelkit.cli._status import EXIT_KERNEL_DIED, EXIT_KERNEL_FAILED, EXIT_OK

from .conftest import needs_bwrap


def kernelkit_run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "kernelkit", "run", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
        env={**os.environ, "JUPYTER_RUNTIME_DIR": str(cwd)},
        check=False,
    )


def test_options_to_the_sandbox_config(tmp_path: Path) -> None:
    assert sandbox_option(sandbox=False, network=False) is None
    assert sandbox_option(sandbox=True, network=False) == {"network": False}
    assert sandbox_option(sandbox=False, network=False, memory="1G", ro=[tmp_path]) == {
        "memory": "1G",
        "ro_paths": [str(tmp_path)],
        "network": False,
    }


@pytest.mark.integration
@needs_bwrap
def test_run_sandboxed_reports_the_limit(tmp_path: Path) -> None:
    ok = kernelkit_run("--sandbox", "-c", "import os; print(os.getuid() != 0)", cwd=tmp_path)
    assert ok.returncode == EXIT_OK, ok.stderr
    assert ok.stdout.strip() == ("True" if os.geteuid() == 0 else "False")
    died = kernelkit_run("--memory", "200M", "-c", "b = b'x' * (400 * 2**20)", cwd=tmp_path)
    assert died.returncode == EXIT_KERNEL_DIED, died.stderr
    assert "memory limit 200 MiB reached" in died.stderr
    bad = kernelkit_run("--sandbox", "--memory", "lots", "-c", "1", cwd=tmp_path)
    assert bad.returncode == EXIT_KERNEL_FAILED
    assert "sandbox memory: expected a size such as '512M'" in bad.stderr
