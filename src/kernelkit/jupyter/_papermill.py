"""papermill's engine on kernelkit: ``papermill --engine kernelkit in.ipynb out.ipynb``.

Registered through papermill's ``papermill.engine`` entry point. It is papermill's own
nbclient engine with :class:`kernelkit.jupyter.AsyncKernelManager` as the kernel
manager, so the kernel (a kernelspec name or a kernel type id such as
``env/<env-id>/python3``, from ``-k`` or the notebook) starts on kernelkit's launch path.
"""

from __future__ import annotations

from typing import Any

from papermill.engines import NBClientEngine

from kernelkit.jupyter._manager import AsyncKernelManager

__all__ = ["KernelkitEngine"]


class KernelkitEngine(NBClientEngine):  # type: ignore[misc]
    """papermill's nbclient engine, with kernels launched and talked to by kernelkit."""

    @classmethod
    def execute_managed_notebook(cls, nb_man: Any, kernel_name: str, **kwargs: Any) -> Any:
        kwargs.setdefault("kernel_manager_class", AsyncKernelManager)
        return super().execute_managed_notebook(nb_man, kernel_name, **kwargs)
