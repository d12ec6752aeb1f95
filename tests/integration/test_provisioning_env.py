"""A kernel launched through an activated environment gets that environment as it is:
nothing from the launcher's own environment comes back (a real ``python -m venv``)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from kernelkit.discovery import KernelType, LaunchOptions
from kernelkit.discovery._launch import launch_kernel_type
from kernelkit.envs import Activator, Environment, inspect_environment
from kernelkit.provisioning import KernelProvisionerBase, LocalProvisioner
from tests.provisioning.helpers import fake_spec

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Environment:
    prefix = tmp_path_factory.mktemp("envs") / "activated"
    subprocess.run(
        [sys.executable, "-m", "venv", "--without-pip", str(prefix)],
        check=True,
        capture_output=True,
        timeout=60,
    )
    env = inspect_environment(prefix)
    assert env is not None
    assert env.is_venv, env
    assert env.healthy, env
    return env


@pytest.fixture
async def launched() -> AsyncIterator[list[KernelProvisionerBase]]:
    made: list[KernelProvisionerBase] = []
    yield made
    for p in made:
        await p.stop(grace=2)
        await p.cleanup()


@pytest.fixture
def launcher_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """This process (the launcher) runs in another venv, as a server in its own venv does."""
    runtime = tmp_path / "runtime"
    runtime.mkdir(mode=0o700)
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(runtime))
    monkeypatch.setenv("VIRTUAL_ENV", "/somewhere-else")
    monkeypatch.setenv("VIRTUAL_ENV_PROMPT", "(somewhere-else) ")
    monkeypatch.setenv("KK_LAUNCHER_ONLY", "kept")


def _environ_of(p: KernelProvisionerBase) -> dict[str, str]:
    assert isinstance(p, LocalProvisioner)
    assert p.pid is not None
    raw = Path(f"/proc/{p.pid}/environ").read_bytes()
    return dict(item.split("=", 1) for item in raw.decode().split("\0") if "=" in item)


def _kernel_type(environment: Environment | None) -> KernelType:
    spec = fake_spec("writeback", env={"KK_FROM_SPEC": "spec:${VIRTUAL_ENV}"})
    return KernelType(
        name="fake",
        display_name="Fake",
        language="python",
        spec=spec,
        environment=environment,
    )


@pytest.mark.usefixtures("launcher_env")
async def test_an_activated_environment_is_passed_as_complete(
    venv: Environment, launched: list[KernelProvisionerBase]
) -> None:
    p = await launch_kernel_type(
        _kernel_type(venv),
        LaunchOptions(env={"KK_CALLER": "1"}),
        activator=Activator(cache_dir=None),
    )
    launched.append(p)
    env = _environ_of(p)
    assert env["VIRTUAL_ENV"] == str(venv.prefix)  # only the activated one
    assert "VIRTUAL_ENV_PROMPT" not in env  # the launcher's, removed by activation
    assert env["PATH"].split(":")[0] == str(venv.prefix / "bin")
    assert "/somewhere-else/bin" not in env["PATH"].split(":")
    assert env["KK_LAUNCHER_ONLY"] == "kept"  # activation keeps the rest
    assert env["KK_CALLER"] == "1"  # the caller's variables on top
    assert env["KK_FROM_SPEC"] == f"spec:{venv.prefix}"  # the spec's env last


@pytest.mark.usefixtures("launcher_env")
async def test_without_an_environment_the_launcher_environment_is_inherited(
    launched: list[KernelProvisionerBase],
) -> None:
    p = await launch_kernel_type(_kernel_type(None), LaunchOptions(env={"KK_CALLER": "1"}))
    launched.append(p)
    env = _environ_of(p)
    assert env["VIRTUAL_ENV"] == "/somewhere-else"
    assert env["VIRTUAL_ENV_PROMPT"] == "(somewhere-else) "
    assert env["KK_CALLER"] == "1"
