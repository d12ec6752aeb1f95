"""inspect_environment and environment_id: one environment, read from its files."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from kernelkit.envs import environment_id, inspect_environment
from tests.envs.layouts import PY, PY_FULL, write_conda, write_venv


@pytest.mark.parametrize(
    ("creator", "kind"), [("venv", "venv"), ("uv", "uv"), ("virtualenv", "virtualenv")]
)
def test_a_venv_is_described_by_its_pyvenv_cfg(tmp_path: Path, creator: str, kind: str) -> None:
    prefix = write_venv(tmp_path / "env", creator=creator, ipykernel=True)
    env = inspect_environment(prefix)
    assert env is not None
    assert env.kind == kind
    assert env.prefix == prefix
    assert env.interpreter == prefix / "bin" / "python"
    assert env.python_version == PY_FULL  # virtualenv's "3.11.7.final.0" trimmed
    assert env.has_ipykernel
    assert env.site_packages == prefix / "lib" / f"python{PY}" / "site-packages"
    assert env.kernels_dir is None
    assert env.healthy
    assert env.is_venv
    assert not env.is_conda


def test_ipykernel_is_detected_from_dist_info_only(tmp_path: Path) -> None:
    prefix = write_venv(tmp_path / "env")
    assert inspect_environment(prefix).has_ipykernel is False  # type: ignore[union-attr]
    (prefix / "lib" / f"python{PY}" / "site-packages" / "ipykernel_helpers-1.0.dist-info").mkdir()
    assert inspect_environment(prefix).has_ipykernel is False  # type: ignore[union-attr]
    (prefix / "lib" / f"python{PY}" / "site-packages" / "ipykernel-6.0.egg-info").mkdir()
    assert inspect_environment(prefix).has_ipykernel is True  # type: ignore[union-attr]


def test_kind_given_by_location_wins_but_not_over_a_venv_in_pyenv(tmp_path: Path) -> None:
    prefix = write_venv(tmp_path / "env")
    assert inspect_environment(prefix, kind="poetry").kind == "poetry"  # type: ignore[union-attr]
    # pyenv's versions/ holds pyenv-virtualenv venvs too: those stay venvs
    assert inspect_environment(prefix, kind="pyenv").kind == "venv"  # type: ignore[union-attr]


def test_a_conda_prefix_reads_conda_meta(tmp_path: Path) -> None:
    prefix = write_conda(tmp_path / "envs" / "ds", ipykernel=True, kernel="kkr")
    env = inspect_environment(prefix)
    assert env is not None
    assert env.kind == "conda"
    assert env.is_conda
    assert not env.is_venv
    assert env.python_version == PY_FULL
    assert env.has_ipykernel
    assert env.kernels_dir == prefix / "share" / "jupyter" / "kernels"
    assert env.name == "ds"


def test_a_conda_prefix_without_python_is_healthy_with_no_interpreter(tmp_path: Path) -> None:
    env = inspect_environment(write_conda(tmp_path / "r-env", python=False, kernel="kkr"))
    assert env is not None
    assert env.interpreter is None
    assert env.python_version is None
    assert env.healthy


def test_an_installed_python_is_a_system_environment(tmp_path: Path) -> None:
    prefix = tmp_path / "3.12.1"
    (prefix / "lib" / "python3.12" / "site-packages").mkdir(parents=True)
    (prefix / "bin").mkdir()
    (prefix / "bin" / "python3").symlink_to(sys.executable)
    env = inspect_environment(prefix)
    assert env is not None
    assert env.kind == "system"
    assert env.python_version == "3.12"
    assert inspect_environment(prefix, kind="pyenv").python_version == "3.12.1"  # type: ignore[union-attr]


def test_a_plain_directory_is_not_an_environment(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    assert inspect_environment(tmp_path / "src") is None


def test_a_deleted_environment_is_reported_not_raised(tmp_path: Path) -> None:
    env = inspect_environment(tmp_path / "gone", kind="conda")
    assert env is not None
    assert not env.healthy
    assert "does not exist" in env.problems[0]


def test_a_venv_whose_base_python_was_removed_is_broken(tmp_path: Path) -> None:
    prefix = write_venv(tmp_path / "env", interpreter=str(tmp_path / "removed" / "python3"))
    env = inspect_environment(prefix)
    assert env is not None
    assert env.interpreter == prefix / "bin" / "python"
    assert "broken link" in env.problems[0]
    assert str(tmp_path / "removed") in env.problems[0]


def test_a_venv_without_interpreter_is_broken(tmp_path: Path) -> None:
    env = inspect_environment(write_venv(tmp_path / "env", interpreter=None))
    assert env is not None
    assert env.interpreter is None
    assert "no Python interpreter" in env.problems[0]


def test_an_unreadable_environment_is_reported(tmp_path: Path) -> None:
    # Tests run as root, so chmod 000 would not stop us: a symlink loop in place of
    # lib/ gives a real OSError (ELOOP) from the same calls instead.
    prefix = write_venv(tmp_path / "env")
    lib = prefix / "lib"
    os.rename(lib, tmp_path / "lib-moved")
    lib.symlink_to(lib)
    env = inspect_environment(prefix)
    assert env is not None
    assert not env.healthy
    assert "cannot read" in env.problems[0]


def test_ids_are_stable_readable_and_symlink_invariant(tmp_path: Path) -> None:
    prefix = write_venv(tmp_path / "My Project" / ".venv")
    link = tmp_path / "link"
    link.symlink_to(prefix)
    first = environment_id(prefix)
    assert first == environment_id(prefix)
    assert first == environment_id(link)
    assert first.startswith("My-Project-")
    assert len(first.rsplit("-", 1)[1]) == 8
    assert environment_id(tmp_path / "other" / ".venv") != first
    assert inspect_environment(prefix).id == first  # type: ignore[union-attr]


def test_pixi_environments_are_named_after_their_project(tmp_path: Path) -> None:
    assert environment_id(tmp_path / "proj" / ".pixi" / "envs" / "default").startswith("proj-")
    assert environment_id(tmp_path / "proj" / ".pixi" / "envs" / "test").startswith("proj-test-")
