"""Kernels in a sandbox: :class:`SandboxProvisioner` (Linux, bubblewrap).

A :class:`~kernelkit.provisioning.LocalProvisioner` whose kernel runs inside bubblewrap,
reached over ``ipc`` sockets in a directory of its own, with limits from control groups
(or ``setrlimit``) and a wall-clock limit per execute request. What it protects against,
and what it does not: docs/sandbox.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import shutil
import signal
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from kernelkit._connection import ConnectionInfo, connection_file_path
from kernelkit._errors import KernelDied, ProvisioningError
from kernelkit.provisioning._base import LaunchParams
from kernelkit.provisioning._local import LocalProvisioner
from kernelkit.provisioning._procfs import descendants
from kernelkit.provisioning._sandbox_cgroup import Cgroup
from kernelkit.provisioning._sandbox_command import (
    RLIMIT_SIGNALS,
    bwrap_argv,
    bwrap_path,
    cgroup_join_argv,
    hidden_dirs,
    host_environ,
    interpreter_dirs,
    prlimit_argv,
    sandbox_environ,
    setpriv_argv,
)
from kernelkit.provisioning._sandbox_options import (
    DEFAULT_SANDBOX_UID,
    SandboxOptions,
    format_bytes,
)
from kernelkit.provisioning._sandbox_watch import ExecuteWatch
from kernelkit.specs import KernelSpec

__all__ = ["SandboxProvisioner", "sandboxes_dir"]

log = logging.getLogger("kernelkit.provisioning")

# LocalProvisioner options a sandbox decides itself.
_FIXED = ("transport", "ip", "port_mode", "runtime_dir", "independent")
# ipc endpoints are socket paths, which Linux caps at 107 bytes: keep the directory short.
_MAX_BASE = 48


def sandboxes_dir() -> Path:
    """The directory that holds every sandbox's own directory (hidden inside each
    sandbox): ``<Jupyter runtime dir>/sandbox``, or a private directory in the system's
    temporary directory when that path is too long for ``ipc`` socket names."""
    runtime = connection_file_path("x").parent / "sandbox"
    if len(str(runtime)) <= _MAX_BASE:
        return runtime
    return Path(tempfile.gettempdir()) / f"kernelkit-sandbox-{os.getuid()}"


def _private_dir(path: Path) -> None:
    """Create ``path`` (mode 0700) and check that it is ours and not a link: a
    directory in a shared place could have been planted by someone else."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    st = path.lstat()
    if path.is_symlink() or st.st_uid != os.getuid() or st.st_mode & 0o077:
        raise ProvisioningError(
            f"sandbox: {str(path)!r} must be a directory owned by you with mode 0700; "
            "remove it and try again"
        )


class SandboxProvisioner(LocalProvisioner):
    """Runs the kernel in a bubblewrap sandbox (entry point name ``sandbox``).

    The kernel sees the system read-only, its work directory read-write, an empty
    private /tmp, no home directory, no runtime directory, no other sandbox; it has its
    own PID namespace (when its first process exits, every process it started is
    killed by the kernel) and, unless ``network=True``, no network but loopback. It
    reaches its client through ``ipc`` sockets in its own directory. Run by root, it
    runs as ``uid`` (default 65534, "nobody") with no capabilities.

    Options (keywords, or the kernelspec's ``metadata.kernel_provisioner.config``):
    ``network`` (bool), ``work_dir`` (default: a fresh directory removed at shutdown),
    ``ro_paths`` and ``rw_paths`` (lists of absolute paths to bind in), ``hide_paths``
    (directories to show empty), ``env`` (added
    to the kernel's environment), limits ``memory`` and ``file_size`` ("512M" or bytes),
    ``processes`` (count), ``cpu_time`` (seconds of CPU per process), ``wall_clock``
    (seconds per execute request), ``uid``; and every :class:`LocalProvisioner` option
    except ``transport``, ``ip``, ``port_mode``, ``runtime_dir`` and ``independent``.

    Memory and processes are limited by a control group (v2, or v1) where one is
    writable, else by ``setrlimit`` (address space; processes per user). A kernel that
    reaches a limit is stopped and its death (:meth:`died_error`) names the limit:
    ``memory limit 512 MiB reached``.
    """

    def __init__(
        self,
        *,
        kernel_id: str,
        kernel_spec: KernelSpec,
        network: bool = False,
        work_dir: str | os.PathLike[str] | None = None,
        ro_paths: Sequence[str | os.PathLike[str]] | None = None,
        rw_paths: Sequence[str | os.PathLike[str]] | None = None,
        hide_paths: Sequence[str | os.PathLike[str]] | None = None,
        env: Mapping[str, str] | None = None,
        memory: int | str | None = None,
        processes: int | None = None,
        cpu_time: float | None = None,
        file_size: int | str | None = None,
        wall_clock: float | None = None,
        uid: int | None = None,
        **kwargs: Any,
    ) -> None:
        fixed = sorted(set(_FIXED) & set(kwargs))
        if fixed:
            raise ProvisioningError(
                f"kernel {kernel_spec.name!r}: a sandbox sets {', '.join(fixed)} itself; "
                "drop them from the provisioner config"
            )
        self.options = SandboxOptions.parse(
            network=network,
            work_dir=work_dir,
            ro_paths=ro_paths,
            rw_paths=rw_paths,
            hide_paths=hide_paths,
            env=env,
            memory=memory,
            processes=processes,
            cpu_time=cpu_time,
            file_size=file_size,
            wall_clock=wall_clock,
            uid=uid,
        )
        if os.geteuid() != 0 and uid is not None and uid != os.geteuid():
            raise ProvisioningError(
                f"kernel {kernel_spec.name!r}: sandbox uid={uid} needs root; "
                "without root the kernel runs as you"
            )
        digest = hashlib.sha256(kernel_id.encode()).hexdigest()[:12]
        #: The sandbox's own directory (connection file, ipc sockets, default work dir).
        self.sandbox_dir = sandboxes_dir() / digest
        super().__init__(
            kernel_id=kernel_id,
            kernel_spec=kernel_spec,
            transport="ipc",
            runtime_dir=self.sandbox_dir,
            # No JPY_PARENT_PID: in its PID namespace the kernel's parent is pid 1, which
            # ipykernel takes for "my parent died". bubblewrap's --die-with-parent does
            # that job instead.
            independent=True,
            **kwargs,
        )
        self._cgroup: Cgroup | None = None
        self._exec_watch: ExecuteWatch | None = None
        self._limit_reason: str | None = None
        self._stopping: asyncio.Task[None] | None = None
        self._launches = 0

    # ------------------------------------------------------------------ properties

    @property
    def work_dir(self) -> Path:
        """The kernel's writable directory (and its current directory and HOME)."""
        return self.options.work_dir or self.sandbox_dir / "work"

    @property
    def run_as(self) -> int | None:
        """The user id the kernel runs as, when it differs from this process's."""
        if os.geteuid() != 0:
            return None
        return self.options.uid if self.options.uid is not None else DEFAULT_SANDBOX_UID

    @property
    def limit_reached(self) -> str | None:
        """The limit that stopped the kernel, in words, once one has."""
        return self._limit_reason

    # ------------------------------------------------------------------ launch

    async def pre_launch(
        self,
        *,
        env: Mapping[str, str] | None = None,
        inherit_env: bool = True,
        cwd: str | os.PathLike[str] | None = None,
        extra_arguments: Sequence[str] = (),
    ) -> LaunchParams:
        """Prepare the sandbox's directory, control group and environment (with
        ``inherit_env`` only a few harmless host variables are passed on, see
        :data:`~kernelkit.provisioning._sandbox_command.HOST_ENV`); ``cwd`` must be the
        work directory or inside it.

        Raises:
            ProvisioningError: ``cwd`` is outside the work directory, or the sandbox's
                directory cannot be made private.
        """
        work = self._prepare_dirs(cwd)
        uid = self.run_as
        self._limit_reason = None
        params = await super().pre_launch(
            env=host_environ(env, inherit_env=inherit_env),
            inherit_env=False,
            extra_arguments=extra_arguments,
        )
        if uid is not None and self.connection_file is not None:
            os.chown(self.connection_file, uid, uid)
        self._remove_cgroup()
        opts = self.options
        # A new group per launch: a restarted kernel starts with clean event counters.
        self._launches += 1
        self._cgroup = Cgroup.create(
            f"{self.kernel_id}-{self._launches}", memory=opts.memory, processes=opts.processes
        )
        return LaunchParams(
            cmd=params.cmd,
            env=sandbox_environ(params.env, work_dir=work, extra=opts.env),
            cwd=os.fspath(cwd) if cwd is not None else str(work),
        )

    def _prepare_dirs(self, cwd: str | os.PathLike[str] | None) -> Path:
        """Make the sandbox's directory (and default work directory), owned by the
        user the kernel runs as; returns the work directory."""
        work = self.work_dir
        if cwd is not None:
            where = Path(cwd).absolute()
            if where != work and work not in where.parents:
                raise ProvisioningError(
                    f"kernel {self.kernel_spec.name!r}: a sandboxed kernel runs in its work "
                    f"directory; cwd {str(where)!r} is outside it (pass work_dir= instead)"
                )
        _private_dir(self.sandbox_dir.parent)
        self.sandbox_dir.mkdir(mode=0o700, exist_ok=True)
        if self.options.work_dir is None:
            work.mkdir(mode=0o700, exist_ok=True)
        uid = self.run_as
        if uid is not None:
            os.chown(self.sandbox_dir, uid, uid)
            if self.options.work_dir is None:
                os.chown(work, uid, uid)
        return work

    def sandbox_argv(self, cmd: Sequence[str], env: Mapping[str, str]) -> list[str]:
        """The full command line that runs ``cmd`` in this sandbox."""
        bwrap_path()  # first: the missing tool to name is bubblewrap
        opts = self.options
        hidden = hidden_dirs(
            runtime_dir=connection_file_path("x").parent,
            sandboxes_dir=self.sandbox_dir.parent,
            network=opts.network,
            extra=opts.hide_paths,
        )
        inner = list(cmd)
        uid = self.run_as
        if uid is not None:
            inner = setpriv_argv(inner, uid=uid)
        # /tmp and /dev/shm are the sandbox's own: an environment there is hidden too.
        unseen = [*hidden, Path("/tmp"), Path("/dev/shm")]
        under_hidden = [
            d
            for d in interpreter_dirs(cmd[0], env)
            if any(d == h or h in d.parents for h in unseen)
        ]
        argv = bwrap_argv(
            inner,
            kernel_dir=self.sandbox_dir,
            work_dir=self.work_dir,
            hidden=hidden,
            ro_paths=[*under_hidden, *opts.ro_paths],
            rw_paths=opts.rw_paths,
            network=opts.network,
        )
        held = self._cgroup.holds if self._cgroup is not None else frozenset()
        argv = prlimit_argv(
            argv,
            memory=opts.memory if "memory" not in held else None,
            processes=opts.processes if "processes" not in held else None,
            cpu_time=opts.cpu_time,
            file_size=opts.file_size,
        )
        return cgroup_join_argv(argv, self._cgroup.procs_files if self._cgroup else [])

    async def launch_kernel(
        self,
        cmd: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        cwd: str | None = None,
    ) -> ConnectionInfo:
        """Start ``cmd`` in the sandbox (see :meth:`sandbox_argv`) and wait for its ports.

        Raises:
            KernelStartError: as :meth:`LocalProvisioner.launch_kernel`.
            ProvisioningError: bubblewrap (or util-linux) is not installed, or
                :meth:`pre_launch` was not called.
        """
        if not cmd:
            raise ProvisioningError(f"kernel {self.kernel_spec.name!r}: empty command line")
        kernel_env = dict(env or {})
        argv = self.sandbox_argv(cmd, kernel_env)
        return await super().launch_kernel(argv, env=kernel_env, cwd=cwd)

    async def post_launch(self) -> None:
        """Start watching execute requests when a wall-clock or process limit is set."""
        await super().post_launch()
        opts = self.options
        info = self.connection_info
        if info is not None and (opts.wall_clock is not None or opts.processes is not None):
            self._exec_watch = ExecuteWatch(
                info,
                wall_clock=opts.wall_clock,
                check=self._cgroup_reached,
                on_limit=self._reached,
            )

    # ------------------------------------------------------------------ limits

    def _cgroup_reached(self) -> str | None:
        cg = self._cgroup
        return cg.limit_reached() if cg is not None else None

    def _reached(self, reason: str) -> None:
        """A limit was reached: remember why, and stop the sandbox."""
        if self._limit_reason is not None or not self.has_process:
            return
        self._limit_reason = reason
        log.warning(
            "kernel %s (%s): %s; stopping it", self.kernel_spec.name, self.kernel_id, reason
        )
        self._stopping = asyncio.get_running_loop().create_task(
            self.kill(), name=f"kernelkit-sandbox-limit-{self.kernel_id}"
        )

    def death_reason(self, exit_code: int | None) -> str | None:
        """Which limit, if any, explains an exit with ``exit_code``."""
        if self._limit_reason is not None:
            return self._limit_reason
        reached = self._cgroup_reached()
        if reached is not None:
            return reached
        if exit_code is None:
            return None
        signum = exit_code - 128 if exit_code > 128 else -exit_code
        limit = RLIMIT_SIGNALS.get(signum)
        opts = self.options
        if limit == "cpu_time" and opts.cpu_time is not None:
            return f"CPU time limit {opts.cpu_time:g} s reached"
        if limit == "file_size" and opts.file_size is not None:
            return f"file size limit {format_bytes(opts.file_size)} reached"
        return None

    def died_error(
        self, exit_code: int | None, message: str = "the kernel process exited"
    ) -> KernelDied:
        """As :meth:`LocalProvisioner.died_error`, with the limit that was reached (if
        one was) as the message: ``memory limit 512 MiB reached``."""
        reason = self.death_reason(exit_code)
        return super().died_error(exit_code, reason if reason is not None else message)

    # ------------------------------------------------------------------ signals

    def _inside(self) -> list[int]:
        """The processes in the sandbox, not bubblewrap's own two (the outer one, which
        a signal would kill together with the sandbox, and the namespace's init)."""
        pid = self.pid
        if pid is None or not self.has_process:
            return []
        return [p.pid for p in descendants(pid) if p.ppid != pid]

    async def send_signal(self, signum: int) -> None:
        """Signal every process in the sandbox (SIGINT interrupts the kernel)."""
        if signum == signal.SIGKILL:
            await self.kill()
            return
        for pid in self._inside():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signum)

    async def terminate(self, restart: bool = False) -> None:
        """SIGTERM to the processes in the sandbox; the sandbox ends with its kernel."""
        inside = self._inside()
        if not inside:
            await super().terminate(restart=restart)
            return
        for pid in inside:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)

    async def kill(self, restart: bool = False) -> None:
        """SIGKILL to the sandbox: its PID namespace and everything in it ends."""
        await super().kill(restart=restart)
        if self._cgroup is not None:
            self._cgroup.kill_all()

    # ------------------------------------------------------------------ cleanup

    def _remove_cgroup(self) -> None:
        cg, self._cgroup = self._cgroup, None
        if cg is not None:
            cg.kill_all()
            cg.remove()

    async def cleanup(self, restart: bool = False) -> None:
        """Stop watching, release the launch, remove the control group, and (unless
        restarting) the sandbox's directory with its default work directory."""
        watch, self._exec_watch = self._exec_watch, None
        if watch is not None:
            await watch.aclose()
        stopping, self._stopping = self._stopping, None
        if stopping is not None:
            await asyncio.shield(stopping)
        await super().cleanup(restart=restart)
        self._remove_cgroup()
        if not restart:
            shutil.rmtree(self.sandbox_dir, ignore_errors=True)

    async def load_provisioner_info(self, provisioner_info: Mapping[str, Any]) -> None:
        """Refused: a sandbox ends with the process that started it (bubblewrap's
        ``--die-with-parent``), so there is nothing for another process to attach to.

        Raises:
            ProvisioningError: always.
        """
        raise ProvisioningError(
            f"kernel {self.kernel_spec.name!r}: a sandboxed kernel cannot be re-attached; "
            "it ends with the process that started it"
        )

    async def get_provisioner_info(self) -> dict[str, Any]:
        info = await super().get_provisioner_info()
        info["sandbox"] = {**self.options.describe(), "dir": str(self.sandbox_dir)}
        return info
