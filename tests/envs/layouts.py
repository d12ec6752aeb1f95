"""Environment layouts written straight to disk (fast; no interpreter is run).

A venv is ``pyvenv.cfg`` plus ``bin/python`` linking to a base interpreter, so
``write_venv`` makes a working one (its python is this test run's interpreter).
A conda-like prefix has ``conda-meta/<name>-<version>-<build>.json`` records.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

PY = f"{sys.version_info[0]}.{sys.version_info[1]}"
PY_FULL = ".".join(map(str, sys.version_info[:3]))


def write_spec(kernels_dir: Path, name: str, spec: dict[str, object] | str) -> Path:
    """``kernels_dir/name/kernel.json`` (a dict is dumped; a str is written as is)."""
    directory = kernels_dir / name
    directory.mkdir(parents=True, exist_ok=True)
    text = spec if isinstance(spec, str) else json.dumps(spec)
    (directory / "kernel.json").write_text(text)
    return directory


def python_spec(display_name: str = "Python 3 (ipykernel)") -> dict[str, object]:
    return {
        "argv": ["python", "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": display_name,
        "language": "python",
        "metadata": {"debugger": True},
    }


def _site(prefix: Path) -> Path:
    site = prefix / "lib" / f"python{PY}" / "site-packages"
    site.mkdir(parents=True, exist_ok=True)
    return site


def _interpreter(prefix: Path, target: str = sys.executable) -> None:
    bin_dir = prefix / "bin"
    bin_dir.mkdir(parents=True, exist_ok=True)
    for name in ("python", "python3", f"python{PY}"):
        link = bin_dir / name
        if not os.path.lexists(link):
            link.symlink_to(target)


def write_venv(
    prefix: Path,
    *,
    creator: str = "venv",
    ipykernel: bool = False,
    spec: bool = False,
    interpreter: str | None = sys.executable,
) -> Path:
    """A venv made by ``creator`` (venv, uv or virtualenv, as its pyvenv.cfg says)."""
    prefix.mkdir(parents=True, exist_ok=True)
    lines = [f"home = {Path(sys.executable).parent}", "include-system-site-packages = false"]
    if creator == "uv":
        lines += ["implementation = CPython", "uv = 0.13.9", f"version_info = {PY_FULL}"]
    elif creator == "virtualenv":
        lines += ["virtualenv = 20.0.0", f"version_info = {PY_FULL}.final.0"]
    else:
        lines += [f"version = {PY_FULL}"]
    (prefix / "pyvenv.cfg").write_text("\n".join(lines) + "\n")
    site = _site(prefix)
    if interpreter is not None:
        _interpreter(prefix, interpreter)
    if ipykernel:
        (site / "ipykernel-7.4.0.dist-info").mkdir(exist_ok=True)
    if spec:
        write_spec(prefix / "share" / "jupyter" / "kernels", "python3", python_spec())
    return prefix


def write_conda(
    prefix: Path,
    *,
    python: bool = True,
    ipykernel: bool = False,
    kernel: str | None = None,
    activate: dict[str, str] | None = None,
) -> Path:
    """A conda-like prefix; ``kernel`` adds a non-Python kernelspec whose program lives in
    the prefix's bin (so it is on PATH only once activated); ``activate`` adds
    ``etc/conda/activate.d`` scripts (file name -> body)."""
    meta = prefix / "conda-meta"
    meta.mkdir(parents=True, exist_ok=True)
    (meta / "history").write_text("")
    if python:
        (meta / f"python-{PY_FULL}-h0_0.json").write_text("{}")
        _site(prefix)
        _interpreter(prefix)
    if ipykernel:
        (meta / "ipykernel-7.4.0-pyh0_0.json").write_text("{}")
    if kernel:
        program = prefix / "bin" / f"{kernel}-kernel"
        program.parent.mkdir(parents=True, exist_ok=True)
        program.write_text("#!/bin/sh\nexit 0\n")
        program.chmod(0o755)
        write_spec(
            prefix / "share" / "jupyter" / "kernels",
            kernel,
            {
                "argv": [program.name, "{connection_file}"],
                "display_name": f"{kernel} kernel",
                "language": kernel,
            },
        )
    for name, body in (activate or {}).items():
        scripts = prefix / "etc" / "conda" / "activate.d"
        scripts.mkdir(parents=True, exist_ok=True)
        (scripts / name).write_text(body)
    return prefix


def write_many(root: Path, count: int = 50) -> tuple[list[Path], list[Path]]:
    """``count`` environments, half venvs in ``root/venvs``, half conda-like prefixes in
    ``root/conda/envs``; each has one kernelspec. Returns (venvs, conda prefixes)."""
    venvs = [
        write_venv(root / "venvs" / f"venv{i:03d}", ipykernel=True, spec=True)
        for i in range(count // 2)
    ]
    condas = [
        write_conda(root / "conda" / "envs" / f"conda{i:03d}", ipykernel=True, kernel="kkr")
        for i in range(count - count // 2)
    ]
    return venvs, condas


def age_tree(path: Path, seconds: float = 60.0) -> None:
    """Set every mtime under ``path`` ``seconds`` into the past, so listings that read
    it may be cached at once (a just-written path is "racy" and never trusted)."""
    old = time.time() - seconds
    for root, dirs, files in os.walk(path):
        for name in dirs + files:
            os.utime(os.path.join(root, name), (old, old), follow_symlinks=False)
    os.utime(path, (old, old))
