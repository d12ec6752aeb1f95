"""jupyter_client-based tools on kernelkit (the optional extra ``kernelkit[jupyter]``).

The only part of kernelkit that imports jupyter_client (DESIGN.md, layer 7):

- :class:`AsyncKernelManager`: jupyter_client's manager, launched and talked to by
  kernelkit, for nbclient, nbconvert (``--ExecutePreprocessor.kernel_manager_class=
  kernelkit.jupyter.AsyncKernelManager``) and papermill; its clients are
  :class:`AsyncBridgeClient`\\ s. :class:`KernelManager` and :class:`BridgeClient` are
  the blocking faces (one loop thread per manager).
- :class:`KernelkitEngine`: papermill's engine (``papermill --engine kernelkit``); this
  one is imported only when asked for, as papermill is not part of the extra.
- :class:`JupyterProvisioner`: runs a provisioner of jupyter_client's (entry point group
  ``jupyter_client.kernel_provisioners``) that a kernelspec names, on kernelkit's launch
  path (kernelkit's provisioner factory picks it for such specs).
- :class:`KernelSpecManager`: every kernel kernelkit finds, for jupyter_server
  (``--ServerApp.kernel_spec_manager_class=kernelkit.jupyter.KernelSpecManager``).
- :class:`ServerKernelManager`: jupyter_server's kernels launched, watched and restarted
  by kernelkit (``--MappingKernelManager.kernel_manager_class=
  kernelkit.jupyter.ServerKernelManager``); imported only when asked for, as
  jupyter_server is not part of the extra.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from kernelkit.jupyter._blocking import BridgeClient, KernelManager
from kernelkit.jupyter._client import AsyncBridgeClient
from kernelkit.jupyter._manager import AsyncKernelManager
from kernelkit.jupyter._provisioner import JupyterProvisioner
from kernelkit.jupyter._specs import KernelSpecManager

if TYPE_CHECKING:
    from kernelkit.jupyter._papermill import KernelkitEngine
    from kernelkit.jupyter._server import ServerKernelManager

__all__ = [
    "AsyncBridgeClient",
    "AsyncKernelManager",
    "BridgeClient",
    "JupyterProvisioner",
    "KernelManager",
    "KernelSpecManager",
    "KernelkitEngine",
    "ServerKernelManager",
]


def __getattr__(name: str) -> Any:
    # papermill and jupyter_server are optional even with the extra: import what needs
    # them only when asked for.
    if name == "KernelkitEngine":
        from kernelkit.jupyter._papermill import KernelkitEngine

        return KernelkitEngine
    if name == "ServerKernelManager":
        from kernelkit.jupyter._server import ServerKernelManager

        return ServerKernelManager
    raise AttributeError(f"module 'kernelkit.jupyter' has no attribute {name!r}")
