"""nbclient runs real notebooks on kernelkit.jupyter.AsyncKernelManager, with outputs
identical to jupyter_client's own manager after normalising ids, timestamps and
addresses; a kernel that dies gives nbclient's DeadKernelError at once, with kernelkit's
reason in it."""

from __future__ import annotations

import copy
import queue
import shutil
import subprocess
import sys
import tarfile
import time
from importlib.metadata import version
from pathlib import Path

import nbformat
import pytest
from jupyter_client.manager import AsyncKernelManager as JupyterAsyncKernelManager
from nbclient import NotebookClient
from nbclient.exceptions import DeadKernelError

from kernelkit.jupyter import AsyncKernelManager

from .notebooks import CASES, make_notebook, normalised

pytestmark = pytest.mark.integration


def run(nb: nbformat.NotebookNode, manager: type, cwd: Path) -> nbformat.NotebookNode:
    nb = copy.deepcopy(nb)
    client = NotebookClient(
        nb,
        kernel_manager_class=manager,
        allow_errors=True,
        timeout=60,
        startup_timeout=60,
        resources={"metadata": {"path": str(cwd)}},
    )
    client.execute()
    return nb


@pytest.mark.parametrize("case", sorted(CASES))
def test_outputs_match_jupyter_client(case: str, tmp_path: Path) -> None:
    nb = make_notebook(CASES[case])
    ours = run(nb, AsyncKernelManager, tmp_path)
    theirs = run(nb, JupyterAsyncKernelManager, tmp_path)
    assert normalised(ours) == normalised(theirs)
    assert all(cell.execution_count for cell in ours.cells)


@pytest.fixture(scope="module")
def nbclient_test_notebooks(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """nbclient's own test notebooks, from the source distribution of the installed
    version (pip fetches it from the package index)."""
    where = tmp_path_factory.mktemp("nbclient-sdist")
    wanted = f"nbclient=={version('nbclient')}"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--quiet",
            "--no-deps",
            "--no-binary",
            ":all:",
            wanted,
            "-d",
            str(where),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    archives = list(where.glob("nbclient-*.tar.gz"))
    if result.returncode != 0 or not archives:
        pytest.skip(f"cannot fetch the source distribution of {wanted}: {result.stderr[-500:]}")
    with tarfile.open(archives[0]) as tar:
        tar.extractall(where, filter="data")
    files = next(where.glob("nbclient-*/tests/files"))
    return files


# nbclient's own notebooks that need nothing beyond ipykernel (the widget ones need
# ipywidgets; Interrupt, Autokill and Sleep1s test timeouts, not outputs).
NBCLIENT_NOTEBOOKS = [
    "Check History in Memory.ipynb",
    "Clear Output.ipynb",
    "Disable Stdin.ipynb",
    "Empty Cell.ipynb",
    "Error.ipynb",
    "Factorials.ipynb",
    "HelloWorld.ipynb",
    "Inline Image.ipynb",
    "Other Comms.ipynb",
    "SVG.ipynb",
    "Skip Exceptions with Cell Tags.ipynb",
    "Skip Exceptions.ipynb",
    "Skip Execution with Cell Tag.ipynb",
    "Unicode.ipynb",
    "UnicodePy3.ipynb",
    "update-display-id.ipynb",
]


@pytest.mark.parametrize("name", NBCLIENT_NOTEBOOKS)
def test_nbclients_own_notebooks(name: str, nbclient_test_notebooks: Path, tmp_path: Path) -> None:
    for f in nbclient_test_notebooks.iterdir():  # images and data beside them
        shutil.copy(f, tmp_path / f.name)
    nb = nbformat.read(tmp_path / name, as_version=4)
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    ours = run(nb, AsyncKernelManager, tmp_path)
    theirs = run(nb, JupyterAsyncKernelManager, tmp_path)
    assert normalised(ours) == normalised(theirs)


def test_a_dead_kernel_gives_dead_kernel_error_with_the_reason(tmp_path: Path) -> None:
    nb = make_notebook(["import os; os._exit(7)", "print('never')"])
    client = NotebookClient(nb, kernel_manager_class=AsyncKernelManager, timeout=60)
    start = time.monotonic()
    with pytest.raises(DeadKernelError) as caught:
        client.execute()
    # nbclient's own check comes every second at best; ours is at once (bounded
    # generously: the whole run includes starting the kernel).
    assert time.monotonic() - start < 60
    assert "exit code 7" in str(caught.value)
    assert client.km is None or not client.km.has_kernel


def test_an_unknown_kernel_says_which_exist(tmp_path: Path) -> None:
    nb = make_notebook(["1"], kernel_name="no-such-kernel")
    client = NotebookClient(nb, kernel_manager_class=AsyncKernelManager)
    with pytest.raises(Exception, match="no-such-kernel") as caught:
        client.execute()
    assert "python3" in str(caught.value)


def test_the_manager_is_jupyter_clients_and_runs_on_kernelkit() -> None:
    import jupyter_client.manager

    km = AsyncKernelManager(kernel_name="python3")
    assert isinstance(km, jupyter_client.manager.KernelManager)
    assert km.ipykernel
    spec = km.kernel_spec
    assert spec is not None
    assert spec.language == "python"
    assert km.kernelkit_manager.kernel_name == "python3"


def test_the_blocking_manager_and_client() -> None:
    from kernelkit.jupyter import KernelManager

    km = KernelManager(kernel_name="python3")
    try:
        km.start_kernel()
        assert km.is_alive()
        assert km.shell_port > 0
        kc = km.client()
        kc.start_channels()
        kc.wait_for_ready(timeout=60)
        msg_id = kc.execute("6 * 7")
        reply = kc.get_shell_msg(timeout=60)
        assert reply["parent_header"]["msg_id"] == msg_id
        assert reply["content"]["status"] == "ok"
        results = []
        for _ in range(50):  # bounded: busy, execute_input, execute_result, idle
            msg = kc.get_iopub_msg(timeout=30)
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            if msg["msg_type"] == "execute_result":
                results.append(msg["content"]["data"]["text/plain"])
            if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                break
        assert results == ["42"]
        with pytest.raises(queue.Empty):
            kc.get_shell_msg(timeout=0.1)
        kc.stop_channels()
        km.shutdown_kernel()
        assert not km.is_alive()
    finally:
        km.close()


def test_a_cell_past_its_timeout_is_interrupted_and_the_next_runs(tmp_path: Path) -> None:
    nb = make_notebook(["import time\ntime.sleep(60)", "print('next')"])
    client = NotebookClient(
        nb,
        kernel_manager_class=AsyncKernelManager,
        timeout=2,  # nbclient waits on shell get_msg(timeout=...) and expects queue.Empty
        interrupt_on_timeout=True,
        allow_errors=True,
        startup_timeout=60,
    )
    start = time.monotonic()
    client.execute()
    assert time.monotonic() - start < 50  # well under the sleep: it was interrupted
    assert nb.cells[0].outputs[-1]["ename"] == "KeyboardInterrupt"
    assert nb.cells[1].outputs[0]["text"] == "next\n"
