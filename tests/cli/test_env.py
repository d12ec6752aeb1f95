"""Every interpreter: `kernelkit list --all`, `kernelkit env add-kernel`, and project
environments found from parent directories and remembered."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .run_helpers import KERNELKIT, make_env

_BIN = str(Path(sys.executable).parent)


def _env(tmp_path: Path, *prefixes: Path) -> dict[str, str]:
    env = make_env(tmp_path)
    env["XDG_DATA_HOME"] = str(tmp_path / "xdg")  # the remembered-environments file
    env["PATH"] = _BIN + os.pathsep + env.get("PATH", "")  # uv
    env["KERNELKIT_ENV_PREFIXES"] = os.pathsep.join(map(str, prefixes))
    return env


def _kk(
    *args: str, env: dict[str, str], cwd: Path | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(KERNELKIT), *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _venv(path: Path) -> Path:
    """A venv without pip or ipykernel (quick)."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(path)], check=True)
    return path


def _site_packages(prefix: Path) -> Path:
    return next((prefix / "lib").glob("python*/site-packages"))


def _listing(env: dict[str, str], cwd: Path | None = None) -> dict[str, object]:
    result = _kk("list", "--all", "--json", env=env, cwd=cwd)
    assert result.returncode == 0, result.stderr
    doc: dict[str, object] = json.loads(result.stdout)
    return doc


def _bare_prefixes(doc: dict[str, object]) -> list[str]:
    entries = doc["without_kernel"]
    assert isinstance(entries, list)
    return [e["prefix"] for e in entries]


def test_list_all_shows_interpreters_without_ipykernel(tmp_path: Path) -> None:
    venv = _venv(tmp_path / "plain")
    env = _env(tmp_path, venv)
    doc = _listing(env)
    entries = doc["without_kernel"]
    assert isinstance(entries, list)
    entry = next(e for e in entries if e["prefix"] == str(venv))
    assert entry["missing"] == "ipykernel"
    assert entry["fix"] == f"kernelkit env add-kernel {entry['id']}"
    human = _kk("list", "--all", env=env)
    assert "Interpreters without a kernel yet" in human.stdout
    assert "no ipykernel" in human.stdout
    # Its id as a kernel says what is missing and how to add it.
    ran = _kk("run", "-k", f"env/{entry['id']}/python3", "-c", "1", env=env)
    assert ran.returncode == 3
    assert f"has Python but no ipykernel; add it with: kernelkit env add-kernel {entry['id']}" in (
        " ".join(ran.stderr.split())
    )
    # Without --all they are not listed.
    assert "without_kernel" not in json.loads(_kk("list", "--json", env=env).stdout)


def test_project_environments_are_found_from_parents_and_remembered(tmp_path: Path) -> None:
    project = tmp_path / "proj"
    venv = _venv(project / ".venv")
    deep = project / "src" / "pkg"
    deep.mkdir(parents=True)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = _env(tmp_path)
    assert str(venv) not in _bare_prefixes(_listing(env, cwd=elsewhere))  # never seen
    assert str(venv) in _bare_prefixes(_listing(env, cwd=deep))  # found from a parent
    assert str(venv) in _bare_prefixes(_listing(env, cwd=elsewhere))  # and remembered
    shutil.rmtree(venv)
    doc = _listing(env, cwd=elsewhere)
    assert str(venv) not in _bare_prefixes(doc)  # gone: dropped without a word
    assert doc["problems"] == []


@pytest.mark.integration
def test_add_kernel_then_it_is_listed_and_runs(tmp_path: Path) -> None:
    if shutil.which("uv", path=_BIN + os.pathsep + os.environ.get("PATH", "")) is None:
        pytest.skip("uv is in the test extra; not installed here")
    venv = _venv(tmp_path / "target")
    env = _env(tmp_path, venv)
    entry = next(
        e
        for e in json.loads(_kk("list", "--all", "--json", env=env).stdout)["without_kernel"]
        if e["prefix"] == str(venv)
    )
    result = _kk("env", "add-kernel", entry["id"], env=env)
    assert result.returncode == 0, result.stderr
    kernel_id = f"env/{entry['id']}/python3"
    assert kernel_id in result.stderr
    doc = _listing(env)
    kernels = doc["kernelspecs"]
    assert isinstance(kernels, dict)
    assert kernels[kernel_id]["healthy"] is True
    assert str(venv) not in _bare_prefixes(doc)
    again = _kk("env", "add-kernel", str(venv), env=env)
    assert again.returncode == 0
    assert "already has ipykernel" in again.stderr
    ran = _kk("run", "-k", kernel_id, "-c", "import sys; print(sys.prefix)", env=env)
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.strip() == str(venv)


def test_add_kernel_without_an_index_leaves_nothing(tmp_path: Path) -> None:
    venv = _venv(tmp_path / "offline")
    env = _env(tmp_path, venv)
    # No reachable index (and no local one) for either installer.
    for var in ("PIP_FIND_LINKS", "PIP_EXTRA_INDEX_URL", "UV_FIND_LINKS", "UV_EXTRA_INDEX_URL"):
        env.pop(var, None)
    env.update(
        UV_INDEX_URL="http://127.0.0.1:9/simple",
        UV_NO_CONFIG="1",
        UV_NO_CACHE="1",
        UV_HTTP_RETRIES="0",  # a refused connection fails at once, not after three backoffs
        PIP_INDEX_URL="http://127.0.0.1:9/simple",
        PIP_CONFIG_FILE=os.devnull,
        PIP_RETRIES="0",
    )
    before = sorted(os.listdir(_site_packages(venv)))
    result = _kk("env", "add-kernel", str(venv), env=env)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "could not install ipykernel" in result.stderr
    assert "127.0.0.1:9" in result.stderr  # the installer's own words
    assert sorted(os.listdir(_site_packages(venv))) == before


def test_add_kernel_bad_targets(tmp_path: Path) -> None:
    env = _env(tmp_path)
    result = _kk("env", "add-kernel", "no-such-env", env=env)
    assert result.returncode == 3
    assert "no environment 'no-such-env'" in result.stderr
    not_env = tmp_path / "plain-dir"
    not_env.mkdir()
    result = _kk("env", "add-kernel", str(not_env), env=env)
    assert result.returncode == 3
    assert "is not a Python or conda environment" in result.stderr
    # A conda prefix with no Python (an R environment, say).
    r_env = tmp_path / "r-env"
    (r_env / "conda-meta").mkdir(parents=True)
    (r_env / "conda-meta" / "history").write_text("")
    result = _kk("env", "add-kernel", str(r_env), env=env)
    assert result.returncode == 1
    assert "no Python interpreter" in result.stderr


def _read_only_mount(path: Path) -> list[str] | None:
    """A command prefix that runs its command with ``path`` mounted read-only (a private
    mount namespace), or None where that cannot be done here."""
    unshare = shutil.which("unshare")
    if unshare is None:
        return None
    script = 'mount --bind "$1" "$1" && mount -o remount,ro,bind "$1" "$1" && shift && exec "$@"'
    prefix = [unshare, "-m", "sh", "-c", script, "sh", str(path)]
    probe = subprocess.run([*prefix, "true"], capture_output=True, check=False, timeout=30)
    return prefix if probe.returncode == 0 else None


def test_add_kernel_to_a_read_only_environment(tmp_path: Path) -> None:
    venv = _venv(tmp_path / "ro")
    env = _env(tmp_path)
    if os.geteuid() != 0:
        site = _site_packages(venv)
        site.chmod(0o555)
        try:
            result = _kk("env", "add-kernel", str(venv), env=env)
        finally:
            site.chmod(0o755)
    else:
        # Root may write anywhere, except on a read-only file system.
        prefix = _read_only_mount(venv)
        if prefix is None:
            pytest.skip("root, and no read-only mount possible here (unshare -m refused)")
        result = subprocess.run(
            [*prefix, str(KERNELKIT), "env", "add-kernel", str(venv)],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "is not writable here" in result.stderr
