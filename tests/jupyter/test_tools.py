"""The command-line tools on kernelkit: ``jupyter nbconvert --execute`` with
``--ExecutePreprocessor.kernel_manager_class=kernelkit.jupyter.AsyncKernelManager``, and
``papermill --engine kernelkit`` (through papermill's ``papermill.engine`` entry point)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from .notebooks import CASES, make_notebook, normalised

pytestmark = pytest.mark.integration

BIN = Path(sys.executable).parent


def tool(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / args[0]), *args[1:]],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_nbconvert_executes_on_kernelkit(tmp_path: Path) -> None:
    nb = make_notebook(CASES["display"] + CASES["streams"])
    nbformat.write(nb, tmp_path / "in.ipynb")
    outputs = {}
    for label, manager in (
        ("ours", "kernelkit.jupyter.AsyncKernelManager"),
        ("theirs", "jupyter_client.manager.AsyncKernelManager"),
    ):
        result = tool(
            "jupyter", "nbconvert", "--to", "notebook", "--execute", "in.ipynb",
            f"--output={label}.ipynb",
            f"--ExecutePreprocessor.kernel_manager_class={manager}",
            cwd=tmp_path,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        outputs[label] = normalised(nbformat.read(tmp_path / f"{label}.ipynb", as_version=4))
    assert outputs["ours"] == outputs["theirs"]
    assert outputs["ours"][-1]["outputs"]


def test_papermill_engine_kernelkit(tmp_path: Path) -> None:
    nb = make_notebook(["x = 1", "print(x * 2)", "y = x + 1\ny"])
    nb.cells[0].metadata["tags"] = ["parameters"]
    nbformat.write(nb, tmp_path / "in.ipynb")
    result = tool(
        "papermill", "--engine", "kernelkit", "in.ipynb", "out.ipynb", "-p", "x", "21",
        cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    out = nbformat.read(tmp_path / "out.ipynb", as_version=4)
    texts = [o.get("text", "") for c in out.cells for o in c.get("outputs", [])]
    assert "42\n" in texts
    assert out.metadata["papermill"]["parameters"] == {"x": 21}
    assert out.metadata["language_info"]["name"] == "python"


def test_papermill_reports_a_failing_cell(tmp_path: Path) -> None:
    nbformat.write(make_notebook(["1 / 0", "print('never')"]), tmp_path / "in.ipynb")
    result = tool("papermill", "--engine", "kernelkit", "in.ipynb", "out.ipynb", cwd=tmp_path)
    assert result.returncode != 0
    assert "ZeroDivisionError" in result.stderr
    out = nbformat.read(tmp_path / "out.ipynb", as_version=4)
    assert out.cells[-1].get("outputs", []) == []
