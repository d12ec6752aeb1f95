"""An environment's kernel, sandboxed: it runs with that environment activated, and the
environment (in a directory the sandbox otherwise hides) is bound in read-only."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
from collections.abc import Iterable
from pathlib import Path

import pytest

from kernelkit.discovery import KernelFinder, KernelProvider, KernelType, LaunchPlan, plan_launch
from kernelkit.envs import Activator, Environment, inspect_environment
from kernelkit.manager import AsyncKernelManager
from kernelkit.specs import KernelSpec

from .conftest import needs_bwrap
from .helpers import run, sandbox

pytestmark = [pytest.mark.integration, needs_bwrap]


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Environment:
    """A real venv under /tmp (hidden in a sandbox) that imports this suite's ipykernel."""
    prefix = tmp_path_factory.mktemp("envs") / "boxed"
    subprocess.run(
        [sys.executable, "-m", "venv", "--without-pip", str(prefix)],
        check=True,
        capture_output=True,
        timeout=60,
    )
    site = next(prefix.glob("lib/python*/site-packages"))
    (site / "suite.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    env = inspect_environment(prefix)
    assert env is not None
    assert env.healthy, env
    return env


class _Provider(KernelProvider):
    def __init__(self, environment: Environment) -> None:
        self._environment = environment
        self._activator = Activator(cache_dir=None)

    def find_kernels(self) -> Iterable[KernelType]:
        python = str(self._environment.prefix / "bin" / "python")
        spec = KernelSpec(
            name="boxed",
            resource_dir=self._environment.prefix,
            argv=(python, "-m", "ipykernel_launcher", "-f", "{connection_file}"),
            display_name="Boxed",
            language="python",
        )
        return [KernelType("boxed", "Boxed", "python", spec=spec, environment=self._environment)]

    def prepare(self, kernel_type: KernelType) -> LaunchPlan:
        return plan_launch(kernel_type, activator=self._activator)


async def test_environment_kernel_runs_activated_in_the_sandbox(
    venv: Environment, runtime_dir: Path
) -> None:
    finder = KernelFinder({"test": _Provider(venv)})
    mark = {"KERNELKIT_TEST_SESSION": os.environ["KERNELKIT_TEST_SESSION"]}
    # The venv reaches this suite's ipykernel through a .pth file: that directory is bound
    # in read-only too (the checkout may live under /tmp, which the sandbox hides).
    suite_site = sysconfig.get_paths()["purelib"]
    options = {"env": mark, "ro_paths": [suite_site]}
    km = AsyncKernelManager("test/boxed", finder=finder, autorestart=False, sandbox=options)
    async with km, km.client() as kc:
        await kc.wait_for_ready(timeout=60)
        code = (
            "import os, sys\n"
            "print(sys.prefix)\n"
            "print(os.environ['VIRTUAL_ENV'])\n"
            "print(os.environ['PATH'].split(':')[0])\n"
            "print(os.getcwd())\n"
        )
        reply, out = await run(kc, code)
        assert reply.content["status"] == "ok", reply.content
        prefix, virtual_env, first_path, cwd = out.split()
        assert prefix == virtual_env == str(venv.prefix)
        assert first_path == str(venv.prefix / "bin")
        assert cwd == str(sandbox(km).work_dir)
