"""jupyter_client's provisioners on kernelkit's launch path: :class:`JupyterProvisioner`.

A kernelspec may name a provisioner registered for jupyter_client (entry point group
``jupyter_client.kernel_provisioners``, e.g. pixi-kernel's). kernelkit's provisioner
factory gives such a spec this provisioner (registered as ``jupyter-client-provisioner``
in ``kernelkit.provisioners``), which runs the named one inside kernelkit's one launch
sequence: its ``pre_launch`` builds the command and environment (with a jupyter_client
``KernelManager`` as its parent, as it expects), its ``launch_kernel`` starts the
process, and kernelkit's manager watches, interrupts and stops it through it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from jupyter_client.manager import AsyncKernelManager as JupyterAsyncKernelManager
from jupyter_client.provisioning.provisioner_base import (
    KernelProvisionerBase as JupyterProvisionerBase,
)

from kernelkit import ConnectionInfo, KernelSpec, ProvisionerNotFound, ProvisioningError
from kernelkit.jupyter._manager import jupyter_kernel_spec
from kernelkit.provisioning import KernelProvisionerBase, LaunchParams, base_environ

__all__ = ["JUPYTER_PROVISIONERS", "JupyterProvisioner"]

#: The entry point group of jupyter_client's provisioners.
JUPYTER_PROVISIONERS = "jupyter_client.kernel_provisioners"


def _load(name: str) -> type[JupyterProvisionerBase]:
    found = {ep.name: ep for ep in entry_points(group=JUPYTER_PROVISIONERS)}
    entry = found.get(name)
    if entry is None:
        raise ProvisionerNotFound(name, installed=sorted(found))
    try:
        cls = entry.load()
    except Exception as exc:  # an installed plugin that fails to import
        raise ProvisioningError(
            f"jupyter_client provisioner {name!r} ({entry.value}) failed to load: "
            f"{type(exc).__name__}: {exc}"
        ) from exc
    if not (isinstance(cls, type) and issubclass(cls, JupyterProvisionerBase)):
        raise ProvisioningError(
            f"jupyter_client provisioner {name!r} ({entry.value}) is not a subclass of "
            "jupyter_client's KernelProvisionerBase"
        )
    return cls


class JupyterProvisioner(KernelProvisionerBase):
    """Runs the jupyter_client provisioner ``jupyter_provisioner`` (made with
    ``jupyter_config``) as a kernelkit provisioner.

    Raises:
        ProvisionerNotFound: no jupyter_client provisioner by that name is installed.
        ProvisioningError: it fails to load or rejects its config.
    """

    def __init__(
        self,
        *,
        kernel_id: str,
        kernel_spec: KernelSpec,
        jupyter_provisioner: str,
        jupyter_config: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(kernel_id=kernel_id, kernel_spec=kernel_spec, **kwargs)
        self.jupyter_provisioner = jupyter_provisioner
        jspec = jupyter_kernel_spec(kernel_spec)
        # jupyter_client's provisioners read their manager (ports, connection file, argv
        # formatting): a plain one, never started. Transport encryption stays off, as
        # kernelkit's clients speak plain ZeroMQ.
        km = JupyterAsyncKernelManager(kernel_name=kernel_spec.name, kernel_id=kernel_id)
        km._kernel_spec = jspec
        if km.has_trait("transport_encryption"):
            km.transport_encryption = "disabled"
        self._km = km
        cls = _load(jupyter_provisioner)
        try:
            self._p = cls(
                kernel_id=kernel_id, kernel_spec=jspec, parent=km, **dict(jupyter_config or {})
            )
        except Exception as exc:  # traitlets raises TraitError, TypeError, ...
            raise ProvisioningError(
                f"kernel {kernel_spec.name!r}: jupyter_client provisioner "
                f"{jupyter_provisioner!r} rejected its config {sorted(jupyter_config or {})}: "
                f"{type(exc).__name__}: {exc}"
            ) from exc
        km.provisioner = self._p
        self._launch_kw: dict[str, Any] = {}

    @property
    def jupyter(self) -> JupyterProvisionerBase:
        """The jupyter_client provisioner underneath."""
        return self._p

    @property
    def has_process(self) -> bool:
        return bool(self._p.has_process)

    @property
    def connection_file(self) -> Path | None:
        path = self._km.connection_file
        return Path(path) if path and self.has_process else None

    async def pre_launch(
        self,
        *,
        env: Mapping[str, str] | None = None,
        inherit_env: bool = True,
        cwd: str | os.PathLike[str] | None = None,
        extra_arguments: Sequence[str] = (),
    ) -> LaunchParams:
        kw: dict[str, Any] = {
            "env": base_environ(env, inherit_env=inherit_env),
            "extra_arguments": list(extra_arguments),
        }
        if cwd is not None:
            kw["cwd"] = os.fspath(cwd)
        prepared = dict(await self._p.pre_launch(**kw))
        cmd = prepared.pop("cmd", None)
        if not cmd:
            raise ProvisioningError(
                f"jupyter_client provisioner {self.jupyter_provisioner!r} prepared no command"
            )
        self._launch_kw = prepared
        return LaunchParams(
            cmd=tuple(cmd), env=dict(prepared.get("env") or {}), cwd=prepared.get("cwd")
        )

    async def launch_kernel(
        self,
        cmd: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        cwd: str | None = None,
    ) -> ConnectionInfo:
        kw = dict(self._launch_kw)
        if env is not None:
            kw["env"] = dict(env)
        if cwd is not None:
            kw["cwd"] = cwd
        info = await self._p.launch_kernel(list(cmd), **kw)
        self.connection_info = ConnectionInfo.from_dict(
            {**info, "kernel_name": self.kernel_spec.name},
            source=f"jupyter_client provisioner {self.jupyter_provisioner!r}",
        )
        return self.connection_info

    async def post_launch(self) -> None:
        await self._p.post_launch()

    async def poll(self) -> int | None:
        status = await self._p.poll()
        return None if status is None else int(status)

    async def wait(self) -> int | None:
        status = await self._p.wait()
        return None if status is None else int(status)

    async def send_signal(self, signum: int) -> None:
        await self._p.send_signal(signum)

    async def kill(self, restart: bool = False) -> None:
        await self._p.kill(restart=restart)

    async def terminate(self, restart: bool = False) -> None:
        await self._p.terminate(restart=restart)

    async def shutdown_requested(self, restart: bool = False) -> None:
        await self._p.shutdown_requested(restart=restart)

    async def cleanup(self, restart: bool = False) -> None:
        try:
            await self._p.cleanup(restart=restart)
        finally:
            if not restart:
                self._km.cleanup_connection_file()

    def get_shutdown_wait_time(self, recommended: float = 5.0) -> float:
        return float(self._p.get_shutdown_wait_time(recommended=recommended))

    def get_stable_start_time(self, recommended: float = 10.0) -> float:
        return float(self._p.get_stable_start_time(recommended=recommended))
