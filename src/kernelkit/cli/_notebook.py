"""``kernelkit run notebook.ipynb`` and ``kernelkit which notebook.ipynb``: a notebook
run in the kernel it finds for itself (:mod:`kernelkit.notebooks`)."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from rich.console import Console

from kernelkit._errors import KernelDied, KernelError, KernelTimeout, NoSuchKernel, NotebookError
from kernelkit.cli._output import OutputPrinter
from kernelkit.cli._starting import START_ERRORS, find_kernel, quiet_library_logs, report_error
from kernelkit.cli._status import (
    EXIT_CODE_RAISED,
    EXIT_INTERRUPTED,
    EXIT_KERNEL_DIED,
    EXIT_KERNEL_FAILED,
    EXIT_OK,
)
from kernelkit.discovery import KernelFinder
from kernelkit.notebooks import Notebook, NotebookKernel, choose_kernel, run_notebook
from kernelkit.protocol import Message

__all__ = ["is_notebook", "run_notebook_command", "which_command"]


def is_notebook(file: Path | None) -> bool:
    """True for a path that names a notebook (``*.ipynb``)."""
    return file is not None and file.suffix.lower() == ".ipynb"


async def _choose(console: Console, nb: Notebook, kernel: str | None) -> NotebookKernel | None:
    if kernel is not None:
        found = await find_kernel(console, kernel)
        if found is None:
            return None
        finder, kernel_type = found
        return NotebookKernel(kernel_type, finder, f"--kernel {kernel} was given")
    try:
        return await asyncio.to_thread(choose_kernel, nb, finder=KernelFinder())
    except NotebookError as exc:
        report_error(console, "no kernel for this notebook", exc)
    return None


def _read(console: Console, path: Path) -> Notebook | None:
    try:
        return Notebook.read(path)
    except NotebookError as exc:
        report_error(console, "cannot run the notebook", exc)
        return None


def which_command(path: Path, *, kernel: str | None = None) -> int:
    """``kernelkit which notebook.ipynb``: print the kernel chosen and why."""
    quiet_library_logs()
    console = Console(stderr=True)
    nb = _read(console, path)
    if nb is None:
        return EXIT_KERNEL_FAILED
    chosen = asyncio.run(_choose(console, nb, kernel))
    if chosen is None:
        return EXIT_KERNEL_FAILED
    print(chosen.kernel_type.id)
    print(f"  because {chosen.reason}", file=sys.stderr)
    return EXIT_OK


async def _run(console: Console, nb: Notebook, kernel: str | None, *, timeout: float) -> int:
    chosen = await _choose(console, nb, kernel)
    if chosen is None:
        return EXIT_KERNEL_FAILED
    console.print(
        f"kernelkit: running {nb.path} in {chosen.kernel_type.id} (because {chosen.reason})",
        highlight=False,
        soft_wrap=True,
    )
    printer = OutputPrinter(sys.stdout, sys.stderr)

    def show(_cell: int, msg: Message) -> None:
        if msg.header.msg_type != "error":  # the failing cell is reported below
            printer(msg)

    try:
        result = await run_notebook(nb, chosen, startup_timeout=timeout, on_output=show)
    except START_ERRORS as exc:
        report_error(console, f"cannot start kernel {chosen.kernel_type.id!r}", exc)
        return EXIT_KERNEL_FAILED
    except (KernelDied, KernelTimeout) as exc:
        report_error(console, f"kernel {chosen.kernel_type.id!r} did not start", exc)
        return EXIT_KERNEL_FAILED
    if result.status == "died":
        report_error(console, f"the kernel died in cell {result.failed_cell}", result.died)
        return EXIT_KERNEL_DIED
    if result.status == "error":
        assert result.error is not None
        printer.show_error(result.error)
        report_error(
            console,
            f"cell {result.failed_cell} raised",
            f"{result.error.get('ename')}: {result.error.get('evalue')}",
        )
        return EXIT_CODE_RAISED
    return EXIT_OK


def run_notebook_command(
    path: Path, *, kernel: str | None, output: Path | None, startup_timeout: float
) -> int:
    """``kernelkit run notebook.ipynb``: run every cell, write the outputs back (or to
    ``output``); the exit status is as for code."""
    quiet_library_logs()
    console = Console(stderr=True)
    nb = _read(console, path)
    if nb is None:
        return EXIT_KERNEL_FAILED
    try:
        status = asyncio.run(_run(console, nb, kernel, timeout=startup_timeout))
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except NoSuchKernel as exc:
        report_error(console, "no kernel for this notebook", exc)
        return EXIT_KERNEL_FAILED
    except KernelError as exc:
        report_error(console, "running the notebook failed", exc)
        return EXIT_KERNEL_FAILED
    if status in (EXIT_OK, EXIT_CODE_RAISED, EXIT_KERNEL_DIED):
        try:
            written = nb.write(output)
        except NotebookError as exc:
            report_error(console, "cannot save the outputs", exc)
            return EXIT_KERNEL_FAILED
        console.print(f"kernelkit: outputs written to {written}", highlight=False)
    return status
