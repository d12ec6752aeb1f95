"""Running every code cell of a notebook in a kernel kernelkit launches:
:func:`run_notebook`.

The cells are sent at once, in order (the kernel runs them one after another, and with
``stop_on_error`` aborts the rest after an error), so no cell waits for a round trip of
the one before. Each cell's outputs are built from its IOPub messages as nbclient builds
them; the notebook's metadata gets the kernel's ``language_info``, its ``kernelspec``
and kernelkit's identity of the kernel (``metadata.kernelkit``: kernel type id,
environment name and kind, Python version) so that the same kernel is chosen elsewhere.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kernelkit._errors import KernelError
from kernelkit.client import AsyncKernelClient
from kernelkit.manager import AsyncKernelManager
from kernelkit.notebooks._choice import NotebookKernel, kernel_identity
from kernelkit.notebooks._document import CellOutputs, Notebook, joined
from kernelkit.protocol import Message

__all__ = ["NotebookRun", "run_notebook"]

OutputCallback = Callable[[int, Message], None]


@dataclass(frozen=True, slots=True)
class NotebookRun:
    """What running a notebook did.

    ``status``: ``ok`` (every cell ran), ``error`` (a cell raised: ``failed_cell`` is its
    index among the notebook's cells, ``error`` its ename, evalue and traceback), or
    ``died`` (the kernel died: ``died`` is why, with exit code and last output).
    """

    status: str
    cells_run: int
    failed_cell: int | None = None
    error: dict[str, Any] | None = None
    died: KernelError | None = None


def _record(nb: Notebook, chosen: NotebookKernel, info: Message | None) -> None:
    kernel = chosen.kernel_type
    metadata = nb.metadata
    language_info = dict(info.content.get("language_info") or {}) if info is not None else {}
    if language_info:
        metadata["language_info"] = language_info
    if kernel.spec is not None:
        metadata["kernelspec"] = {
            "name": kernel.spec.name,
            "display_name": kernel.display_name,
            "language": kernel.language,
        }
    version = language_info.get("version") if language_info.get("name") == "python" else None
    metadata["kernelkit"] = kernel_identity(
        kernel, python_version=version if isinstance(version, str) else None
    )


async def _run_cells(
    nb: Notebook,
    kc: AsyncKernelClient,
    *,
    allow_errors: bool,
    on_output: OutputCallback | None,
) -> NotebookRun:
    cells = nb.data["cells"]
    todo = [
        (i, cell)
        for i, cell in enumerate(cells)
        if isinstance(cell, dict)
        and cell.get("cell_type") == "code"
        and joined(cell.get("source")).strip()
    ]
    displays: dict[str, list[dict[str, Any]]] = {}
    collected: list[list[Message]] = [[] for _ in todo]

    def hook(index: int, sink: list[Message]) -> Callable[[Message], None]:
        def put(msg: Message) -> None:
            sink.append(msg)
            if on_output is not None:
                on_output(index, msg)

        return put

    # All sent now, in order; each waits for its reply and its idle status.
    tasks = [
        asyncio.ensure_future(
            kc.execute_interactive(
                joined(cell.get("source")),
                allow_stdin=False,
                stop_on_error=not allow_errors,
                output_hook=hook(i, collected[n]),
            )
        )
        for n, (i, cell) in enumerate(todo)
    ]
    replies = await asyncio.gather(*tasks, return_exceptions=True)
    run = 0
    failure: NotebookRun | None = None
    for n, ((i, cell), reply) in enumerate(zip(todo, replies, strict=True)):
        if not isinstance(reply, BaseException) and reply.content.get("status") == "aborted":
            continue  # not run (an earlier cell raised): left as it was, as nbclient does
        outputs = CellOutputs(displays=displays)
        for msg in collected[n]:
            outputs.add(msg)
        cell["outputs"] = outputs.outputs
        if isinstance(reply, BaseException):
            cell["execution_count"] = outputs.execution_count
            if failure is None:
                if not isinstance(reply, KernelError):
                    raise reply
                failure = NotebookRun("died", run, failed_cell=i, died=reply)
            continue
        content = reply.content
        status = content.get("status")
        cell["execution_count"] = content.get("execution_count", outputs.execution_count)
        run += 1
        if status == "error" and failure is None and not allow_errors:
            error = {k: content.get(k) for k in ("ename", "evalue", "traceback")}
            failure = NotebookRun("error", run, failed_cell=i, error=error)
    if failure is not None:
        return NotebookRun(failure.status, run, failure.failed_cell, failure.error, failure.died)
    return NotebookRun("ok", run)


async def run_notebook(
    nb: Notebook,
    chosen: NotebookKernel,
    *,
    allow_errors: bool = False,
    startup_timeout: float = 60.0,
    on_output: OutputCallback | None = None,
) -> NotebookRun:
    """Run every code cell of ``nb`` (in place: outputs, counts and metadata are
    written into ``nb.data``) in a new kernel of ``chosen``, started in the notebook's
    folder and stopped at the end. After a cell raises, the rest are not run (they are
    with ``allow_errors``). ``on_output(cell_index, msg)`` sees each IOPub message as
    it comes.

    Raises:
        KernelStartError, KernelSpecError, EnvironmentActivationError, ...: the kernel
            could not be started (as :meth:`kernelkit.AsyncKernelManager.start_kernel`).
        KernelTimeout, KernelDied: it did not become ready within ``startup_timeout``.
    """
    km = AsyncKernelManager(kernel_type=chosen.kernel_type, finder=chosen.finder, autorestart=False)
    await km.start_kernel(cwd=str(nb.path.resolve().parent))
    try:
        # No heartbeat: the manager watches the process, and tells the client at once.
        async with km.client(heartbeat=False) as kc:
            info = await kc.wait_for_ready(timeout=startup_timeout)
            _record(nb, chosen, info)
            return await _run_cells(nb, kc, allow_errors=allow_errors, on_output=on_output)
    finally:
        await km.shutdown_kernel()
