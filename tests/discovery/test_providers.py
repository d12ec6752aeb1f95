"""The built-in providers over kernelspec directories and environments laid out on disk."""

from __future__ import annotations

import json
from pathlib import Path

from kernelkit.discovery import (
    ORIGIN_ENVIRONMENT,
    ORIGIN_INTERPRETER,
    ORIGIN_KERNELSPEC,
    EnvProvider,
    KernelFinder,
    SpecProvider,
)
from kernelkit.envs import EnvLocations
from tests.envs.layouts import PY_FULL, write_conda, write_spec, write_venv


def test_spec_provider_lists_healthy_and_broken_specs(tmp_path: Path) -> None:
    kernels = tmp_path / "kernels"
    write_spec(
        kernels,
        "good",
        {"argv": ["/bin/sh", "{connection_file}"], "display_name": "Good", "language": "sh"},
    )
    write_spec(kernels, "badjson", "{not json")
    write_spec(
        kernels,
        "nointerp",
        {
            "argv": [str(tmp_path / "gone" / "bin" / "python"), "-m", "x", "{connection_file}"],
            "display_name": "No",
            "language": "python",
        },
    )
    found = {k.name: k for k in SpecProvider([kernels]).find_kernels()}
    assert found["good"].healthy
    assert found["good"].origin == ORIGIN_KERNELSPEC
    assert found["good"].source == kernels / "good"
    assert found["good"].environment is None
    assert "invalid JSON" in found["badjson"].problems[0]
    assert "does not exist" in found["nointerp"].problems[0]


def test_a_spec_inside_an_environment_carries_that_environment(tmp_path: Path) -> None:
    prefix = write_venv(tmp_path / "env", ipykernel=True, spec=True)
    provider = SpecProvider([prefix / "share" / "jupyter" / "kernels"])
    (kernel,) = provider.find_kernels()
    assert kernel.environment is not None
    assert kernel.environment.prefix == prefix
    assert kernel.healthy
    watched = provider.watched_paths()
    assert watched is not None
    assert str(prefix / "share" / "jupyter" / "kernels" / "python3" / "kernel.json") in watched


def _env_provider(**kw: object) -> EnvProvider:
    return EnvProvider(EnvLocations(**kw))  # type: ignore[arg-type]


def test_env_provider_offers_specs_and_interpreters(tmp_path: Path) -> None:
    with_spec = write_venv(tmp_path / "venvs" / "withspec", ipykernel=True, spec=True)
    bare = write_venv(tmp_path / "venvs" / "bare", ipykernel=True)
    write_venv(tmp_path / "venvs" / "noipk")  # no ipykernel, no spec: not a kernel
    conda = write_conda(tmp_path / "conda" / "envs" / "r", python=False, kernel="kkr")
    provider = _env_provider(
        virtualenvwrapper_dirs=(tmp_path / "venvs",), conda_envs_dirs=(tmp_path / "conda" / "envs",)
    )
    found = {k.name: k for k in provider.find_kernels()}
    assert len(found) == 3
    spec_kernel = next(
        k for k in found.values() if k.source == with_spec / "share/jupyter/kernels/python3"
    )
    assert spec_kernel.name.endswith("/python3")
    assert spec_kernel.display_name == "Python 3 (ipykernel) (withspec)"
    assert spec_kernel.healthy

    interp = next(k for k in found.values() if k.origin == ORIGIN_INTERPRETER)
    assert interp.environment is not None
    assert interp.environment.prefix == bare
    assert interp.spec is not None
    assert interp.spec.argv[:3] == (str(bare / "bin" / "python"), "-m", "ipykernel_launcher")
    assert interp.display_name == f"Python {PY_FULL} (bare)"
    assert interp.name == f"{interp.environment.id}/python3"

    r_kernel = next(k for k in found.values() if k.language == "kkr")
    assert r_kernel.environment is not None
    assert r_kernel.environment.prefix == conda
    # its program is found on PATH only once the prefix is activated: not a problem
    assert r_kernel.healthy, r_kernel.problems


def test_a_non_python_kernel_whose_program_is_nowhere_is_broken(tmp_path: Path) -> None:
    prefix = write_conda(tmp_path / "envs" / "j", python=False)
    write_spec(
        prefix / "share" / "jupyter" / "kernels",
        "java",
        {
            "argv": ["kk-no-such-java", "{connection_file}"],
            "display_name": "Java",
            "language": "java",
        },
    )
    (kernel,) = _env_provider(conda_envs_dirs=(tmp_path / "envs",)).find_kernels()
    assert "not found on PATH" in kernel.problems[0]


def test_broken_environments_are_listed_with_their_reasons(tmp_path: Path) -> None:
    txt = tmp_path / "environments.txt"
    txt.write_text(f"{tmp_path / 'deleted-env'}\n")
    dangling = write_venv(
        tmp_path / "venvs" / "dangling", spec=True, interpreter=str(tmp_path / "no-python")
    )
    loop = tmp_path / "loop"
    loop.symlink_to(loop)
    found = _env_provider(
        conda_environment_files=(txt,), virtualenvwrapper_dirs=(tmp_path / "venvs", loop)
    ).find_kernels()
    by_source = {k.source: k for k in found}
    deleted = by_source[tmp_path / "deleted-env"]
    assert deleted.origin == ORIGIN_ENVIRONMENT
    assert deleted.spec is None
    assert "deleted" in deleted.problems[0]
    spec_kernel = by_source[dangling / "share" / "jupyter" / "kernels" / "python3"]
    assert any("broken link" in p for p in spec_kernel.problems)
    unlistable = by_source[loop]
    assert "cannot list" in unlistable.problems[0]


def test_an_environment_kernel_launches_bare_python_with_its_own_interpreter(
    tmp_path: Path,
) -> None:
    prefix = write_venv(tmp_path / "venvs" / "own", ipykernel=True, spec=True)
    (kernel,) = _env_provider(virtualenvwrapper_dirs=(tmp_path / "venvs",)).find_kernels()
    assert kernel.spec is not None
    argv = kernel.spec.format_argv(connection_file=tmp_path / "c.json")
    assert argv[0] == str(prefix / "bin" / "python")


def test_the_finder_prefers_spec_ids_for_a_spec_both_providers_see(tmp_path: Path) -> None:
    prefix = write_venv(tmp_path / "proj" / ".venv", ipykernel=True, spec=True)
    finder = KernelFinder(
        {
            "spec": SpecProvider([prefix / "share" / "jupyter" / "kernels"]),
            "env": _env_provider(project_dirs=(tmp_path / "proj",)),
        }
    )
    (kernel,) = finder.find().kernels
    assert kernel.id == "spec/python3"
    assert kernel.aliases[0].startswith("env/proj-")
    assert kernel.environment is not None  # launched with the venv activated either way
    assert json.dumps(kernel.spec.to_dict() if kernel.spec else {})
