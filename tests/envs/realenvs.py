"""Builders for real environments used by the envs, discovery and CLI tests.

Each builder makes its environment once per test session (results are cached per
base directory), so several test modules can share them cheaply:

- ``make_venv``: ``python -m venv``; ``make_virtualenv``: virtualenv; ``make_uv_venv``:
  ``uv venv``; ``install_ipykernel``: ``uv pip install ipykernel`` into one of them.
- ``make_conda_prefix``: a genuine conda prefix built offline with py-rattler from a
  local ``file://`` channel holding ``kk-echo``, a package that ships a non-Python
  kernelspec (its argv starts with a program that is only on PATH after activation),
  that program, and an ``etc/conda/activate.d`` script that sets ``KK_ECHO_ACTIVATED``.
  A venv laid over the prefix supplies an interpreter.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import subprocess
import sys
import tarfile
import threading
import time
from pathlib import Path

VENV_BIN = Path(sys.executable).parent
UV = VENV_BIN / "uv"
VIRTUALENV = VENV_BIN / "virtualenv"

_LOCK = threading.RLock()
_BUILT: dict[tuple[str, str], Path] = {}

ECHO_ACTIVATE = """\
# set by the kk-echo package's activation script
export KK_ECHO_ACTIVATED=yes
export KK_ECHO_HOME="$CONDA_PREFIX/share/kk-echo"
export KK_ECHO_PATH="$CONDA_PREFIX/kk-echo-bin:${KK_ECHO_PATH:-}"
"""

# Starts a real kernel, found through PATH, so it works only in the activated prefix.
ECHO_PROGRAM = """\
#!/bin/sh
exec python -m ipykernel_launcher "$@"
"""

ECHO_SPEC = {
    "argv": ["kk-echo-kernel", "-f", "{connection_file}"],
    "display_name": "KK echo (conda)",
    "language": "python",
    "metadata": {"debugger": False},
}


def _run(cmd: list[str], **kw: object) -> None:
    subprocess.run(cmd, check=True, capture_output=True, timeout=300, **kw)  # type: ignore[call-overload]


def _cached(base: Path, key: str, build: object) -> Path:
    with _LOCK:
        found = _BUILT.get((str(base), key))
        if found is not None:
            return found
        path = build()  # type: ignore[operator]
        _BUILT[(str(base), key)] = path
        return path  # type: ignore[no-any-return]


def make_venv(base: Path, name: str = "stdvenv", *, python: str = sys.executable) -> Path:
    def build() -> Path:
        prefix = base / name
        _run([python, "-m", "venv", "--without-pip", str(prefix)])
        return prefix

    return _cached(base, f"venv:{name}", build)


def make_virtualenv(base: Path, name: str = "virtualenv", *, python: str | None = None) -> Path:
    def build() -> Path:
        prefix = base / name
        cmd = [str(VIRTUALENV), "--no-seed", "--no-periodic-update", str(prefix)]
        if python:
            cmd += ["--python", python]
        _run(cmd)
        return prefix

    return _cached(base, f"virtualenv:{name}", build)


def make_uv_venv(
    base: Path, name: str = "uvproject/.venv", *, python: str = sys.executable
) -> Path:
    def build() -> Path:
        prefix = base / name
        prefix.parent.mkdir(parents=True, exist_ok=True)
        _run([str(UV), "venv", "--quiet", "--python", python, str(prefix)])
        return prefix

    return _cached(base, f"uv:{name}", build)


def install_ipykernel(prefix: Path) -> Path:
    """``uv pip install ipykernel`` into ``prefix`` (offline-cached, fast)."""

    def build() -> Path:
        _run(
            [
                str(UV),
                "pip",
                "install",
                "--quiet",
                "--python",
                str(prefix / "bin" / "python"),
                "ipykernel",
            ]
        )
        return prefix

    return _cached(prefix, "ipykernel", build)


def _tar_member(tar: tarfile.TarFile, name: str, data: bytes, mode: int = 0o644) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = mode
    info.mtime = int(time.time())
    tar.addfile(info, io.BytesIO(data))


def _write_package(channel: Path) -> None:
    subdir = channel / "noarch"
    subdir.mkdir(parents=True, exist_ok=True)
    payload = {
        "share/jupyter/kernels/kk-echo/kernel.json": (json.dumps(ECHO_SPEC).encode(), 0o644),
        "bin/kk-echo-kernel": (ECHO_PROGRAM.encode(), 0o755),
        "etc/conda/activate.d/kk-echo.sh": (ECHO_ACTIVATE.encode(), 0o644),
        "share/kk-echo/README": (b"kk-echo test package\n", 0o644),
    }
    index = {
        "name": "kk-echo",
        "version": "1.0.0",
        "build": "0",
        "build_number": 0,
        "depends": [],
        "noarch": "generic",
        "subdir": "noarch",
        "license": "BSD-3-Clause",
        "timestamp": int(time.time() * 1000),
    }
    paths = {
        "paths_version": 1,
        "paths": [
            {"_path": p, "path_type": "hardlink", "size_in_bytes": len(d)}
            for p, (d, _) in payload.items()
        ],
    }
    with tarfile.open(subdir / "kk-echo-1.0.0-0.tar.bz2", "w:bz2") as tar:
        _tar_member(tar, "info/index.json", json.dumps(index).encode())
        _tar_member(tar, "info/paths.json", json.dumps(paths).encode())
        _tar_member(tar, "info/files", "\n".join(payload).encode() + b"\n")
        for name, (data, mode) in payload.items():
            _tar_member(tar, name, data, mode)


async def _rattler_install(channel: Path, prefix: Path, cache: Path) -> None:
    import rattler
    import rattler.index

    await rattler.index.index_fs(channel)
    records = await rattler.solve(
        sources=[rattler.Channel("file://" + str(channel))],
        specs=["kk-echo"],
        platforms=["linux-64", "noarch"],
        virtual_packages=[],
    )
    await rattler.install(records, target_prefix=prefix, cache_dir=cache, show_progress=False)


def make_conda_prefix(
    base: Path, name: str = "conda-root/envs/kkecho", *, with_python: bool = True
) -> Path:
    """A real conda prefix holding ``kk-echo``; with ``with_python`` a venv laid over it
    (plus ipykernel) supplies an interpreter."""

    def build() -> Path:
        channel = base / "channel"
        if not channel.exists():
            _write_package(channel)
        prefix = base / name
        prefix.parent.mkdir(parents=True, exist_ok=True)
        asyncio.run(_rattler_install(channel, prefix, base / "rattler-cache"))
        if with_python:
            _run([sys.executable, "-m", "venv", "--without-pip", str(prefix)])
            install_ipykernel(prefix)
        return prefix

    return _cached(base, f"conda:{name}", build)


def env_without_test_locations() -> dict[str, str]:
    """os.environ minus the variables that point discovery at this machine's environments."""
    drop = {"CONDA_PREFIX", "CONDA_EXE", "CONDA_ROOT", "MAMBA_ROOT_PREFIX", "VIRTUAL_ENV"}
    return {k: v for k, v in os.environ.items() if k not in drop}
