"""The kernel's provisioner inside the nanny: :class:`KernelUnderNanny`."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from kernelkit._connection import ConnectionInfo
from kernelkit.nanny._first import EarlyKernel, pdeathsig_command
from kernelkit.provisioning import LocalProvisioner
from kernelkit.provisioning._ports import PortMode

__all__ = ["KernelUnderNanny"]


class KernelUnderNanny(LocalProvisioner):
    """A LocalProvisioner whose kernel gets SIGKILL when the nanny dies
    (:func:`~kernelkit.nanny._early.pdeathsig_command`), and which adopts the kernel the
    nanny started before it existed (``early``): its first launch then writes no file and
    starts no process, it takes over the early kernel's (same key, same path), and waits
    for its ports as for any other. Restarts launch as usual."""

    def __init__(self, *, early: EarlyKernel | None = None, **options: Any) -> None:
        super().__init__(**options)
        self._early = early
        #: The first launch took over the early kernel.
        self.adopted_early = False
        if early is not None:
            self._key = early.key  # the key in the file the early kernel reads

    @property
    def early_pid(self) -> int | None:
        """The early kernel's pid until it is adopted (its exit status is not an orphan's)."""
        return self._early.process.pid if self._early is not None else None

    def discard_early(self) -> None:
        """Stop an early kernel that was not adopted (the launch took another way)."""
        early, self._early = self._early, None
        if early is not None:
            early.discard()

    def _prepare_files(self, mode: PortMode) -> Path:
        early = self._early
        if (
            early is None
            or mode != "write-back"
            or self._connection_file != Path(early.connection_file)
        ):
            self.discard_early()
            return super()._prepare_files(mode)
        self._prepared = self._base_info()  # what the early kernel was given: ports 0
        return Path(early.connection_file)

    def _spawn(self, cmd: Sequence[str], env: Mapping[str, str] | None, cwd: str | None) -> None:
        early, self._early = self._early, None
        if early is None:
            wrapped = pdeathsig_command(tuple(cmd), dict(env) if env is not None else None)
            super()._spawn(wrapped, env, cwd)
            return
        assert self._capture is not None
        self._capture.attach(
            asyncio.get_running_loop(), (("stdout", early.stdout), ("stderr", early.stderr))
        )
        self._adopt(early.process, early.tag)
        self.adopted_early = True

    async def launch_kernel(
        self,
        cmd: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        cwd: str | None = None,
    ) -> ConnectionInfo:
        try:
            return await super().launch_kernel(cmd, env=env, cwd=cwd)
        finally:
            self.discard_early()
