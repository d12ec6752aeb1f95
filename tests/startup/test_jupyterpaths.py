"""kernelkit._jupyterpaths answers as jupyter_core.paths does, under every environment
variable that changes the answer (each case in a fresh process: jupyter_core reads some
of them at import, and kernelkit defers to it once it is imported)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

_CODE = """
import json, sys
from kernelkit import _jupyterpaths as mine
ours = [mine.jupyter_path(), mine.jupyter_path("kernels", "x"), mine.jupyter_data_dir(),
        mine.jupyter_runtime_dir(), mine.jupyter_config_dir()]
fast = "jupyter_core.paths" not in sys.modules
import jupyter_core.paths as jc
theirs = [jc.jupyter_path(), jc.jupyter_path("kernels", "x"), jc.jupyter_data_dir(),
          jc.jupyter_runtime_dir(), jc.jupyter_config_dir()]
print(json.dumps({"ours": ours, "theirs": theirs, "fast": fast}))
"""

_VARS = (
    "JUPYTER_PATH",
    "JUPYTER_DATA_DIR",
    "JUPYTER_RUNTIME_DIR",
    "JUPYTER_PREFER_ENV_PATH",
    "JUPYTER_PLATFORM_DIRS",
    "JUPYTER_CONFIG_DIR",
    "XDG_DATA_HOME",
    "PYTHONNOUSERSITE",
    "PYTHONUSERBASE",
    "CONDA_PREFIX",
    "CONDA_DEFAULT_ENV",
)


def _answers(env: dict[str, str]) -> dict[str, object]:
    base = {k: v for k, v in os.environ.items() if k not in _VARS}
    out = subprocess.run(
        [sys.executable, "-c", _CODE],
        env={**base, **env},
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    answers: dict[str, object] = json.loads(out.stdout)
    return answers


def _cases(tmp: Path) -> dict[str, dict[str, str]]:
    home = tmp / "real-home"
    home.mkdir()
    (tmp / "home-link").symlink_to(home)
    return {
        "default": {},
        "jupyter_path": {"JUPYTER_PATH": os.pathsep.join([f"{tmp}/a/", f"{tmp}/b", ""])},
        "data_dir": {"JUPYTER_DATA_DIR": str(tmp / "data")},
        "runtime_dir": {"JUPYTER_RUNTIME_DIR": str(tmp / "rt")},
        "config_dir": {"JUPYTER_CONFIG_DIR": str(tmp / "cfg")},
        "xdg": {"XDG_DATA_HOME": str(tmp / "xdg")},
        "symlinked_home": {"HOME": str(tmp / "home-link")},
        "prefer_env": {"JUPYTER_PREFER_ENV_PATH": "1"},
        "prefer_user": {"JUPYTER_PREFER_ENV_PATH": "no"},
        "no_user_site": {"PYTHONNOUSERSITE": "1"},
        "user_base": {"PYTHONUSERBASE": f"{tmp}/ub//"},
        "conda": {"CONDA_PREFIX": sys.prefix, "CONDA_DEFAULT_ENV": "work"},
        "conda_base": {"CONDA_PREFIX": sys.prefix, "CONDA_DEFAULT_ENV": "base"},
        "platform_dirs": {"JUPYTER_PLATFORM_DIRS": "1"},
    }


@pytest.mark.skipif(
    os.name != "posix", reason="the computed answers are POSIX's; others ask jupyter_core"
)
def test_same_directories_as_jupyter_core(tmp_path: Path) -> None:
    for name, env in _cases(tmp_path).items():
        answers = _answers(env)
        assert answers["ours"] == answers["theirs"], name
        # Computed without jupyter_core, except where platformdirs is asked for.
        assert answers["fast"] is (name != "platform_dirs"), name
