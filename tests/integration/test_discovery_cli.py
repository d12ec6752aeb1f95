"""`kernelkit run` / `kernelkit start` with a discovery id: a real venv (``python -m venv``
+ ``uv pip install ipykernel``, made by the test) whose kernel must run with that venv's
interpreter and environment."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from kernelkit.client import KernelClient
from kernelkit.protocol import Message
from tests.cli.run_helpers import KERNELKIT, Running, runtime_files
from tests.envs import realenvs

pytestmark = pytest.mark.integration

SHOW = "import os, sys; print(sys.executable); print(os.environ.get('VIRTUAL_ENV'))"


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("clienvs")
    return realenvs.install_ipykernel(realenvs.make_venv(base, "workon/kkcli"))


@pytest.fixture
def env(venv: Path, tmp_path: Path) -> dict[str, str]:
    """This machine seen through a private HOME: the venv in WORKON_HOME, no other
    kernelspecs, a private runtime directory."""
    runtime = tmp_path / "runtime"
    runtime.mkdir(mode=0o700)
    out = realenvs.env_without_test_locations()
    out.pop("WORKON_HOME", None)
    out.update(
        HOME=str(tmp_path),
        WORKON_HOME=str(venv.parent),
        PYENV_ROOT=str(tmp_path / "no-pyenv"),
        JUPYTER_PATH=str(tmp_path / "no-kernels"),
        JUPYTER_DATA_DIR=str(tmp_path / "no-kernels"),
        JUPYTER_RUNTIME_DIR=str(runtime),
        JUPYTER_PLATFORM_DIRS="1",
        KERNELKIT_CACHE_DIR=str(tmp_path / "cache"),
    )
    return out


def _venv_kernel_id(venv: Path, env: dict[str, str]) -> str:
    listed = subprocess.run(
        [str(KERNELKIT), "list", "--json"],
        env=env, cwd=env["HOME"], capture_output=True, timeout=60, check=True,
    )  # fmt: skip
    doc = json.loads(listed.stdout)
    (found,) = [
        k["id"]
        for k in doc["kernelspecs"].values()
        if k["environment"] and k["environment"]["prefix"] == str(venv)
    ]
    assert found.startswith("env/kkcli-")
    return str(found)


def test_run_with_an_env_id_uses_that_venvs_interpreter(venv: Path, env: dict[str, str]) -> None:
    kernel = _venv_kernel_id(venv, env)
    # launched from inside another venv: activation leaves it, and what it removes must
    # not come back from kernelkit's own environment
    launcher = {**env, "VIRTUAL_ENV": sys.prefix, "VIRTUAL_ENV_PROMPT": "(launcher) "}
    show = SHOW + "; print(os.environ.get('VIRTUAL_ENV_PROMPT'))"
    done = subprocess.run(
        [str(KERNELKIT), "run", "--kernel", kernel, "-c", show],
        env=launcher, cwd=env["HOME"], capture_output=True, text=True, timeout=120,
        check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    executable, virtual_env, prompt = done.stdout.splitlines()
    assert Path(executable).parent == venv / "bin"
    assert Path(executable) != Path(sys.executable)
    assert virtual_env == str(venv)  # activated, not just its interpreter
    assert prompt == "None"  # the launcher's venv prompt was dropped by activation
    assert runtime_files(env) == []


def test_start_with_an_env_id_supervises_that_venvs_kernel(venv: Path, env: dict[str, str]) -> None:
    kernel = _venv_kernel_id(venv, env)
    with Running("start", "--kernel", kernel, env=env) as cli:
        cli.wait_for(".json\n", timeout=60)
        path = Path(cli.out.decode().splitlines()[0])
        cli.wait_for(f"kernel '{kernel}'", stream="err", timeout=5)
        with KernelClient.from_connection_file(path) as kc:
            kc.wait_for_ready(timeout=30)
            outputs: list[Message] = []
            kc.execute(SHOW, outputs=outputs, timeout=30)
            text = "".join(m.content.get("text", "") for m in outputs)
        executable, virtual_env = text.splitlines()
        assert Path(executable).parent == venv / "bin"
        assert virtual_env == str(venv)
        cli.signal(signal.SIGINT)
        assert cli.finish(timeout=20) == 0
    assert runtime_files(env) == []


def test_an_unknown_id_lists_the_environment_kernels(venv: Path, env: dict[str, str]) -> None:
    kernel = _venv_kernel_id(venv, env)
    done = subprocess.run(
        [str(KERNELKIT), "run", "--kernel", "env/nope/python3", "-c", "1"],
        env=env, cwd=env["HOME"], capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 3
    assert "no kernel 'env/nope/python3'" in done.stderr
    assert f"\n  {kernel}\n" in done.stderr
    assert os.listdir(env["JUPYTER_RUNTIME_DIR"]) == []
