"""Every kernel kernelkit finds, for jupyter_server: :class:`KernelSpecManager`.

``jupyter server --ServerApp.kernel_spec_manager_class=kernelkit.jupyter.KernelSpecManager``
lists what :class:`kernelkit.KernelFinder` finds (kernelspecs, each environment's
kernels, interpreters with ipykernel, plugins' kernels) instead of the kernelspec
directories alone.

- Names are valid in URLs and kernelspec names, and stable across restarts: a
  kernelspec keeps its own name (``python3``, so notebooks naming it still find it);
  any other kernel type's id becomes its name with ``/`` turned into ``--``
  (``env/myenv-1a2b3c4d/python3`` -> ``env--myenv-1a2b3c4d--python3``).
- Logos and other resources are served from the kernelspec's directory.
- A kernel starts with its environment activated and its own interpreter: when the
  server asks for the spec to launch (:meth:`KernelSpecManager.get_kernel_spec`), the
  kernel type is prepared (activation runs then, once, cached) and the spec carries the
  absolute interpreter and the complete activated environment.
- Broken kernels are left out of the listing, each logged once with its reasons.
"""

from __future__ import annotations

import os
import re
from typing import Any

from jupyter_client.kernelspec import KernelSpec as JupyterKernelSpec
from jupyter_client.kernelspec import KernelSpecManager as JupyterKernelSpecManager
from jupyter_client.kernelspec import NoSuchKernel as JupyterNoSuchKernel

from kernelkit import KernelError, KernelFinder, KernelSpec, KernelType
from kernelkit.specs import (
    DEFAULT_PROVISIONER,
    JUPYTER_PROVISIONERS,
    installed_provisioners,
    provisioner_choice,
)

__all__ = ["KernelSpecManager", "jupyter_name"]

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")
# A kernelspec's argv names its connection file as this template; format_argv fills it in
# (made absolute), so a placeholder at the root comes back as itself.
_CONNECTION_FILE = "{connection_file}"
_PLACEHOLDER = "/" + _CONNECTION_FILE


def jupyter_name(kernel: KernelType) -> str:
    """The name jupyter_server shows for ``kernel``: a kernelspec's own name, else the
    id with ``/`` as ``--`` and any other character not allowed in a kernelspec name
    as ``_``."""
    if kernel.provider == "spec":
        return _UNSAFE.sub("_", kernel.name)
    return _UNSAFE.sub("_", kernel.id.replace("/", "--"))


def _argv(spec: KernelSpec) -> list[str]:
    """The spec's argv with a bare ``python`` made the environment's own interpreter."""
    argv = spec.format_argv(connection_file=_PLACEHOLDER)
    return [arg.replace(_PLACEHOLDER, _CONNECTION_FILE) for arg in argv]


def _spec_dict(spec: KernelSpec, kernel: KernelType) -> dict[str, Any]:
    data = spec.to_dict()
    data["argv"] = _argv(spec)
    data["display_name"] = kernel.display_name or spec.display_name
    metadata = dict(data.get("metadata") or {})
    metadata["kernelkit"] = {"id": kernel.id}
    if kernel.environment is not None:
        metadata["kernelkit"]["environment"] = {
            "name": kernel.environment.name,
            "kind": str(kernel.environment.kind),
            "prefix": str(kernel.environment.prefix),
        }
    data["metadata"] = metadata
    return data


def _server_cannot_launch(spec: KernelSpec) -> str | None:
    """Why jupyter_server cannot launch ``spec`` itself: a spec launched through one of
    kernelkit's own provisioners (a remote server's kernel, say), or with no argv."""
    if not spec.argv:
        return "it has no command line (argv) for jupyter_server to run"
    try:
        name, _ = provisioner_choice(spec)
    except KernelError as exc:
        return str(exc)
    if name != DEFAULT_PROVISIONER and name not in installed_provisioners(JUPYTER_PROVISIONERS):
        return (
            f"it is launched through kernelkit's provisioner {name!r}, which jupyter_server "
            "cannot use"
        )
    return None


class KernelSpecManager(JupyterKernelSpecManager):
    """jupyter_client's ``KernelSpecManager`` listing every kernel kernelkit finds."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._finder = KernelFinder()
        self._ids: dict[str, KernelType] = {}
        self._reported: set[tuple[str, tuple[str, ...]]] = set()

    @property
    def finder(self) -> KernelFinder:
        """The :class:`kernelkit.KernelFinder` listing the kernels."""
        return self._finder

    def _listing(self, *, refresh: bool = False) -> dict[str, KernelType]:
        found = self._finder.find(refresh=refresh)
        kernels: dict[str, KernelType] = {}
        for problem in found.problems:
            self._report(f"kernel provider {problem.provider}", (problem.reason,))
        for kernel in found:
            if kernel.problems or kernel.spec is None:
                reasons = kernel.problems or ("it has no kernelspec to launch",)
                self._report(f"kernel {kernel.id}", reasons)
                continue
            unusable = _server_cannot_launch(kernel.spec)
            if unusable is not None:
                self._report(f"kernel {kernel.id}", (unusable,))
                continue
            name = jupyter_name(kernel)
            if name in kernels:
                self._report(
                    f"kernel {kernel.id}",
                    (f"its name {name!r} is taken by {kernels[name].id}",),
                )
                continue
            kernels[name] = kernel
        self._ids = kernels
        return kernels

    def _report(self, what: str, reasons: tuple[str, ...]) -> None:
        key = (what, reasons)
        if key not in self._reported:
            self._reported.add(key)
            self.log.warning("kernelkit: %s is left out: %s", what, "; ".join(reasons))

    def kernel_type(self, kernel_name: str) -> KernelType:
        """The kernel listed as ``kernel_name``.

        Raises:
            jupyter_client.kernelspec.NoSuchKernel: no kernel has that name.
        """
        return self._kernel(kernel_name)

    def _kernel(self, kernel_name: str) -> KernelType:
        kernel = self._ids.get(kernel_name) or self._listing().get(kernel_name)
        if kernel is None:
            kernel = self._listing(refresh=True).get(kernel_name)
        if kernel is None:
            raise JupyterNoSuchKernel(kernel_name)
        return kernel

    def find_kernel_specs(self) -> dict[str, str]:
        """Every kernel's name and its resource directory (logos)."""
        return {
            name: str(kernel.spec.resource_dir)
            for name, kernel in self._listing().items()
            if kernel.spec is not None
        }

    def get_all_specs(self) -> dict[str, Any]:
        """Every kernel, as the server's kernelspecs API shows it (nothing is activated
        for this: listing reads the filesystem only)."""
        out: dict[str, Any] = {}
        for name, kernel in self._listing().items():
            spec = kernel.spec
            assert spec is not None
            out[name] = {"resource_dir": str(spec.resource_dir), "spec": _spec_dict(spec, kernel)}
        return out

    def get_kernel_spec(self, kernel_name: str) -> JupyterKernelSpec:
        """The spec to launch ``kernel_name`` with: its environment activated (the
        complete environment is the spec's ``env``) and its own interpreter.

        Raises:
            jupyter_client.kernelspec.NoSuchKernel: no kernel has that name, or it cannot
                be launched (the reason is logged).
        """
        kernel = self._kernel(kernel_name)
        try:
            plan = self._finder.prepare(kernel)
        except KernelError as exc:
            self.log.error("kernelkit: cannot launch kernel %s: %s", kernel.id, exc)
            raise JupyterNoSuchKernel(kernel_name) from exc
        data = _spec_dict(plan.spec, kernel)
        # jupyter_client launches with os.environ updated by the spec's env: the
        # activation is what the activated environment changes (and nothing more goes
        # out through the server's kernelspecs API).
        full = plan.spec.format_env(plan.env)
        data["env"] = {k: v for k, v in full.items() if os.environ.get(k) != v}
        return JupyterKernelSpec(resource_dir=str(plan.spec.resource_dir), **data)
