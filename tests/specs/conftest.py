"""Helpers for kernelspec tests: write spec directories and fake environment prefixes."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

MakeSpec = Callable[..., Path]


def good_spec(**changes: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python 3",
        "language": "python",
    }
    spec.update(changes)
    argv = spec.get("argv")
    if (
        isinstance(argv, list)
        and argv
        and all(isinstance(a, str) for a in argv)
        and not any("{connection_file}" in a for a in argv)
    ):
        # A good spec's kernel learns its connection file (issue 14.10 flags one that
        # cannot): tests that vary argv[0] keep that part good.
        spec["argv"] = [*argv, "{connection_file}"]
    return spec


def write_spec(kernels_dir: Path, name: str, content: dict[str, Any] | str | bytes) -> Path:
    """Write ``kernels_dir/name/kernel.json`` and return the spec directory."""
    spec_dir = kernels_dir / name
    spec_dir.mkdir(parents=True, exist_ok=True)
    if isinstance(content, dict):
        content = json.dumps(content)
    data = content.encode() if isinstance(content, str) else content
    (spec_dir / "kernel.json").write_bytes(data)
    return spec_dir


def make_prefix(root: Path, *pythons: str) -> Path:
    """A fake environment prefix whose bin/ holds executable ``pythons``."""
    (root / "bin").mkdir(parents=True, exist_ok=True)
    for name in pythons:
        exe = root / "bin" / name
        exe.write_text("#!/bin/sh\n")
        exe.chmod(0o755)
    return root


@pytest.fixture
def jupyter_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    """Isolate Jupyter's per-user and JUPYTER_PATH directories in tmp_path."""
    dirs = {
        "path": tmp_path / "jpath",
        "data": tmp_path / "jdata",
        "ipython": tmp_path / "ipython",
    }
    monkeypatch.setenv("JUPYTER_PATH", str(dirs["path"]))
    monkeypatch.setenv("JUPYTER_DATA_DIR", str(dirs["data"]))
    monkeypatch.setenv("IPYTHONDIR", str(dirs["ipython"]))
    return dirs


@pytest.fixture(autouse=True)
def private_cache_dir(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """kernelkit's caches (the kernelspec listing cache among them) in a directory of
    this test's own, never the user's."""
    cache = tmp_path_factory.mktemp("kernelkit-cache")
    monkeypatch.setenv("KERNELKIT_CACHE_DIR", str(cache))
    return cache
