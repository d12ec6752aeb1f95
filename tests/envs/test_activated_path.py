"""A kernel whose program is on PATH only after activation is not broken (issue 14.9).

A conda prefix whose ``etc/conda/activate.d`` script prepends a directory to PATH, with a
kernelspec whose argv[0] is a bare name in that directory: judged against the activated
PATH (from the activation cache), or unknown until activated, never "not found".
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from kernelkit.discovery import EnvProvider, plan_launch
from kernelkit.envs import Activator, EnvLocations, inspect_environment, which_activated
from tests.envs.layouts import write_conda, write_spec

pytestmark = pytest.mark.skipif(shutil.which("bash") is None, reason="activation runs bash")


def _prefix(root: Path, *, adds_dir: bool = True) -> Path:
    prefix = root / "conda" / "envs" / "tooled"
    tools = prefix / "opt" / "tools" / "bin"
    tools.mkdir(parents=True)
    program = tools / "toolkernel"
    program.write_text("#!/bin/sh\nexit 0\n")
    program.chmod(0o755)
    script = f'export PATH="{tools}:$PATH"\n' if adds_dir else "export TOOLS_READY=1\n"
    write_conda(prefix, python=False, activate={"tools.sh": script})
    write_spec(
        prefix / "share" / "jupyter" / "kernels",
        "tool",
        {"argv": ["toolkernel", "{connection_file}"], "display_name": "Tool", "language": "t"},
    )
    return prefix


def _tool_kernel(root: Path, activator: Activator) -> object:
    provider = EnvProvider(
        EnvLocations(conda_envs_dirs=(root / "conda" / "envs",)), activator=activator
    )
    [kernel] = [k for k in provider.find_kernels() if k.name.endswith("/tool")]
    return kernel


def test_unknown_until_activated_is_not_broken(tmp_path: Path) -> None:
    prefix = _prefix(tmp_path)
    activator = Activator(cache_dir=tmp_path / "cache")
    env = inspect_environment(prefix)
    assert env is not None
    assert which_activated(env, "toolkernel", activator=activator) is None  # not run yet
    kernel = _tool_kernel(tmp_path, activator)
    assert kernel.problems == ()  # type: ignore[attr-defined]
    assert activator.script_runs == 0  # listing ran nothing


def test_judged_against_the_cached_activated_path(tmp_path: Path) -> None:
    prefix = _prefix(tmp_path)
    activator = Activator(cache_dir=tmp_path / "cache")
    env = inspect_environment(prefix)
    assert env is not None
    environ = activator.activate(env)  # runs the script once, caches its changes
    assert shutil.which("toolkernel", path=environ["PATH"]) is not None
    found = which_activated(env, "toolkernel", activator=Activator(cache_dir=tmp_path / "cache"))
    assert found == str(prefix / "opt" / "tools" / "bin" / "toolkernel")
    kernel = _tool_kernel(tmp_path, Activator(cache_dir=tmp_path / "cache"))
    assert kernel.problems == ()  # type: ignore[attr-defined]
    plan = plan_launch(kernel, activator=activator)  # type: ignore[arg-type]
    assert shutil.which("toolkernel", path=plan.env["PATH"]) is not None


def test_a_program_the_activation_does_not_add_is_still_not_found(tmp_path: Path) -> None:
    _prefix(tmp_path, adds_dir=False)
    activator = Activator(cache_dir=tmp_path / "cache")
    env = inspect_environment(tmp_path / "conda" / "envs" / "tooled")
    assert env is not None
    activator.activate(env)
    assert which_activated(env, "toolkernel", activator=activator) is False
    kernel = _tool_kernel(tmp_path, activator)
    assert any("'toolkernel' is not found on PATH" in p for p in kernel.problems)  # type: ignore[attr-defined]
