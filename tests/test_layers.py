"""The import-layer contract (.importlinter) must pass, and must be able to fail."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def _lint(src: Path, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(src)}
    return subprocess.run(
        [str(LINT_IMPORTS), "--config", str(ROOT / ".importlinter"), "--no-cache"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture
def src_copy(tmp_path: Path) -> Path:
    dest = tmp_path / "src"
    shutil.copytree(ROOT / "src", dest, ignore=shutil.ignore_patterns("__pycache__"))
    return dest


def test_the_tree_keeps_every_contract(src_copy: Path, tmp_path: Path) -> None:
    result = _lint(src_copy, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("module", "line", "contract"),
    [
        ("protocol/_planted.py", "import kernelkit.client\n", "Layers"),
        ("specs/_planted.py", "import kernelkit.envs\n", "Layers"),
        ("protocol/_planted.py", "import asyncio\n", "sans-IO"),
        ("client/_planted.py", "import kernelkit.provisioning\n", "never touch"),
        ("client/_planted.py", "import zmq\n", "transport-agnostic"),
    ],
)
def test_a_planted_violation_is_caught(
    src_copy: Path, tmp_path: Path, module: str, line: str, contract: str
) -> None:
    (src_copy / "kernelkit" / module).write_text(line)
    result = _lint(src_copy, tmp_path)
    assert result.returncode != 0
    broken = [ln for ln in result.stdout.splitlines() if ln.endswith("BROKEN")]
    assert any(contract in ln for ln in broken), result.stdout
