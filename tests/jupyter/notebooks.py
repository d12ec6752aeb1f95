"""Notebooks the bridge tests run, and how to compare two runs of one."""

from __future__ import annotations

import copy
import re
from typing import Any

import nbformat

__all__ = ["CASES", "make_notebook", "normalised"]

# Each case: the cells of one notebook, covering one kind of output.
CASES: dict[str, list[str]] = {
    "streams": [
        "print('out')",
        "import sys; print('err', file=sys.stderr)",
        "print('a', end=''); print('b')",
    ],
    "display": [
        "from IPython.display import HTML, Markdown, display, JSON",
        "display(HTML('<b>bold</b>'), Markdown('*md*'))",
        "JSON({'a': [1, 2, 3]})",
        "h = display('first', display_id='d1')",
        "h.update('second')",
        "from IPython.display import clear_output; print('gone'); clear_output(); print('kept')",
        "6 * 7",
    ],
    "errors": [
        "1 / 0",
        "def f():\n    raise ValueError('deep')\nf()",
        "print('after the errors')",
        "raise KeyboardInterrupt",
    ],
    "stdin": [
        "input('name? ')",
        "import getpass; getpass.getpass('pw? ')",
        "print('stdin refused, kernel fine')",
    ],
    "long": [
        "for i in range(3000):\n    print(i, 'x' * 40)",
        "'y' * 200_000",
        "import sys\nfor i in range(200):\n    sys.stderr.write(f'{i}\\n')",
    ],
    "comms": [
        "from comm import create_comm\nc = create_comm(target_name='kk.test', data={'n': 1})",
        "c.send({'n': 2}); c.close()",
        "get_ipython().kernel.comm_manager.register_target('kk.t2', lambda comm, msg: None)",
        "print(sorted(get_ipython().kernel.comm_manager.targets))",
    ],
    "magics": [
        "%%capture cap\nprint('captured')",
        "print(cap.stdout.strip())",
        "%time sum(range(10))",
        "x = [i * i for i in range(10)]\nx",
    ],
}

_ADDRESS = re.compile(r"0x[0-9a-f]{6,}")
_TIMES = re.compile(r"(CPU times|Wall time):.*")


def make_notebook(cells: list[str], *, kernel_name: str = "python3") -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(src) for src in cells]
    nb.metadata["kernelspec"] = {
        "name": kernel_name,
        "display_name": "Python 3",
        "language": "python",
    }
    return nb


def _scrub(value: Any) -> Any:
    if isinstance(value, str):
        return _TIMES.sub(r"\1: <t>", _ADDRESS.sub("0x<addr>", value))
    if isinstance(value, list):
        return [_scrub(v) for v in value]
    if isinstance(value, dict):
        return {k: _scrub(v) for k, v in value.items()}
    return value


def _stream_runs_sorted(outputs: list[Any]) -> list[Any]:
    """Each run of adjacent stream outputs as one output per stream, stdout before stderr:
    a kernel flushes its two streams independently and in chunks of its own timing, so
    their relative order and where one output ends differ from run to run; the text of
    each stream does not."""
    result: list[Any] = []
    run: list[Any] = []
    for o in [*outputs, None]:
        if isinstance(o, dict) and o.get("output_type") == "stream":
            run.append(o)
            continue
        for name in sorted({str(r.get("name")) for r in run}, key=lambda n: n != "stdout"):
            text = "".join(str(r.get("text", "")) for r in run if str(r.get("name")) == name)
            result.append({"output_type": "stream", "name": name, "text": text})
        run = []
        if o is not None:
            result.append(o)
    return result


def normalised(nb: nbformat.NotebookNode) -> list[dict[str, Any]]:
    """The cells' outputs and counts, without ids, timestamps, addresses or timings."""
    out = []
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        cell = copy.deepcopy(cell)
        out.append(
            {
                "source": cell.source,
                "execution_count": cell.get("execution_count"),
                "outputs": _stream_runs_sorted(_scrub([dict(o) for o in cell.get("outputs", [])])),
            }
        )
    return out
