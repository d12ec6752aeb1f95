"""Provisioners that adopt a kernel started before them: :class:`AdoptingProvisioner`
(``kernelkit run`` starts its kernel before it imports the manager), and the kernel's
provisioner inside the nanny, :class:`KernelUnderNanny`."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from kernelkit._connection import ConnectionInfo
from kernelkit._files import ensure_private_dir
from kernelkit.nanny._first import EarlyKernel, pdeathsig_command
from kernelkit.provisioning import (
    DEFAULT_PROVISIONER,
    KernelProvisionerBase,
    KernelProvisionerFactory,
    LocalProvisioner,
)
from kernelkit.provisioning._ports import PortMode
from kernelkit.specs import KernelSpec, provisioner_choice

log = logging.getLogger("kernelkit.provisioning")

__all__ = ["AdoptingFactory", "AdoptingProvisioner", "KernelUnderNanny"]


class AdoptingProvisioner(LocalProvisioner):
    """A LocalProvisioner that adopts a kernel started before it existed (``early``,
    :func:`~kernelkit.nanny._first.spawn_early`): its first launch then writes no file
    and starts no process, it takes over the early kernel's (same key, same path), and
    waits for its ports as for any other. Only a kernel started exactly as this launch
    would start it is adopted (:meth:`EarlyKernel.matches`: same command, environment and
    directory; and the connection file this launch would write, for a launch that is not
    independent); another is stopped, and the launch goes on as usual. Restarts launch as
    usual."""

    def __init__(self, *, early: EarlyKernel | None = None, **options: Any) -> None:
        super().__init__(**options)
        self._early = early
        #: The first launch took over the early kernel.
        self.adopted_early = False

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
            or self._independent  # (the early kernel dies with its parent)
            or self._curve  # (it has no CurveZMQ keys)
            or self._connection_file != Path(early.connection_file)
        ):
            self.discard_early()
            return super()._prepare_files(mode)
        fresh = self._key
        self._key = early.key  # the key in the file the early kernel reads
        info = self._base_info()
        try:
            given = json.loads(early.content)
        except ValueError:
            given = None
        if given != info.to_dict():  # another address, transport or name
            self._key = fresh
            self.discard_early()
            return super()._prepare_files(mode)
        self._prepared = info  # what the early kernel was given: ports 0
        path = Path(early.connection_file)
        ensure_private_dir(path.parent)  # (the warning a launch gives about others' access)
        return path

    def _spawn(self, cmd: Sequence[str], env: Mapping[str, str] | None, cwd: str | None) -> None:
        early, self._early = self._early, None
        if early is None:
            self._spawn_new(cmd, env, cwd)
            return
        assert self._capture is not None
        pipes = (("stdout", early.stdout), ("stderr", early.stderr))
        early.stdout = early.stderr = -1  # the capture's now: early.discard() does nothing
        self._capture.attach(asyncio.get_running_loop(), pipes)
        self._adopt(early.process, early.tag)
        self.adopted_early = True

    async def launch_kernel(
        self,
        cmd: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        cwd: str | None = None,
    ) -> ConnectionInfo:
        early = self._early
        if early is not None and not early.matches(cmd, env, cwd):
            # Not the kernel this launch starts: stop it, and write the connection file
            # it had (ports 0, or the ports it already wrote back) anew.
            log.info(
                "kernel %s: not adopting the kernel started early (another command, "
                "environment or directory); starting it again",
                self.kernel_spec.name,
            )
            self.discard_early()
            assert self.port_mode is not None
            self._prepare_files(self.port_mode)
        try:
            return await super().launch_kernel(cmd, env=env, cwd=cwd)
        finally:
            self.discard_early()

    async def cleanup(self, restart: bool = False) -> None:
        self.discard_early()  # (a launch that failed before its kernel was started)
        await super().cleanup(restart)

    def _spawn_new(
        self, cmd: Sequence[str], env: Mapping[str, str] | None, cwd: str | None
    ) -> None:
        super()._spawn(cmd, env, cwd)


class KernelUnderNanny(AdoptingProvisioner):
    """The nanny's provisioner: an :class:`AdoptingProvisioner` (the kernel the nanny
    started before its imports) whose kernel gets SIGKILL when the nanny dies
    (:func:`~kernelkit.nanny._first.pdeathsig_command`)."""

    def _spawn_new(
        self, cmd: Sequence[str], env: Mapping[str, str] | None, cwd: str | None
    ) -> None:
        wrapped = pdeathsig_command(tuple(cmd), dict(env) if env is not None else None)
        super()._spawn_new(wrapped, env, cwd)


class AdoptingFactory(KernelProvisionerFactory):
    """A provisioner factory whose first local provisioner adopts ``early`` (an
    :class:`AdoptingProvisioner`); any other provisioner is made as usual, and the early
    kernel stopped. :meth:`release` stops it if no provisioner took it."""

    def __init__(self, early: EarlyKernel, **options: Any) -> None:
        super().__init__(**options)
        self._early: EarlyKernel | None = early

    def create_provisioner_instance(
        self,
        kernel_id: str,
        kernel_spec: KernelSpec,
        *,
        parent: object | None = None,
        provisioner_name: str | None = None,
        config: Mapping[str, Any] | None = None,
    ) -> KernelProvisionerBase:
        early, self._early = self._early, None
        name = provisioner_name
        if name is None:
            name, chosen = provisioner_choice(kernel_spec, default=self.default_provisioner)
            config = chosen if config is None else config
        if early is not None and name == DEFAULT_PROVISIONER and parent is None:
            try:
                return AdoptingProvisioner(
                    kernel_id=kernel_id, kernel_spec=kernel_spec, early=early, **(config or {})
                )
            except TypeError:
                pass  # (an option LocalProvisioner does not take: the usual path says so)
            except BaseException:
                early.discard()  # (an option it rejects)
                raise
        if early is not None:
            early.discard()
        return super().create_provisioner_instance(
            kernel_id, kernel_spec, parent=parent, provisioner_name=name, config=config
        )

    def release(self) -> None:
        """Stop the early kernel if no provisioner took it."""
        early, self._early = self._early, None
        if early is not None:
            early.discard()
