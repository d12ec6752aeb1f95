"""Discovery against real environments, made by the tests (once per session):
``python -m venv``, virtualenv, ``uv venv``, pyenv's interpreters, and a conda prefix built
offline with py-rattler; kernels launched from them with their environment activated."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from kernelkit import EnvironmentActivationError
from kernelkit.discovery import (
    ORIGIN_INTERPRETER,
    EnvProvider,
    KernelFinder,
    KernelType,
    SpecProvider,
)
from kernelkit.envs import Activator, EnvLocations, find_environments
from kernelkit.manager import AsyncKernelManager, KernelManager
from kernelkit.provisioning import LocalProvisioner
from tests.envs import realenvs
from tests.envs.layouts import write_conda

pytestmark = pytest.mark.integration

PYENV = Path(os.environ.get("PYENV_ROOT", "/root/.pyenv"))
PY313 = PYENV / "versions" / "3.13.0" / "bin" / "python3.13"


@dataclass(frozen=True)
class Machine:
    base: Path
    std: Path  # python -m venv + ipykernel, its kernelspec removed: interpreter only
    uvenv: Path  # uv venv + ipykernel + xeus-python (specs python3, xpython, xpython-raw)
    virtualenv: Path  # virtualenv, no ipykernel: an environment but not a kernel
    conda: Path  # rattler-built prefix with kk-echo, and a venv + ipykernel laid over it
    locations: EnvLocations


@pytest.fixture(scope="session")
def machine(tmp_path_factory: pytest.TempPathFactory) -> Machine:
    base = tmp_path_factory.mktemp("realenvs")
    std = realenvs.install_ipykernel(realenvs.make_venv(base, "workon/std"))
    shutil.rmtree(std / "share" / "jupyter" / "kernels")  # ipykernel's wheel ships one
    uvenv = realenvs.make_uv_venv(base, "uvproject/.venv")
    subprocess.run(
        [str(realenvs.UV), "pip", "install", "--quiet", "--python", str(uvenv / "bin" / "python"),
         "ipykernel", "xeus-python"],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    venv313 = realenvs.make_virtualenv(
        base, "workon/old-tools", python=str(PY313) if PY313.exists() else None
    )
    conda = realenvs.make_conda_prefix(base, "conda-root/envs/kkecho")
    locations = EnvLocations(
        project_dirs=(base / "uvproject",),
        conda_roots=(base / "conda-root",),
        virtualenvwrapper_dirs=(base / "workon",),
    )
    return Machine(base, std, uvenv, venv313, conda, locations)


@pytest.fixture
def finder(machine: Machine, tmp_path: Path) -> KernelFinder:
    activator = Activator(cache_dir=tmp_path / "activation-cache")
    return KernelFinder(
        {
            "spec": SpecProvider([machine.base / "no-global-kernels"], activator=activator),
            "env": EnvProvider(machine.locations, activator=activator),
        }
    )


@pytest.fixture
async def launch(
    finder: KernelFinder,
) -> AsyncIterator[Callable[..., Awaitable[AsyncKernelManager]]]:
    """Start a kernel (by id or type) with a manager; every one is shut down afterwards."""
    started: list[AsyncKernelManager] = []

    async def start(
        kernel: str | KernelType, *, using: KernelFinder | None = None, **options: Any
    ) -> AsyncKernelManager:
        km = (
            AsyncKernelManager(kernel, finder=using or finder, autorestart=False)
            if isinstance(kernel, str)
            else AsyncKernelManager(kernel_type=kernel, finder=using or finder, autorestart=False)
        )
        started.append(km)
        await km.start_kernel(**options)
        return km

    yield start
    for km in started:
        await km.shutdown_kernel(now=True)


def _pid(km: AsyncKernelManager | KernelManager) -> int:
    provisioner = km.provisioner
    assert isinstance(provisioner, LocalProvisioner)
    assert provisioner.pid is not None
    return provisioner.pid


def _proc_env(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    pairs = (item.decode(errors="replace").partition("=") for item in raw if item)
    return {k: v for k, _, v in pairs}


def _proc_argv(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")[:-1]


def test_real_environments_are_found_with_their_facts(machine: Machine) -> None:
    scan = find_environments(machine.locations)
    by_prefix = {e.prefix: e for e in scan.environments}
    std, uvenv = by_prefix[machine.std], by_prefix[machine.uvenv]
    old, conda = by_prefix[machine.virtualenv], by_prefix[machine.conda]
    assert (std.kind, std.has_ipykernel, std.kernels_dir) == ("virtualenvwrapper", True, None)
    assert (uvenv.kind, uvenv.name, uvenv.has_ipykernel) == ("uv", "uvproject", True)
    assert (old.kind, old.has_ipykernel) == ("virtualenvwrapper", False)
    if PY313.exists():
        assert old.python_version == "3.13.0"
    assert (conda.kind, conda.name, conda.has_ipykernel) == ("conda", "kkecho", True)
    assert (conda.prefix / "conda-meta" / "history").exists()  # a genuine conda prefix
    for env in scan.environments:
        assert env.healthy, env
        assert env.interpreter is not None
        assert env.interpreter.exists()
    assert std.python_version == ".".join(map(str, sys.version_info[:3]))


@pytest.mark.skipif(not (PYENV / "versions").is_dir(), reason="no pyenv on this machine")
def test_pyenv_interpreters_are_found_without_running_them() -> None:
    scan = find_environments(EnvLocations(pyenv_roots=(PYENV,)))
    versions = {e.prefix.name: e for e in scan.environments if e.kind == "pyenv"}
    assert versions, scan
    for name, env in versions.items():
        assert env.python_version == name
        assert env.interpreter is not None
        assert env.interpreter.exists()


def test_every_real_kernel_is_listed_healthy(machine: Machine, finder: KernelFinder) -> None:
    result = finder.find()
    assert result.problems == ()
    by_env: dict[Path, dict[str, str]] = {}
    for kernel in result:
        assert kernel.healthy, kernel
        assert kernel.environment is not None
        by_env.setdefault(kernel.environment.prefix, {})[kernel.id.rsplit("/", 1)[1]] = (
            kernel.origin
        )
    assert by_env[machine.std] == {"python3": ORIGIN_INTERPRETER}
    assert by_env[machine.uvenv] == {
        "python3": "kernelspec",
        "xpython": "kernelspec",
        "xpython-raw": "kernelspec",
    }
    assert by_env[machine.conda] == {"kk-echo": "kernelspec", "python3": "kernelspec"}
    assert machine.virtualenv not in by_env  # no ipykernel, no spec: not a kernel


def _id(finder: KernelFinder, prefix: Path, name: str) -> str:
    for kernel in finder.find():
        env = kernel.environment
        if env is not None and env.prefix == prefix and kernel.id.endswith("/" + name):
            return kernel.id
    raise AssertionError(f"no {name} in {prefix}")


Launch = Callable[..., Awaitable[AsyncKernelManager]]


async def test_an_interpreter_kernel_starts_in_its_activated_venv(
    machine: Machine, finder: KernelFinder, launch: Launch
) -> None:
    km = await launch(_id(finder, machine.std, "python3"))
    pid = _pid(km)
    assert _proc_argv(pid)[0] == str(machine.std / "bin" / "python")
    env = _proc_env(pid)
    assert env["VIRTUAL_ENV"] == str(machine.std)
    assert env["PATH"].split(os.pathsep)[0] == str(machine.std / "bin")
    assert km.connection_info is not None
    assert km.connection_info.ports_chosen


async def test_a_conda_kernel_starts_with_its_activation_scripts_applied(
    machine: Machine, finder: KernelFinder, launch: Launch
) -> None:
    # kk-echo's argv[0] is a program in the prefix's bin: found only once activated
    km = await launch(_id(finder, machine.conda, "kk-echo"), env={"KK_X": "1"})
    env = _proc_env(_pid(km))
    assert env["KK_ECHO_ACTIVATED"] == "yes"  # set by etc/conda/activate.d/kk-echo.sh
    assert env["KK_ECHO_HOME"] == str(machine.conda / "share" / "kk-echo")
    assert env["CONDA_PREFIX"] == str(machine.conda)
    assert env["CONDA_DEFAULT_ENV"] == "kkecho"
    assert env["KK_X"] == "1"  # the caller's variables go on top


async def test_activation_runs_once_then_comes_from_the_cache(
    machine: Machine, tmp_path: Path, launch: Launch
) -> None:
    activator = Activator(cache_dir=tmp_path / "cache")
    finder = KernelFinder({"env": EnvProvider(machine.locations, activator=activator)})
    kernel = finder.get(_id(finder, machine.conda, "kk-echo"))
    timings = []
    for _ in range(2):
        started = time.perf_counter()
        await launch(kernel, using=finder)
        timings.append(time.perf_counter() - started)
    assert activator.script_runs == 1
    print(
        f"conda kernel launch with activation: first {timings[0]:.3f} s, cached {timings[1]:.3f} s"
    )


async def test_xeus_python_in_an_environment_runs_with_that_interpreter(
    machine: Machine, finder: KernelFinder, launch: Launch
) -> None:
    # its argv starts with a bare python3.11: another interpreter could not import it
    km = await launch(_id(finder, machine.uvenv, "xpython"))
    argv0 = _proc_argv(_pid(km))[0]
    assert Path(argv0).parent == machine.uvenv / "bin"


def test_a_blocking_manager_starts_an_environment_kernel_by_id_and_stops_it(
    machine: Machine, finder: KernelFinder
) -> None:
    with KernelManager(_id(finder, machine.std, "python3"), finder=finder) as km:
        assert km.is_alive()
        pid = _pid(km)
        assert km.connection_info is not None
        assert km.connection_info.ports_chosen
        assert _proc_env(pid)["VIRTUAL_ENV"] == str(machine.std)
    assert not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text()


async def test_a_failing_activation_script_fails_the_launch_with_its_reason(
    machine: Machine, tmp_path: Path
) -> None:
    write_conda(
        tmp_path / "envs" / "bad",
        kernel="kkr",
        activate={"needs-license.sh": 'echo "no license server" >&2\nreturn 3\n'},
    )
    finder = KernelFinder(
        {
            "env": EnvProvider(
                EnvLocations(conda_envs_dirs=(tmp_path / "envs",)),
                activator=Activator(cache_dir=None),
            )
        }
    )
    (kernel,) = [k for k in finder.find() if k.language == "kkr"]
    assert kernel.healthy  # listing never runs activation scripts
    km = AsyncKernelManager(kernel.id, finder=finder)
    with pytest.raises(EnvironmentActivationError, match=r"needs-license\.sh") as info:
        await km.start_kernel()
    assert not km.has_kernel
    assert "no license server" in str(info.value)


def test_kernelspec_fields_match_jupyter_client(machine: Machine, tmp_path: Path) -> None:
    """jupyter_client (a peer) and kernelkit list the same specs with the same fields."""
    env = {
        **os.environ,
        "HOME": str(tmp_path),
        "JUPYTER_PATH": str(machine.uvenv / "share" / "jupyter"),
        "PYENV_ROOT": str(tmp_path / "none"),
    }
    bin_dir = Path(sys.executable).parent
    theirs = json.loads(
        subprocess.run(
            [str(bin_dir / "jupyter-kernelspec"), "list", "--json"],
            capture_output=True, check=True, timeout=60, env=env, cwd=tmp_path,
        ).stdout
    )["kernelspecs"]  # fmt: skip
    ours = json.loads(
        subprocess.run(
            [sys.executable, "-m", "kernelkit", "list", "--json"],
            capture_output=True, check=True, timeout=60, env=env, cwd=tmp_path,
        ).stdout
    )["kernelspecs"]  # fmt: skip
    assert {"python3", "xpython", "xpython-raw"} <= set(theirs)
    for name, entry in theirs.items():
        mine = ours[f"spec/{name}"]
        assert mine["resource_dir"] == entry["resource_dir"]
        assert _present(mine["spec"]) == _present(entry["spec"]), name


def _present(spec: dict[str, object]) -> dict[str, object]:
    # jupyter_client writes an absent kernel_protocol_version as "", kernelkit leaves it out
    return {k: v for k, v in spec.items() if v not in ("", None)}


def test_unreadable_directories_are_reported_when_permissions_bite(tmp_path: Path) -> None:
    """Tests run as root, and root reads chmod 000 directories: the listing runs in a child
    without CAP_DAC_OVERRIDE/CAP_DAC_READ_SEARCH (setpriv), where they are unreadable."""
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("setpriv (util-linux) is not installed")
    data = tmp_path / "data"
    kernels = data / "kernels"
    (kernels / "locked").mkdir(parents=True)
    (kernels / "locked" / "kernel.json").write_text('{"argv": ["x"], "display_name": "L"}')
    (kernels / "fine").mkdir()
    (kernels / "fine" / "kernel.json").write_text(
        '{"argv": ["/bin/sh", "{connection_file}"], "display_name": "Fine", "language": "sh"}'
    )
    workon = tmp_path / "workon"
    locked_env = write_conda(workon / "locked-env", kernel="kkr")
    hidden = tmp_path / "hidden-envs"
    write_conda(hidden / "e")
    for path in (kernels / "locked", locked_env, hidden):
        path.chmod(0)
    try:
        done = subprocess.run(
            [setpriv, "--bounding-set=-dac_override,-dac_read_search", "--",
             sys.executable, "-m", "kernelkit", "list", "--json", "--broken"],
            capture_output=True, timeout=60, cwd=tmp_path, check=False,
            env={**os.environ, "HOME": str(tmp_path), "JUPYTER_PATH": str(data),
                 "WORKON_HOME": str(workon), "CONDA_ENVS_PATH": str(hidden),
                 "PYENV_ROOT": str(tmp_path / "none")},
        )  # fmt: skip
    finally:
        for path in (kernels / "locked", locked_env, hidden):
            path.chmod(0o755)
    assert done.returncode == 1, done.stderr
    broken = json.loads(done.stdout)["kernelspecs"]
    reasons = {i: " ".join(k["problems"]) for i, k in broken.items()}
    assert "Permission denied" in reasons["spec/locked"]
    assert any("locked-env" in i and "Permission denied" in r for i, r in reasons.items())
    assert any("hidden-envs" in r and "cannot list" in r for r in reasons.values())
    assert "spec/fine" not in broken


def test_listing_real_environments_starts_no_process(machine: Machine) -> None:
    code = (
        "import sys, json\n"
        "seen = []\n"
        "sys.addaudithook(lambda e, a: seen.append(e) if e in "
        "('subprocess.Popen', 'os.posix_spawn', 'os.exec', 'os.fork', 'os.system') else None)\n"
        "from pathlib import Path\n"
        "from kernelkit.discovery import EnvProvider, KernelFinder\n"
        "from kernelkit.envs import EnvLocations\n"
        "base = Path(sys.argv[1])\n"
        "loc = EnvLocations(project_dirs=(base / 'uvproject',), conda_roots=(base / 'conda-root',),"
        " virtualenvwrapper_dirs=(base / 'workon',), pyenv_roots=(Path(sys.argv[2]),))\n"
        "result = KernelFinder({'env': EnvProvider(loc)}).find()\n"
        "print(json.dumps({'spawns': seen, 'kernels': len(result)}))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(machine.base), str(PYENV)],
        capture_output=True, check=True, timeout=60, text=True,
    )  # fmt: skip
    doc = json.loads(out.stdout)
    assert doc["spawns"] == []
    assert doc["kernels"] >= 6


def test_asyncio_is_not_needed_to_list(machine: Machine) -> None:
    code = (
        "import sys\n"
        "from kernelkit.discovery import KernelFinder\n"
        "KernelFinder().find()\n"
        "heavy = ('asyncio', 'zmq', 'kernelkit.provisioning')\n"
        "print(','.join(m for m in heavy if m in sys.modules))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, check=True, timeout=60, text=True,
        cwd=machine.base, env={**os.environ, "KERNELKIT_CACHE_DIR": str(machine.base / "cache")},
    )  # fmt: skip
    assert out.stdout.strip() == ""


def test_watching_sees_a_new_environment_appear(machine: Machine, tmp_path: Path) -> None:
    workon = tmp_path / "workon"
    workon.mkdir()
    old = time.time() - 60
    os.utime(workon, (old, old))
    finder = KernelFinder({"env": EnvProvider(EnvLocations(virtualenvwrapper_dirs=(workon,)))})

    async def first_change() -> str:
        events = finder.watch(interval=0.05)
        try:
            waiter = asyncio.ensure_future(asyncio.wait_for(events.__anext__(), 30))
            await asyncio.sleep(0.2)
            created = realenvs.make_uv_venv(workon, "fresh")
            realenvs.install_ipykernel(created)
            change = await waiter
            return f"{change.kind} {change.kernel.id}"
        finally:
            await events.aclose()

    assert asyncio.run(first_change()).startswith("added env/fresh-")
