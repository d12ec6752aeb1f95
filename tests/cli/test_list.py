"""``kernelkit list`` and ``kernelkit specs``, run in-process on a machine laid out in a
temp dir (HOME, JUPYTER_PATH, WORKON_HOME and the working directory point there)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from kernelkit.cli import app
from tests.envs.layouts import python_spec, write_spec, write_venv
from tests.plugins.site_dir import SITE, plugins_installed

runner = CliRunner()


@pytest.fixture
def machine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A HOME with user kernelspecs (one broken), a WORKON_HOME with a venv, and a
    project directory with a .venv, as the working directory."""
    home = tmp_path / "home"
    kernels = tmp_path / "jupyter-data" / "kernels"
    write_spec(
        kernels,
        "shell",
        {"argv": ["/bin/sh", "{connection_file}"], "display_name": "Shell", "language": "sh"},
    )
    write_spec(kernels, "garbled", "{not json")
    write_spec(
        kernels,
        "lost",
        {
            "argv": [
                str(tmp_path / "deleted-env" / "bin" / "python"),
                "-m",
                "ipykernel",
                "-f",
                "{connection_file}",
            ],
            "display_name": "Lost",
            "language": "python",
        },
    )
    write_venv(tmp_path / "workon" / "tools", ipykernel=True)
    project = tmp_path / "project"
    write_venv(project / ".venv", creator="uv", ipykernel=True, spec=True)
    for var in ("CONDA_PREFIX", "CONDA_EXE", "MAMBA_ROOT_PREFIX", "VIRTUAL_ENV"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("JUPYTER_PATH", str(kernels.parent))  # <data dir>/kernels
    monkeypatch.setenv("WORKON_HOME", str(tmp_path / "workon"))
    monkeypatch.setenv("PYENV_ROOT", str(tmp_path / "no-pyenv"))
    monkeypatch.chdir(project)
    return tmp_path


def _json(*args: str) -> tuple[int, dict[str, object]]:
    result = runner.invoke(app, ["list", "--json", *args])
    return result.exit_code, json.loads(result.stdout)


def test_list_json_has_jupyters_fields_plus_ours(machine: Path) -> None:
    code, doc = _json()
    assert code == 0
    specs = doc["kernelspecs"]
    assert isinstance(specs, dict)
    shell = specs["spec/shell"]
    assert shell["resource_dir"] == str(machine / "jupyter-data" / "kernels" / "shell")
    assert shell["spec"] == {
        "argv": ["/bin/sh", "{connection_file}"],
        "env": {},
        "display_name": "Shell",
        "language": "sh",
        "interrupt_mode": "signal",
        "metadata": {},
    }
    assert shell["provider"] == "spec"
    assert shell["id"] == "spec/shell"
    assert shell["name"] == "shell"
    assert shell["healthy"] is True
    assert shell["problems"] == []
    assert shell["environment"] is None
    # environments: the project's .venv spec and the tools venv's interpreter
    env_ids = [i for i in specs if i.startswith("env/")]
    project = next(i for i in env_ids if i.startswith("env/project-"))
    assert specs[project]["environment"]["kind"] == "uv"  # type: ignore[index]
    tools = next(i for i in env_ids if i.startswith("env/tools-"))
    assert specs[tools]["origin"] == "interpreter"  # type: ignore[index]
    assert specs[tools]["spec"]["argv"][1:3] == ["-m", "ipykernel_launcher"]  # type: ignore[index]
    assert doc["problems"] == []


def test_broken_kernels_are_listed_with_reasons_and_broken_filters(machine: Path) -> None:
    _, everything = _json()
    code, doc = _json("--broken")
    assert code == 1
    broken = doc["kernelspecs"]
    assert isinstance(broken, dict)
    assert set(broken) == {"spec/garbled", "spec/lost"}
    assert "invalid JSON" in broken["spec/garbled"]["problems"][0]
    assert broken["spec/garbled"]["spec"]["argv"] == []
    assert "does not exist" in broken["spec/lost"]["problems"][0]
    assert len(everything["kernelspecs"]) > len(broken)  # type: ignore[arg-type]


def test_list_table_groups_by_source_and_shows_health(machine: Path) -> None:
    result = runner.invoke(app, ["list"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert "Jupyter kernelspecs  (spec/...)" in lines
    assert "Python and conda environments  (env/...)" in lines
    assert "  ~/../jupyter-data/kernels" not in lines  # HOME is tmp/home: not shortened
    assert f"  {machine / 'jupyter-data' / 'kernels'}" in lines  # the group's directory
    (shell,) = [line for line in lines if "spec/shell" in line]
    assert shell.split() == ["spec/shell", "ok", "sh", "Shell"]
    (garbled,) = [i for i, line in enumerate(lines) if "spec/garbled" in line]
    assert lines[garbled].split()[1] == "broken"
    assert lines[garbled + 1].startswith("      kernel.json: invalid JSON")  # path not repeated
    assert any(line.startswith(f"  {machine / 'project' / '.venv'}  (uv, ") for line in lines)
    assert lines[-2].endswith("broken.")
    assert lines[-1] == "Only what is broken, and why: kernelkit list --broken"


def test_list_fits_a_narrow_terminal_without_cutting_ids(machine: Path) -> None:
    long_name = "a-rather-long-kernel-name-for-a-narrow-terminal"
    write_spec(machine / "jupyter-data" / "kernels", long_name, python_spec("Long"))
    result = runner.invoke(app, ["list"], env={"COLUMNS": "60"})
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    # only a path may overflow (never broken: the terminal folds it, copying still works)
    wide = [line for line in lines if len(line) > 60]
    assert all(str(machine) in max(line.split(), key=len) for line in wide), wide
    assert all(line == line.rstrip() for line in lines)  # no padding at line ends
    (at,) = [i for i, line in enumerate(lines) if f"spec/{long_name}" in line]
    assert lines[at].strip() == f"spec/{long_name}"  # on a line of its own, whole
    assert lines[at + 1].split()[:2] == ["ok", "python"]
    reasons = [line for line in lines if "does not exist" in line or "invalid JSON" in line]
    assert all(line.startswith("      ") for line in reasons)  # under their kernel


def test_broken_table_exit_status(machine: Path) -> None:
    result = runner.invoke(app, ["list", "--broken"], env={"COLUMNS": "200"})
    assert result.exit_code == 1
    assert "spec/garbled" in result.stdout
    assert "spec/shell" not in result.stdout


def test_nothing_broken_exits_zero(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "none"))
    monkeypatch.setenv("PYENV_ROOT", str(tmp_path / "none"))
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["list", "--broken"])
    assert result.exit_code == 0, result.stdout


def test_failing_plugins_are_reported_and_do_not_hang_the_listing(machine: Path) -> None:
    with plugins_installed():
        started = time.monotonic()
        result = runner.invoke(app, ["list", "--json", "--time-limit", "0.5"])
        elapsed = time.monotonic() - started
    assert elapsed < 5
    doc = json.loads(result.stdout)
    assert "kk-good/echo" in doc["kernelspecs"]
    failed = {p["provider"]: p["reason"] for p in doc["problems"]}
    assert set(failed) == {"kk-raises", "kk-hangs", "kk-missing"}
    assert "did not answer within 0.5 s" in failed["kk-hangs"]


def test_plugins_in_a_fresh_process_via_pythonpath(machine: Path) -> None:
    # the same plugins, found the way an installed package is: no install step needed
    env = {**os.environ, "PYTHONPATH": str(SITE)}
    done = subprocess.run(
        [sys.executable, "-m", "kernelkit", "list", "--broken", "--json", "--time-limit", "0.5"],
        capture_output=True,
        timeout=60,
        env=env,
        check=False,
    )
    assert done.returncode == 1, done.stderr
    doc = json.loads(done.stdout)
    assert {p["provider"] for p in doc["problems"]} == {"kk-raises", "kk-hangs", "kk-missing"}


def test_specs_install_list_remove(machine: Path, tmp_path: Path) -> None:
    source = write_spec(tmp_path / "src", "mykernel", python_spec("Mine"))
    (source / "logo-64x64.png").write_bytes(b"\x89PNG")
    result = runner.invoke(app, ["specs", "install", str(source), "--user"])
    assert result.exit_code == 0, result.output
    installed = Path(result.stdout.split(" in ", 1)[1].strip())
    assert installed.parent.name == "kernels"
    assert (installed / "logo-64x64.png").exists()

    listed = runner.invoke(app, ["specs", "list", "--json"])
    assert listed.exit_code == 0
    specs = json.loads(listed.stdout)["kernelspecs"]
    assert specs["mykernel"]["spec"]["display_name"] == "Mine"
    assert "invalid JSON" in specs["garbled"]["problems"][0]

    _, doc = _json()
    found = doc["kernelspecs"]["spec/mykernel"]  # type: ignore[index]
    assert found["resource_dir"] == str(installed)

    assert runner.invoke(app, ["specs", "remove", "mykernel"]).exit_code == 0
    gone = runner.invoke(app, ["specs", "remove", "mykernel"])
    assert gone.exit_code == 3
    assert "no kernel named 'mykernel'" in gone.output


def test_specs_install_rejects_an_invalid_spec(machine: Path, tmp_path: Path) -> None:
    source = write_spec(tmp_path / "src", "bad", "{nope")
    result = runner.invoke(app, ["specs", "install", str(source), "--user"])
    assert result.exit_code == 1
    assert "invalid JSON" in result.output
    both = runner.invoke(
        app, ["specs", "install", str(source), "--prefix", str(tmp_path), "--sys-prefix"]
    )
    assert both.exit_code == 2


def test_list_help_documents_the_json_schema() -> None:
    result = runner.invoke(app, ["list", "--help"], env={"COLUMNS": "120"})
    assert result.exit_code == 0
    for field in ('"kernelspecs"', '"resource_dir"', '"provider"', '"healthy"', '"problems"'):
        assert field in result.stdout
