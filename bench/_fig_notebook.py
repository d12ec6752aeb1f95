"""Figure 11: executing a 50-cell notebook (ipykernel), start to finish.

One sample runs the whole notebook in a new kernel: start, every cell, shutdown.

- kernelkit: ``kernelkit run notebook.ipynb``'s library (:func:`kernelkit.notebooks.run_notebook`:
  kernelkit's manager and client, the cells sent at once in order);
- jupyter_client: nbclient on jupyter_client's ``AsyncKernelManager`` (nbclient's default);
- the bridge (shown as kernelkit in the second group): nbclient on
  ``kernelkit.jupyter.AsyncKernelManager``.

Goals: kernelkit's own <= 0.7x nbclient on jupyter_client; the bridge no slower than
jupyter_client. No floor: running a notebook is what the contestants do, not a primitive.
"""

from __future__ import annotations

import asyncio
import copy
import time
from typing import Any

from bench import _procs
from bench._config import Config
from bench._core import JUPYTER_CLIENT, KERNELKIT, Contestant, Group, Metric, Target

CELLS = 50
TIMEOUT = 60


def _sources() -> list[str]:
    kinds = [
        "x = {i} * 2\nx",
        "print('cell {i}', x)",
        "from IPython.display import display, HTML\ndisplay(HTML('<b>{i}</b>'))",
        "sum(range({i} * 100))",
        "import sys\nsys.stderr.write('warn {i}\\n')",
    ]
    return [kinds[i % len(kinds)].format(i=i) for i in range(CELLS)]


def notebook() -> dict[str, Any]:
    cell = {"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": None}
    return {
        "nbformat": 4,
        "nbformat_minor": 5,
        "metadata": {
            "kernelspec": {
                "name": _procs.IPYKERNEL_SPEC,
                "display_name": "bench",
                "language": "python",
            }
        },
        "cells": [{**cell, "id": f"c{i}", "source": src} for i, src in enumerate(_sources())],
    }


def _check(cells: list[dict[str, Any]]) -> None:
    ran = sum(1 for c in cells if c.get("execution_count"))
    if ran != CELLS:
        raise RuntimeError(f"only {ran} of {CELLS} cells ran")


METRIC_OWN = Metric(
    "run", "50-cell notebook: kernelkit run vs nbclient", "ms",
    target=Target(JUPYTER_CLIENT, "<=", 0.7),
)  # fmt: skip
METRIC_BRIDGE = Metric(
    "run", "50-cell notebook: nbclient on kernelkit.jupyter vs on jupyter_client", "ms",
    target=Target(JUPYTER_CLIENT, "<=", 1.0),
)  # fmt: skip


class KernelkitRun(Contestant):
    name = role = KERNELKIT
    note = "kernelkit.notebooks.run_notebook (kernelkit run notebook.ipynb)"

    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg

    def setup(self) -> None:
        from kernelkit.notebooks import Notebook, choose_kernel, run_notebook

        self.path = self.cfg.tmp / "bench-notebook.ipynb"
        self.Notebook, self.choose, self.run = Notebook, choose_kernel, run_notebook

    def sample(self) -> dict[str, float]:
        nb = self.Notebook(self.path, notebook())
        t0 = time.perf_counter()
        chosen = self.choose(nb)
        result = asyncio.run(self.run(nb, chosen, startup_timeout=TIMEOUT))
        t1 = time.perf_counter()
        if result.status != "ok":
            raise RuntimeError(f"the notebook did not run: {result}")
        _check(nb.data["cells"])
        return {"run": (t1 - t0) * 1000}


class NbclientRun(Contestant):
    def __init__(self, cfg: Config, manager: str, role: str, name: str) -> None:
        self.cfg = cfg
        self.manager = manager
        self.name, self.role = name, role
        self.note = f"nbclient, kernel_manager_class={manager}"

    def setup(self) -> None:
        import nbformat
        from nbclient import NotebookClient

        self.nbformat, self.client = nbformat, NotebookClient

    def sample(self) -> dict[str, float]:
        nb = self.nbformat.from_dict(copy.deepcopy(notebook()))
        t0 = time.perf_counter()
        self.client(nb, kernel_manager_class=self.manager, timeout=TIMEOUT).execute()
        t1 = time.perf_counter()
        _check(nb.cells)
        return {"run": (t1 - t0) * 1000}


JC_MANAGER = "jupyter_client.manager.AsyncKernelManager"
BRIDGE = "kernelkit.jupyter.AsyncKernelManager"


def groups(cfg: Config) -> list[Group]:
    reps, warmup, budget = cfg.reps(2, 6), cfg.pick(0, 1), cfg.pick(60, 240)
    return [
        Group(
            figure=11,
            name="notebook",
            metrics=[METRIC_OWN],
            contestants=[
                lambda: KernelkitRun(cfg),
                lambda: NbclientRun(cfg, JC_MANAGER, JUPYTER_CLIENT, JUPYTER_CLIENT),
            ],
            reps=reps,
            warmup=warmup,
            budget_s=budget,
        ),
        Group(
            figure=11,
            name="notebook-bridge",
            metrics=[METRIC_BRIDGE],
            contestants=[
                lambda: NbclientRun(cfg, BRIDGE, KERNELKIT, "kernelkit.jupyter"),
                lambda: NbclientRun(cfg, JC_MANAGER, JUPYTER_CLIENT, JUPYTER_CLIENT),
            ],
            reps=reps,
            warmup=warmup,
            budget_s=budget,
        ),
    ]
