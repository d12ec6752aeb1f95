"""Notebooks that find their kernel: ``kernelkit which`` and ``kernelkit run
notebook.ipynb`` (kernelkit.notebooks), against real kernels and a real project
environment; outputs identical to nbclient's on jupyter_client."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from kernelkit import NotebookError
from kernelkit.notebooks import Notebook, choose_kernel
from tests.envs import realenvs

from .notebooks import CASES, make_notebook, normalised

pytestmark = pytest.mark.integration

KERNELKIT = Path(sys.executable).with_name("kernelkit")


def kernelkit(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(KERNELKIT), *map(str, args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project folder with its own .venv (ipykernel installed) and a notebook two
    folders down that names no kernel."""
    base = tmp_path_factory.mktemp("project")
    realenvs.install_ipykernel(realenvs.make_venv(base, "proj/.venv"))
    folder = base / "proj" / "analysis" / "deep"
    folder.mkdir(parents=True)
    nb = make_notebook(["import sys; print(sys.executable)"])
    del nb.metadata["kernelspec"]
    nbformat.write(nb, folder / "nb.ipynb")
    return base / "proj"


def test_which_names_the_notebooks_kernelspec(tmp_path: Path) -> None:
    nbformat.write(make_notebook(["1"]), tmp_path / "a.ipynb")
    result = kernelkit("which", "a.ipynb", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "spec/python3"
    assert "kernelspec 'python3'" in result.stderr


def test_which_finds_the_nearest_project_environment(project: Path) -> None:
    result = kernelkit("which", project / "analysis" / "deep" / "nb.ipynb", cwd=project)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("env/")
    assert str(project / ".venv") in result.stderr


def test_run_uses_the_project_environment_and_records_it(project: Path, tmp_path: Path) -> None:
    source = project / "analysis" / "deep" / "nb.ipynb"
    out = tmp_path / "out.ipynb"
    result = kernelkit("run", source, "--output", out, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert str(project / ".venv" / "bin" / "python") in result.stdout
    done = json.loads(out.read_text())
    text = "".join(done["cells"][0]["outputs"][0]["text"])
    assert text.strip() == str(project / ".venv" / "bin" / "python")
    identity = done["metadata"]["kernelkit"]
    assert identity["environment"]["prefix"] == str(project / ".venv")
    assert identity["environment"]["python_version"].count(".") == 2
    assert done["metadata"]["language_info"]["name"] == "python"
    # The source is untouched with --output; the written one chooses the same again.
    assert (
        "outputs" not in json.loads(source.read_text())["cells"][0]
        or not json.loads(source.read_text())["cells"][0]["outputs"]
    )
    again = choose_kernel(Notebook.read(out))
    assert again.kernel_type.id == identity["kernel"]


@pytest.mark.parametrize("case", sorted(CASES))
def test_run_outputs_match_nbclient(case: str, tmp_path: Path) -> None:
    nb = make_notebook(CASES[case])
    nbformat.write(nb, tmp_path / "nb.ipynb")
    result = kernelkit("run", "nb.ipynb", cwd=tmp_path)
    # These raise in their first cell: the rest are not run, as with nbclient.
    raises = {"errors": "ZeroDivisionError", "stdin": "StdinNotImplementedError"}
    theirs = copy.deepcopy(nb)
    client = NotebookClient(theirs, resources={"metadata": {"path": str(tmp_path)}})
    if case in raises:
        assert result.returncode == 1, result.stderr
        assert raises[case] in result.stderr
        with pytest.raises(Exception, match=raises[case]):
            client.execute()
    else:
        assert result.returncode == 0, result.stderr
        client.execute()
    ours = nbformat.read(tmp_path / "nb.ipynb", as_version=4)
    nbformat.validate(ours)
    assert normalised(ours) == normalised(theirs)


def test_a_kernel_that_dies_gives_exit_4_with_the_reason(tmp_path: Path) -> None:
    nbformat.write(make_notebook(["import os; os._exit(9)", "1"]), tmp_path / "nb.ipynb")
    result = kernelkit("run", "nb.ipynb", cwd=tmp_path)
    assert result.returncode == 4, result.stderr
    assert "exit code 9" in result.stderr


def test_no_kernel_of_the_language_says_what_there_is(tmp_path: Path) -> None:
    nb = make_notebook(["1"], kernel_name="no-such")
    nb.metadata["kernelspec"]["language"] = "cobol"
    nbformat.write(nb, tmp_path / "nb.ipynb")
    result = kernelkit("which", "nb.ipynb", cwd=tmp_path)
    assert result.returncode == 3
    assert "no cobol kernel here" in result.stderr
    assert "spec/python3" in result.stderr


def test_not_a_notebook_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "bad.ipynb").write_text("{not json")
    result = kernelkit("run", "bad.ipynb", cwd=tmp_path)
    assert result.returncode == 3
    assert "not a notebook: invalid JSON" in result.stderr
    with pytest.raises(NotebookError, match=r"cannot read notebook"):
        Notebook.read(tmp_path / "missing.ipynb")


def test_nbclient_on_the_bridge_runs_an_environments_kernel_activated(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from kernelkit import KernelFinder
    from kernelkit.jupyter import AsyncKernelManager

    monkeypatch.setenv("KERNELKIT_ENV_PREFIXES", str(project / ".venv"))
    venv = project / ".venv"
    (kernel,) = [
        k
        for k in KernelFinder().find()
        if k.environment is not None and k.environment.prefix == venv and k.healthy
    ]
    nb = make_notebook(["import os, sys; print(sys.executable); print(os.environ['VIRTUAL_ENV'])"])
    NotebookClient(nb, kernel_name=kernel.id, kernel_manager_class=AsyncKernelManager).execute()
    assert nb.cells[0].outputs[0]["text"].split() == [str(venv / "bin" / "python"), str(venv)]


def test_usage_errors_say_what_is_wrong(tmp_path: Path) -> None:
    nbformat.write(make_notebook(["1"]), tmp_path / "nb.ipynb")
    both = kernelkit("run", "nb.ipynb", "-c", "1", cwd=tmp_path)
    assert both.returncode == 2
    assert "not both" in both.stderr
    misplaced = kernelkit("run", "-c", "1", "--output", "x.ipynb", cwd=tmp_path)
    assert misplaced.returncode == 2
    assert "--output is for notebooks" in misplaced.stderr
