"""A kernel of an environment gets that environment as activation leaves it, whichever
manager starts it: nothing from the launcher's own environment comes back (a real
``python -m venv``; the fast fake kernel of the manager tests runs in it)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path

import pytest

from kernelkit.discovery import KernelFinder, KernelProvider, KernelType, LaunchPlan, plan_launch
from kernelkit.envs import Activator, Environment, inspect_environment
from kernelkit.manager import (
    AsyncKernelManager,
    AsyncKernelPool,
    AsyncMultiKernelManager,
    KernelManager,
)
from kernelkit.provisioning import KernelProvisionerBase, LocalProvisioner
from tests.manager.fakes import fake_spec

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
def launcher_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """This process (the launcher) runs in another venv, as a server in its own venv does."""
    runtime = tmp_path / "runtime"
    runtime.mkdir(mode=0o700)
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(runtime))
    monkeypatch.setenv("VIRTUAL_ENV", "/somewhere-else")
    monkeypatch.setenv("VIRTUAL_ENV_PROMPT", "(somewhere-else) ")
    monkeypatch.setenv("KK_LAUNCHER_ONLY", "kept")


class _Provider(KernelProvider):
    """One fake kernel, in ``environment`` (None: none), activated without a disk cache."""

    def __init__(self, environment: Environment | None) -> None:
        self._environment = environment
        self._activator = Activator(cache_dir=None)

    def find_kernels(self) -> Iterable[KernelType]:
        spec = fake_spec(env={"KK_FROM_SPEC": "spec:${VIRTUAL_ENV}"})
        return [KernelType("fake", "Fake", "fake", spec=spec, environment=self._environment)]

    def prepare(self, kernel_type: KernelType) -> LaunchPlan:
        return plan_launch(kernel_type, activator=self._activator)


def _finder(environment: Environment | None) -> KernelFinder:
    return KernelFinder({"test": _Provider(environment)})


def _environ_of(p: KernelProvisionerBase | None) -> dict[str, str]:
    assert isinstance(p, LocalProvisioner)
    assert p.pid is not None
    raw = Path(f"/proc/{p.pid}/environ").read_bytes()
    return dict(item.split("=", 1) for item in raw.decode().split("\0") if "=" in item)


def _assert_activated(env: Mapping[str, str], venv: Environment) -> None:
    assert env["VIRTUAL_ENV"] == str(venv.prefix)  # only the activated one
    assert "VIRTUAL_ENV_PROMPT" not in env  # the launcher's, removed by activation
    assert env["PATH"].split(":")[0] == str(venv.prefix / "bin")
    assert "/somewhere-else/bin" not in env["PATH"].split(":")
    assert env["KK_LAUNCHER_ONLY"] == "kept"  # activation keeps the rest
    assert env["KK_CALLER"] == "1"  # the caller's variables on top
    assert env["KK_FROM_SPEC"] == f"spec:{venv.prefix}"  # the spec's env last


@pytest.mark.usefixtures("launcher_env")
async def test_a_manager_passes_an_activated_environment_as_complete(venv: Environment) -> None:
    km = AsyncKernelManager("test/fake", finder=_finder(venv), autorestart=False)
    await km.start_kernel(env={"KK_CALLER": "1"})
    try:
        _assert_activated(_environ_of(km.provisioner), venv)
        assert km.launch_plan is not None
        assert km.launch_plan.environment == venv
        await km.restart_kernel(now=True)  # restarts reuse the plan
        _assert_activated(_environ_of(km.provisioner), venv)
    finally:
        await km.shutdown_kernel(now=True)


@pytest.mark.usefixtures("launcher_env")
def test_a_blocking_manager_passes_an_activated_environment_as_complete(
    venv: Environment,
) -> None:
    kernel_type = _finder(venv).get("test/fake")
    with KernelManager(kernel_type=kernel_type, finder=_finder(venv), autorestart=False) as km:
        km.restart_kernel(now=True)
        km.shutdown_kernel(now=True)
        km.start_kernel(env={"KK_CALLER": "1"})
        _assert_activated(_environ_of(km.provisioner), venv)


@pytest.mark.usefixtures("launcher_env")
async def test_a_multi_kernel_manager_passes_an_activated_environment_as_complete(
    venv: Environment,
) -> None:
    async with AsyncMultiKernelManager(finder=_finder(venv), autorestart=False) as mkm:
        by_id = await mkm.start_kernel("test/fake", env={"KK_CALLER": "1"})
        finder = _finder(venv)
        by_type = await mkm.start_kernel(
            kernel_type=finder.get("test/fake"), env={"KK_CALLER": "1"}
        )
        for kernel_id in (by_id, by_type):
            _assert_activated(_environ_of(mkm.get_kernel(kernel_id).provisioner), venv)


@pytest.mark.usefixtures("launcher_env")
async def test_a_pool_passes_an_activated_environment_as_complete(venv: Environment) -> None:
    pool = AsyncKernelPool(
        "test/fake", size=1, env={"KK_CALLER": "1"}, finder=_finder(venv), ready_timeout=30
    )
    try:
        await pool.start(timeout=60)
        async with await pool.acquire(timeout=30) as kernel:
            _assert_activated(_environ_of(kernel.manager.provisioner), venv)
    finally:
        await pool.aclose(now=True)


@pytest.mark.usefixtures("launcher_env")
async def test_without_an_environment_the_launcher_environment_is_inherited() -> None:
    async with AsyncMultiKernelManager(finder=_finder(None), autorestart=False) as mkm:
        kernel_id = await mkm.start_kernel("test/fake", env={"KK_CALLER": "1"})
        env = _environ_of(mkm.get_kernel(kernel_id).provisioner)
    assert env["VIRTUAL_ENV"] == "/somewhere-else"
    assert env["VIRTUAL_ENV_PROMPT"] == "(somewhere-else) "
    assert env["KK_CALLER"] == "1"


@pytest.mark.usefixtures("launcher_env")
async def test_inherit_env_false_makes_env_the_whole_environment(venv: Environment) -> None:
    async with AsyncMultiKernelManager(finder=_finder(venv), autorestart=False) as mkm:
        kernel_id = await mkm.start_kernel(
            "test/fake", env={"KK_CALLER": "1", "PATH": "/usr/bin:/bin"}, inherit_env=False
        )
        env = _environ_of(mkm.get_kernel(kernel_id).provisioner)
    assert "VIRTUAL_ENV" not in env  # neither the activated one nor the launcher's
    assert "KK_LAUNCHER_ONLY" not in env
    assert env["KK_CALLER"] == "1"
    assert env["KK_FROM_SPEC"] == "spec:${VIRTUAL_ENV}"  # applied, nothing to substitute
