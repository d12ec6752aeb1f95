"""find_environments over every kind of location, and EnvLocations defaults."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from kernelkit.envs import EnvLocations, find_environments
from tests.envs.layouts import write_conda, write_venv


def _by_name(scan: object) -> dict[str, object]:
    return {e.name: e for e in scan.environments}  # type: ignore[attr-defined]


def test_every_kind_of_location_is_searched(tmp_path: Path) -> None:
    project = tmp_path / "proj"
    write_venv(project / ".venv", creator="uv")
    write_conda(project / ".pixi" / "envs" / "default")
    write_conda(tmp_path / "miniconda3")  # a base install: the base itself ...
    write_conda(tmp_path / "miniconda3" / "envs" / "ds")  # ... and its envs
    write_conda(tmp_path / "dot-conda-envs" / "other")
    write_venv(tmp_path / "pyenv" / "versions" / "3.11.7" / "envs" / "pv", creator="virtualenv")
    (tmp_path / "pyenv" / "versions" / "pv").symlink_to(
        tmp_path / "pyenv" / "versions" / "3.11.7" / "envs" / "pv"
    )
    write_venv(tmp_path / "workon" / "wrapped")
    write_venv(tmp_path / "poetry" / "app-AbCd-py3.11")
    write_venv(tmp_path / "pipenv" / "site-XyZ")
    write_conda(tmp_path / "pixi-home" / "envs" / "global-tool")
    explicit = write_venv(tmp_path / "elsewhere" / "explicit")

    scan = find_environments(
        EnvLocations(
            prefixes=(explicit,),
            project_dirs=(project,),
            conda_roots=(tmp_path / "miniconda3",),
            conda_envs_dirs=(tmp_path / "dot-conda-envs",),
            pyenv_roots=(tmp_path / "pyenv",),
            virtualenvwrapper_dirs=(tmp_path / "workon",),
            poetry_dirs=(tmp_path / "poetry",),
            pipenv_dirs=(tmp_path / "pipenv",),
            pixi_envs_dirs=(tmp_path / "pixi-home" / "envs",),
        )
    )
    kinds = {str(e.prefix.relative_to(tmp_path)): (e.name, e.kind) for e in scan.environments}
    assert kinds == {
        "elsewhere/explicit": ("explicit", "venv"),
        "proj/.venv": ("proj", "uv"),  # a project's .venv is named after the project
        "proj/.pixi/envs/default": ("proj", "pixi"),
        "miniconda3": ("miniconda3", "conda"),
        "miniconda3/envs/ds": ("ds", "conda"),
        "dot-conda-envs/other": ("other", "conda"),
        "pyenv/versions/pv": ("pv", "virtualenv"),  # listed once, though reachable twice
        "workon/wrapped": ("wrapped", "virtualenvwrapper"),
        "poetry/app-AbCd-py3.11": ("app-AbCd-py3.11", "poetry"),
        "pipenv/site-XyZ": ("site-XyZ", "pipenv"),
        "pixi-home/envs/global-tool": ("global-tool", "pixi"),
    }
    assert scan.problems == ()
    assert all(e.healthy for e in scan.environments)


def test_the_same_environment_reached_twice_is_listed_once(tmp_path: Path) -> None:
    env = write_venv(tmp_path / "envs" / "a")
    (tmp_path / "workon").mkdir()
    (tmp_path / "workon" / "a-link").symlink_to(env)
    scan = find_environments(
        EnvLocations(prefixes=(env,), virtualenvwrapper_dirs=(tmp_path / "workon",))
    )
    assert [e.prefix for e in scan.environments] == [env]
    assert scan.environments[0].found_via == "explicit"  # the first place searched wins


def test_environments_txt_lines_are_checked(tmp_path: Path) -> None:
    good = write_conda(tmp_path / "envs" / "good")
    not_conda = tmp_path / "plain"
    not_conda.mkdir()
    txt = tmp_path / "environments.txt"
    txt.write_text(
        f"{good}\n\n# a comment\n{tmp_path / 'deleted'}\nrelative/path\n{not_conda}\n{good}\n"
    )
    scan = find_environments(EnvLocations(conda_environment_files=(txt,)))
    by_prefix = {e.prefix: e for e in scan.environments}
    assert by_prefix[good].healthy
    deleted = by_prefix[tmp_path / "deleted"]
    assert "line 4" in deleted.problems[0]
    assert "deleted" in deleted.problems[0]
    reasons = [p.reason for p in scan.problems]
    assert any("line 5" in r and "not an absolute path" in r for r in reasons)
    assert any(str(not_conda) in r and "not a Python or conda environment" in r for r in reasons)
    assert len(scan.environments) == 2


def test_a_dangling_symlink_in_a_container_is_a_deleted_environment(tmp_path: Path) -> None:
    workon = tmp_path / "workon"
    workon.mkdir()
    (workon / "gone").symlink_to(tmp_path / "nowhere")
    (workon / "notes").mkdir()  # not an environment: silently not one
    scan = find_environments(EnvLocations(virtualenvwrapper_dirs=(workon,)))
    assert [e.name for e in scan.environments] == ["gone"]
    assert not scan.environments[0].healthy


def test_an_unlistable_container_is_reported_and_the_rest_still_found(tmp_path: Path) -> None:
    # As root, chmod 000 does not stop reading; a symlink loop fails listdir with ELOOP.
    loop = tmp_path / "loop"
    loop.symlink_to(loop)
    ok = write_venv(tmp_path / "workon" / "ok")
    scan = find_environments(EnvLocations(virtualenvwrapper_dirs=(loop, ok.parent)))
    assert [e.prefix for e in scan.environments] == [ok]
    assert len(scan.problems) == 1
    assert scan.problems[0].path == loop
    assert "cannot list" in scan.problems[0].reason


def test_missing_locations_cost_nothing_and_report_nothing(tmp_path: Path) -> None:
    scan = find_environments(EnvLocations.from_environ({}, home=tmp_path, cwd=tmp_path))
    assert scan.environments == ()
    assert scan.problems == ()


def test_read_paths_cover_what_a_change_would_touch(tmp_path: Path) -> None:
    env = write_venv(tmp_path / "workon" / "a", spec=True)
    scan = find_environments(
        EnvLocations(virtualenvwrapper_dirs=(tmp_path / "workon",), project_dirs=(tmp_path,))
    )
    assert str(tmp_path / "workon") in scan.read_paths  # a new env changes its mtime
    assert str(tmp_path) in scan.read_paths  # a new ./.venv too
    assert str(env / "share" / "jupyter" / "kernels") in scan.read_paths


def test_defaults_come_from_the_environment_and_home(tmp_path: Path) -> None:
    environ = {
        "CONDA_PREFIX": str(tmp_path / "root" / "envs" / "active"),
        "CONDA_ENVS_PATH": os.pathsep.join([str(tmp_path / "e1"), str(tmp_path / "e2")]),
        "MAMBA_ROOT_PREFIX": str(tmp_path / "mamba"),
        "PYENV_ROOT": str(tmp_path / "pyenv"),
        "WORKON_HOME": str(tmp_path / "workon"),
        "POETRY_VIRTUALENVS_PATH": str(tmp_path / "poetry"),
        "KERNELKIT_ENV_PREFIXES": str(tmp_path / "x"),
    }
    loc = EnvLocations.from_environ(environ, home=tmp_path / "home", cwd=tmp_path / "cwd")
    assert loc.prefixes == (tmp_path / "x",)
    assert loc.project_dirs == (tmp_path / "cwd", *(tmp_path / "cwd").parents)
    assert loc.remembered_files == (
        tmp_path / "home" / ".local" / "share" / "kernelkit" / "environments.txt",
    )
    assert loc.conda_roots[:2] == (tmp_path / "mamba", tmp_path / "root")
    assert tmp_path / "home" / "miniforge3" in loc.conda_roots
    assert loc.conda_envs_dirs == (
        tmp_path / "e1",
        tmp_path / "e2",
        tmp_path / "home" / ".conda" / "envs",
    )
    assert loc.conda_environment_files == (tmp_path / "home" / ".conda" / "environments.txt",)
    assert loc.pyenv_roots == (tmp_path / "pyenv",)
    assert loc.virtualenvwrapper_dirs == (tmp_path / "workon",)
    assert loc.poetry_dirs == (tmp_path / "poetry",)
    plain = EnvLocations.from_environ({}, home=tmp_path / "h", cwd=tmp_path)
    assert plain.poetry_dirs == (tmp_path / "h" / ".cache" / "pypoetry" / "virtualenvs",)
    assert plain.pyenv_roots == (tmp_path / "h" / ".pyenv",)
    assert plain.pixi_envs_dirs == (tmp_path / "h" / ".pixi" / "envs",)


def test_locations_are_frozen() -> None:
    loc = EnvLocations()
    with pytest.raises(AttributeError):
        loc.prefixes = ()  # type: ignore[misc]


def test_remembered_environments_are_found_while_they_exist(tmp_path: Path) -> None:
    from kernelkit.envs import remember_environments

    kept = write_venv(tmp_path / "proj" / ".venv")
    gone = tmp_path / "gone" / ".venv"
    remembered = tmp_path / "data" / "environments.txt"
    assert remember_environments([kept, gone], remembered)
    assert not remember_environments([kept], remembered)  # already there
    scan = find_environments(EnvLocations(remembered_files=(remembered,)))
    assert [e.prefix for e in scan.environments] == [kept]
    assert scan.problems == ()  # a remembered environment that is gone is no problem
    assert str(remembered) in scan.read_paths
