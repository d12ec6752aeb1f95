"""Activation: venvs without a subprocess; conda prefixes with their activate.d scripts
run for real in bash, cached in memory and on disk, re-run when a script changes."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from kernelkit import EnvironmentActivationError
from kernelkit.envs import Activator, EnvChange, diff_environ, inspect_environment
from tests.envs.layouts import write_conda, write_venv

BASE = {"PATH": "/usr/bin:/bin", "HOME": "/root", "LANG": "C.UTF-8"}


def _env(prefix: Path):  # type: ignore[no-untyped-def]
    env = inspect_environment(prefix)
    assert env is not None
    return env


def test_venv_activation_sets_path_and_virtual_env_without_a_subprocess(tmp_path: Path) -> None:
    env = _env(write_venv(tmp_path / "v"))
    activator = Activator(cache_dir=None)
    out = activator.activate(env, {**BASE, "PYTHONHOME": "/x"})
    assert out["VIRTUAL_ENV"] == str(env.prefix)
    assert out["PATH"] == f"{env.prefix}/bin:/usr/bin:/bin"
    assert "PYTHONHOME" not in out
    assert activator.script_runs == 0


def test_activating_leaves_the_launchers_own_venv(tmp_path: Path) -> None:
    mine = tmp_path / "mine"
    env = _env(write_venv(tmp_path / "v"))
    out = Activator(cache_dir=None).activate(
        env, {**BASE, "VIRTUAL_ENV": str(mine), "PATH": f"{mine}/bin:/usr/bin"}
    )
    assert out["VIRTUAL_ENV"] == str(env.prefix)
    assert out["PATH"] == f"{env.prefix}/bin:/usr/bin"


def test_an_installed_python_only_goes_first_on_path(tmp_path: Path) -> None:
    prefix = tmp_path / "3.12"
    (prefix / "lib" / "python3.12").mkdir(parents=True)
    (prefix / "bin").mkdir()
    (prefix / "bin" / "python3").symlink_to("/bin/sh")
    out = Activator(cache_dir=None).activate(_env(prefix), BASE)
    assert "VIRTUAL_ENV" not in out
    assert out["PATH"].startswith(f"{prefix}/bin:")


def test_conda_activation_without_scripts_sets_the_conda_variables(tmp_path: Path) -> None:
    env = _env(write_conda(tmp_path / "root" / "envs" / "ds"))
    activator = Activator(cache_dir=None)
    out = activator.activate(env, BASE)
    assert out["CONDA_PREFIX"] == str(env.prefix)
    assert out["CONDA_DEFAULT_ENV"] == "ds"
    assert out["CONDA_SHLVL"] == "1"
    assert out["CONDA_PROMPT_MODIFIER"] == "(ds) "
    assert out["PATH"] == f"{env.prefix}/bin:/usr/bin:/bin"
    assert activator.script_runs == 0  # no activate.d: nothing to run


def test_conda_activation_replaces_an_active_env_like_conda_does(tmp_path: Path) -> None:
    base = write_conda(tmp_path / "root")
    (base / "condabin").mkdir()
    env = _env(base)
    old = tmp_path / "root" / "envs" / "old"
    out = Activator(cache_dir=None).activate(
        env,
        {**BASE, "CONDA_PREFIX": str(old), "CONDA_SHLVL": "1", "PATH": f"{old}/bin:/usr/bin"},
    )
    assert out["CONDA_DEFAULT_ENV"] == "base"
    assert out["CONDA_SHLVL"] == "2"
    assert out["CONDA_PREFIX_1"] == str(old)
    assert out["PATH"] == f"{base}/bin:/usr/bin"


def test_conda_env_config_vars_are_applied(tmp_path: Path) -> None:
    prefix = write_conda(tmp_path / "envs" / "cv")
    (prefix / "conda-meta" / "state").write_text(json.dumps({"env_vars": {"MY_VAR": "42"}}))
    assert Activator(cache_dir=None).activate(_env(prefix), BASE)["MY_VAR"] == "42"
    (prefix / "conda-meta" / "state").write_text("{broken")
    with pytest.raises(EnvironmentActivationError, match="conda-meta/state"):
        Activator(cache_dir=None).activate(_env(prefix), BASE)


SCRIPTS = {
    "a-first.sh": (
        'export KK_A="$CONDA_PREFIX/a"\nexport KK_PATHISH="$CONDA_PREFIX/p:$KK_PATHISH"\n'
    ),
    "b-second.sh": 'echo "noise on stdout"\nexport KK_B="${KK_A}-b"\nunset KK_GONE\n',
    "not-a-script.txt": "exit 1\n",
}


def test_activation_scripts_run_in_order_and_their_changes_apply(tmp_path: Path) -> None:
    env = _env(write_conda(tmp_path / "envs" / "s", activate=SCRIPTS))
    activator = Activator(cache_dir=None)
    out = activator.activate(env, {**BASE, "KK_PATHISH": "/orig", "KK_GONE": "1"})
    assert out["KK_A"] == f"{env.prefix}/a"
    assert out["KK_B"] == f"{env.prefix}/a-b"  # the second script saw the first's export
    assert out["KK_PATHISH"] == f"{env.prefix}/p:/orig"
    assert "KK_GONE" not in out
    assert activator.script_runs == 1


def test_script_results_are_cached_in_memory_and_on_disk(tmp_path: Path) -> None:
    env = _env(write_conda(tmp_path / "envs" / "s", activate=SCRIPTS))
    cache = tmp_path / "cache"
    first = Activator(cache_dir=cache)
    out1 = first.activate(env, {**BASE, "KK_PATHISH": "/orig"})
    first.activate(env, BASE)
    assert first.script_runs == 1  # memory
    second = Activator(cache_dir=cache)
    out2 = second.activate(env, {**BASE, "KK_PATHISH": "/elsewhere"})
    assert second.script_runs == 0  # disk
    assert out2["KK_A"] == out1["KK_A"]
    # a path-like change is replayed as a prepend onto the new base
    assert out2["KK_PATHISH"] == f"{env.prefix}/p:/elsewhere"
    assert len(list(cache.glob("*.json"))) == 1


def test_the_cache_is_invalidated_when_a_script_changes_or_appears(tmp_path: Path) -> None:
    env = _env(write_conda(tmp_path / "envs" / "s", activate=SCRIPTS))
    scripts = env.prefix / "etc" / "conda" / "activate.d"
    activator = Activator(cache_dir=tmp_path / "cache")
    activator.activate(env, BASE)
    (scripts / "b-second.sh").write_text('export KK_B="changed, same size, new mtime"\n')
    future = time.time() + 5
    os.utime(scripts / "b-second.sh", (future, future))
    assert activator.activate(env, BASE)["KK_B"] == "changed, same size, new mtime"
    (scripts / "c-third.sh").write_text("export KK_C=3\n")
    assert activator.activate(env, BASE)["KK_C"] == "3"
    assert activator.script_runs == 3
    assert Activator(cache_dir=tmp_path / "cache").activate(env, BASE)["KK_C"] == "3"


def test_a_garbled_disk_cache_is_rebuilt(tmp_path: Path) -> None:
    env = _env(write_conda(tmp_path / "envs" / "s", activate=SCRIPTS))
    cache = tmp_path / "cache"
    Activator(cache_dir=cache).activate(env, BASE)
    for f in cache.glob("*.json"):
        f.write_text("not json")
    again = Activator(cache_dir=cache)
    assert again.activate(env, BASE)["KK_A"] == f"{env.prefix}/a"
    assert again.script_runs == 1


def test_a_failing_script_names_itself_and_shows_its_output(tmp_path: Path) -> None:
    env = _env(
        write_conda(
            tmp_path / "envs" / "f",
            activate={
                "1-ok.sh": "export KK_OK=1\n",
                "2-bad.sh": 'echo "cannot find the JDK" >&2\nfalse\n',
            },
        )
    )
    with pytest.raises(EnvironmentActivationError) as info:
        Activator(cache_dir=None).activate(env, BASE)
    message = str(info.value)
    assert "2-bad.sh" in message
    assert "returned status 1" in message
    assert "cannot find the JDK" in message
    assert "@@kernelkit" not in message  # our markers are not shown


def test_a_script_that_exits_the_shell_is_a_failure(tmp_path: Path) -> None:
    env = _env(write_conda(tmp_path / "envs" / "x", activate={"quit.sh": "echo bye\nexit 0\n"}))
    with pytest.raises(EnvironmentActivationError, match=r"quit\.sh.*exited the shell"):
        Activator(cache_dir=None).activate(env, BASE)


def test_a_hanging_script_is_killed_at_the_time_limit(tmp_path: Path) -> None:
    marker = tmp_path / "child.pid"
    env = _env(
        write_conda(
            tmp_path / "envs" / "h",
            activate={
                "hang.sh": (
                    f'echo "waiting for a license server"\nsleep 60 &\necho $! > {marker}\nwait\n'
                )
            },
        )
    )
    started = time.monotonic()
    with pytest.raises(EnvironmentActivationError) as info:
        Activator(cache_dir=None, timeout=0.5).activate(env, BASE)
    assert time.monotonic() - started < 5
    message = str(info.value)
    assert "hang.sh" in message
    assert "did not finish within 0.5 s" in message
    assert "waiting for a license server" in message
    child = int(marker.read_text())
    deadline = time.monotonic() + 5
    while os.path.exists(f"/proc/{child}") and time.monotonic() < deadline:
        # the whole process group was SIGKILLed; the orphan is reaped by init shortly
        stat = Path(f"/proc/{child}/stat").read_text() if os.path.exists(f"/proc/{child}") else ""
        if stat.rsplit(")", 1)[-1].split()[:1] == ["Z"]:
            break
        time.sleep(0.02)
    assert not os.path.exists(f"/proc/{child}") or "Z" in Path(f"/proc/{child}/stat").read_text()


def test_a_failure_is_not_cached(tmp_path: Path) -> None:
    prefix = write_conda(tmp_path / "envs" / "f", activate={"a.sh": "false\n"})
    activator = Activator(cache_dir=tmp_path / "cache")
    with pytest.raises(EnvironmentActivationError):
        activator.activate(_env(prefix), BASE)
    (prefix / "etc" / "conda" / "activate.d" / "a.sh").write_text("export KK_FIXED=1\n")
    assert activator.activate(_env(prefix), BASE)["KK_FIXED"] == "1"


def test_diff_environ_records_prepends_appends_sets_and_unsets() -> None:
    before = {"PATH": "/b", "X": "1", "GONE": "g", "SHLVL": "1", "LIST": "a"}
    after = {"PATH": "/new:/b", "X": "2", "NEW": "n", "SHLVL": "2", "LIST": "a:z", "_": "/bin/env"}
    assert diff_environ(before, after) == (
        EnvChange("GONE", "unset"),
        EnvChange("LIST", "append", "z"),
        EnvChange("NEW", "set", "n"),
        EnvChange("PATH", "prepend", "/new"),
        EnvChange("X", "set", "2"),
    )
    environ = dict(before)
    for change in diff_environ(before, after):
        change.apply(environ)
    assert environ == {k: v for k, v in after.items() if k != "_"} | {"SHLVL": "1"}
