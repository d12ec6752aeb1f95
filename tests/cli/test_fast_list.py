"""``kernelkit list`` without options skips the typer app (kernelkit.cli.main): same
defaults, same output, same exit status as the command the app declares."""

from __future__ import annotations

import inspect
import json
import os
import subprocess
import sys
from pathlib import Path

from kernelkit.cli import LIST_TIME_LIMIT
from kernelkit.cli._app import list_kernels

_VIA_MAIN = "import sys; sys.argv = ['kernelkit', 'list']; from kernelkit.cli import main; main()"
_VIA_APP = "import sys; sys.argv = ['kernelkit', 'list']; from kernelkit.cli._app import app; app()"


def test_fast_path_uses_the_commands_defaults() -> None:
    params = inspect.signature(list_kernels).parameters
    assert params["time_limit"].default == LIST_TIME_LIMIT
    assert params["as_json"].default is False
    assert params["broken"].default is False
    assert params["server"].default is None


def _machine(tmp_path: Path) -> dict[str, str]:
    kernels = tmp_path / "jupyter" / "kernels"
    for name, spec in {
        "shell": {"argv": ["/bin/sh", "{connection_file}"], "display_name": "Shell"},
        "lost": {"argv": ["/nowhere/python", "{connection_file}"], "display_name": "Lost"},
    }.items():
        (kernels / name).mkdir(parents=True)
        (kernels / name / "kernel.json").write_text(json.dumps({**spec, "language": "sh"}))
    (kernels / "garbled").mkdir()
    (kernels / "garbled" / "kernel.json").write_text("{not json")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CONDA", "VIRTUAL_ENV"))}
    env.update(
        HOME=str(tmp_path / "home"),
        JUPYTER_PATH=str(kernels.parent),
        JUPYTER_DATA_DIR=str(tmp_path / "data"),
        WORKON_HOME=str(tmp_path / "workon"),
        PYENV_ROOT=str(tmp_path / "no-pyenv"),
        KERNELKIT_CACHE_DIR=str(tmp_path / "cache"),
    )
    return env


def test_fast_path_prints_what_the_app_prints(tmp_path: Path) -> None:
    env = _machine(tmp_path)
    runs = [
        subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            env=env,
            cwd=tmp_path,
            timeout=120,
            check=False,
        )
        for code in (_VIA_MAIN, _VIA_APP)
    ]
    fast, app = runs
    assert "garbled" in fast.stdout
    assert "lost" in fast.stdout
    assert (fast.stdout, fast.stderr, fast.returncode) == (app.stdout, app.stderr, app.returncode)


def test_fast_path_does_not_build_the_app(tmp_path: Path) -> None:
    code = (
        "import sys\n"
        f"try:\n    {_VIA_MAIN.replace('; ', chr(10) + '    ')}\n"
        "except SystemExit:\n    pass\n"
        "print(' '.join(m for m in ('typer', 'click', 'kernelkit.cli._app') if m in sys.modules),"
        " file=sys.stderr)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=_machine(tmp_path),
        cwd=tmp_path,
        timeout=120,
        check=True,
    )
    assert out.stderr.strip() == ""
