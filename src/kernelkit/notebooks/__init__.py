"""Notebooks that find their kernel, run without jupyter_client.

- :func:`choose_kernel`: which kernel a notebook runs in, and why (its kernelkit
  identity, its kernelspec, the nearest project environment, its language).
- :func:`run_notebook`: every code cell, outputs built as nbclient builds them; the
  notebook keeps a kernelkit identity of its kernel in its metadata.
- :class:`Notebook`: an nbformat 4 file, read and written without nbformat.

Layer: above the manager (it launches kernels with one), beside ``remote``; the CLI's
``kernelkit run notebook.ipynb`` and ``kernelkit which notebook.ipynb`` use it.
"""

from kernelkit.notebooks._choice import (
    NotebookKernel,
    choose_kernel,
    kernel_identity,
    notebook_language,
)
from kernelkit.notebooks._document import CellOutputs, Notebook
from kernelkit.notebooks._runner import NotebookRun, run_notebook

__all__ = [
    "CellOutputs",
    "Notebook",
    "NotebookKernel",
    "NotebookRun",
    "choose_kernel",
    "kernel_identity",
    "notebook_language",
    "run_notebook",
]
