"""Kernels as local processes: :class:`LocalProvisioner`."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, BinaryIO, Literal

import zmq

from kernelkit._connection import (
    ConnectionInfo,
    allocate_ports,
    connection_file_path,
    new_key,
    write_connection_file,
)
from kernelkit._errors import KernelSpecError, KernelStartError, ProvisioningError
from kernelkit.provisioning._base import LaunchParams, base_environ
from kernelkit.provisioning._capture import (
    DEFAULT_OUTPUT_BYTES,
    DEFAULT_OUTPUT_LINES,
    OutputCapture,
)
from kernelkit.provisioning._encryption import wants_curve
from kernelkit.provisioning._exitwatch import EXIT_STATUS_UNKNOWN, ExitWatch
from kernelkit.provisioning._localprocess import KILL_WAIT, LEFTOVER_GRACE, LocalProcess
from kernelkit.provisioning._ports import PortMode, choose_port_mode
from kernelkit.provisioning._portwait import (
    BIND_ERROR,
    PORT_KEYS,
    BindFailed,
    await_ports,
    no_ports_message,
    write_port_files,
)
from kernelkit.provisioning._procfs import open_pid
from kernelkit.provisioning._proctree import ProcessTree, ReattachInfo
from kernelkit.provisioning._sockets import RegistrationListener
from kernelkit.specs import KernelSpec, connection_file_problem

__all__ = ["LocalProvisioner"]

log = logging.getLogger("kernelkit.provisioning")

_TAIL = 20
_Transport = Literal["tcp", "ipc"]


class LocalProvisioner(LocalProcess):
    """Runs the kernel as a local process in its own session and process group.

    - The kernel chooses its own ports where it can (the rule is in
      :func:`~kernelkit.provisioning.choose_port_mode`): JEP 66 registration, port-0
      write-back, or both at once; parent-chosen ports with a retry on "Address already
      in use" otherwise. :attr:`ports_source` says which report was used.
    - Its exit is an event (pidfd), its stdout/stderr are captured into a ring buffer
      (and ``log_file``; copied to ``echo_output`` if given), and a start failure raises
      :class:`~kernelkit.KernelStartError` with the exit code and the last lines.
    - A failed start leaves nothing: no process, file, socket or fd.

    What shutdown reaches, and what real kernels do to it: see :class:`LocalProcess`.

    Options (also settable from the kernelspec's ``metadata.kernel_provisioner.config``):
    ``port_mode`` ("handshake", "write-back", "auto", "parent"), ``ip``, ``transport``,
    ``runtime_dir``, ``startup_timeout`` (seconds for the kernel to report its ports),
    ``bind_retries``, ``output_lines``, ``output_bytes``, ``log_file``, ``echo_output``
    (a binary stream), ``shutdown_wait_time``, ``stable_start_time``, ``independent``
    (no ``JPY_PARENT_PID``: the kernel outlives this process), ``encryption`` ("auto":
    CurveZMQ when the kernelspec declares ``metadata.supported_encryption: ["curve"]`` and
    ``ip`` is not a loopback address; "curve": always, the spec must declare it; "none").
    """

    def __init__(
        self,
        *,
        kernel_id: str,
        kernel_spec: KernelSpec,
        port_mode: str | None = None,
        ip: str = "127.0.0.1",
        transport: str = "tcp",
        runtime_dir: str | os.PathLike[str] | None = None,
        startup_timeout: float = 60.0,
        bind_retries: int = 3,
        output_lines: int = DEFAULT_OUTPUT_LINES,
        output_bytes: int = DEFAULT_OUTPUT_BYTES,
        log_file: str | os.PathLike[str] | None = None,
        echo_output: BinaryIO | None = None,
        shutdown_wait_time: float | None = None,
        stable_start_time: float | None = None,
        independent: bool = False,
        encryption: str = "auto",
        **kwargs: Any,
    ) -> None:
        super().__init__(
            kernel_id=kernel_id,
            kernel_spec=kernel_spec,
            output_lines=output_lines,
            output_bytes=output_bytes,
            log_file=log_file,
            echo_output=echo_output,
            independent=independent,
            **kwargs,
        )
        if transport not in ("tcp", "ipc"):
            raise ProvisioningError(
                f"kernel {kernel_spec.name!r}: transport must be 'tcp' or 'ipc', not {transport!r}"
            )
        self._port_mode_option = port_mode
        self._curve = wants_curve(kernel_spec, encryption, ip=ip, transport=transport)
        self._ip = ip
        self._transport: _Transport = "ipc" if transport == "ipc" else "tcp"
        self._runtime_dir = Path(runtime_dir) if runtime_dir is not None else None
        self._startup_timeout = float(startup_timeout)
        self._bind_retries = max(0, int(bind_retries))
        self._shutdown_wait_time = shutdown_wait_time
        self._stable_start_time = stable_start_time

        self._connection_file: Path | None = None
        self._registration_file: Path | None = None
        #: How this launch gets its ports, and why (set by pre_launch).
        self.port_mode: PortMode | None = None
        self.port_mode_reason = ""
        #: What told us the ports: "registration", "write-back" or "heartbeat".
        self.ports_source: str | None = None

        self._key: bytes | None = None
        self._curve_keys = (b"", b"")  # the kernel's CurveZMQ keypair, made with the key
        self._prepared: ConnectionInfo | None = None  # what the kernel was given
        self._fallback_mode: PortMode | None = None  # after a sticky-port restart fails
        self._sticky: ConnectionInfo | None = None  # ports to try again on restart
        self._listener: RegistrationListener | None = None

    # ------------------------------------------------------------------ properties

    @property
    def connection_file(self) -> Path | None:
        """The connection file clients read, with the real ports once launched: in the
        runtime directory, named for the kernel id. Set by :meth:`pre_launch` (or
        :meth:`load_provisioner_info`); None again once :meth:`cleanup` (or a failed
        launch) has removed the file."""
        return self._connection_file

    def get_shutdown_wait_time(self, recommended: float = 5.0) -> float:
        return self._shutdown_wait_time if self._shutdown_wait_time is not None else recommended

    def get_stable_start_time(self, recommended: float = 10.0) -> float:
        return self._stable_start_time if self._stable_start_time is not None else recommended

    # ------------------------------------------------------------------ launch

    async def pre_launch(
        self,
        *,
        env: Mapping[str, str] | None = None,
        inherit_env: bool = True,
        cwd: str | os.PathLike[str] | None = None,
        extra_arguments: Sequence[str] = (),
    ) -> LaunchParams:
        """Choose the port mode, write the file the kernel reads, bind the registration
        socket if needed, and build the command line and environment (``env`` and
        ``inherit_env`` as in :meth:`KernelProvisionerBase.pre_launch`).

        Raises:
            KernelSpecError: the spec asks for an unknown port mode, or its argv has no
                ``{connection_file}`` (the kernel could never learn its ports and key).
            ConnectionFileError: the runtime directory or file cannot be written.
            ProvisioningError: a kernel is already running here, or no port is free.
        """
        if self.has_process:
            raise ProvisioningError(
                f"kernel {self.kernel_spec.name!r} ({self.kernel_id}) is already running; "
                "stop it and call cleanup() before launching again"
            )
        self._release_launch_resources()
        spec = self.kernel_spec
        problem = connection_file_problem(spec.argv) if spec.argv else None
        if problem is not None:
            raise KernelSpecError(
                f"kernel {spec.name!r} ({spec.resource_dir}/kernel.json) cannot be launched: "
                f"{problem}"
            )
        mode, reason = choose_port_mode(
            kernel_name=spec.name,
            argv=spec.argv,
            metadata=spec.metadata,
            kernel_protocol_version=spec.kernel_protocol_version,
            transport=self._transport,
            override=self._port_mode_option,
        )
        self._fallback_mode = None
        if self._sticky is not None and mode in ("write-back", "auto", "parent"):
            # A restart: ask the new kernel for the old ports, so clients keep working;
            # if one was taken meanwhile, the kernel dies on a bind error and we fall back.
            self._fallback_mode = mode if mode != "parent" else None
            mode, reason = "parent", "restart: the previous ports, kept for clients"
        self.port_mode, self.port_mode_reason = mode, reason
        if self._key is None:
            self._key = new_key()
            self._curve_keys = zmq.curve_keypair() if self._curve else (b"", b"")
        self._connection_file = connection_file_path(self.kernel_id, runtime_dir=self._runtime_dir)
        try:
            kernel_file = self._prepare_files(mode)
            cmd = spec.format_argv(connection_file=kernel_file)
        except BaseException:
            self._release_launch_resources()
            raise
        return LaunchParams(
            cmd=(*cmd, *extra_arguments),
            env=spec.format_env(base_environ(env, inherit_env=inherit_env)),
            cwd=os.fspath(cwd) if cwd is not None else None,
        )

    def _base_info(self) -> ConnectionInfo:
        assert self._key is not None
        ip = self._ip
        if self._transport == "ipc" and ip in ("127.0.0.1", "localhost"):
            assert self._connection_file is not None
            ip = str(self._connection_file.with_suffix("")) + "-ipc"
        return ConnectionInfo(
            ip=ip,
            transport=self._transport,
            key=self._key,
            kernel_name=self.kernel_spec.name,
            curve_publickey=self._curve_keys[0],
            curve_secretkey=self._curve_keys[1],
        )

    def _prepare_files(self, mode: PortMode) -> Path:
        """Write what the kernel reads; returns the path to put in its argv."""
        assert self._connection_file is not None
        files = write_port_files(
            mode,
            self._base_info(),
            kernel_id=self.kernel_id,
            connection_file=self._connection_file,
            runtime_dir=self._runtime_dir,
            parent_ports=self._parent_ports,
        )
        self._prepared = files.prepared
        if files.listener is not None:
            self._listener = files.listener
        if files.registration_file is not None:
            self._registration_file = files.registration_file
        return files.kernel_file

    def _parent_ports(self, base: ConnectionInfo) -> ConnectionInfo:
        if self._sticky is not None:
            sticky, self._sticky = self._sticky, None
            return base.with_ports(**{k: sticky.port(k[:-5]) for k in PORT_KEYS})
        if base.transport == "ipc":
            return base.with_ports(**{k: n for n, k in enumerate(PORT_KEYS, start=1)})
        ports = allocate_ports(5, ip=base.ip)
        return base.with_ports(**dict(zip(PORT_KEYS, ports, strict=True)))

    async def launch_kernel(
        self,
        cmd: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        cwd: str | None = None,
    ) -> ConnectionInfo:
        """Start the kernel and wait (event-driven) until it has chosen its ports.

        Raises:
            KernelStartError: bad argv, exec failure, death before the ports were known
                (with exit code and last output lines), or no ports within
                ``startup_timeout``. Everything the launch held is released first.
            ProvisioningError: :meth:`pre_launch` was not called.
        """
        if self.port_mode is None or self._prepared is None:
            raise ProvisioningError(
                f"kernel {self.kernel_spec.name!r}: call pre_launch() before launch_kernel()"
            )
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._startup_timeout
        retries = self._bind_retries
        self._exit_status = None
        self._reattached = False
        self.ports_source = None
        self._capture = OutputCapture(
            max_lines=self._output_lines,
            max_bytes=self._output_bytes,
            log_file=self._log_file,
            echo=self._echo,
        )
        self._last_capture = self._capture
        try:
            while True:
                try:
                    info = await self._spawn_and_await_ports(cmd, env, cwd, deadline)
                    break
                except BindFailed:
                    if retries <= 0 and self._fallback_mode is None:
                        raise KernelStartError(
                            f"could not bind its ports after {self._bind_retries + 1} "
                            "attempts with parent-chosen ports (Address already in use)",
                            kernel_name=self.kernel_spec.name,
                            exit_code=self._exit_status,
                            output_tail=self.output_tail(_TAIL),
                        ) from None
                    await self._discard_process()
                    self._rearm_after_bind_failure()
                    if self._fallback_mode is None:
                        retries -= 1
                    else:
                        self._fallback_mode = None
        except BaseException:
            await self._abort_launch()
            raise
        self._finish_launch(info)
        return info

    def _rearm_after_bind_failure(self) -> None:
        """New ports (or, after a restart, the kernel-chosen mode) for the next attempt.

        The kernel's file keeps its path in every mode this can switch between, so the
        command line stays the same.
        """
        fallback = self._fallback_mode
        self._close_listener()
        if fallback is not None:
            self.port_mode = fallback
            self.port_mode_reason = "restart: the previous ports were taken"
        self._prepare_files(self.port_mode or "parent")

    async def _spawn_and_await_ports(
        self,
        cmd: Sequence[str],
        env: Mapping[str, str] | None,
        cwd: str | None,
        deadline: float,
    ) -> ConnectionInfo:
        mode, prepared = self.port_mode, self._prepared
        assert mode is not None
        assert prepared is not None

        def spawn() -> ExitWatch:
            self._spawn(cmd, env, cwd)
            assert self._watch is not None
            return self._watch

        info, self.ports_source = await await_ports(
            mode=mode,
            prepared=prepared,
            connection_file=self._connection_file,
            listener=self._listener,
            spawn=spawn,
            deadline=deadline,
            exited_error=self._died_starting,
            no_ports_error=self._no_ports,
            slow=self._slow_start,
        )
        return info

    def _died_starting(self, status: int) -> BaseException:
        """The error of a kernel that exited before it told its ports."""
        self._exit_status = status
        assert self._capture is not None
        self._capture.drain()
        tail = self.output_tail(_TAIL)
        if self.port_mode == "parent" and any(BIND_ERROR.search(line) for line in tail):
            return BindFailed()
        return KernelStartError(
            "the kernel process exited while starting, before it reported its ports",
            kernel_name=self.kernel_spec.name,
            exit_code=None if status == EXIT_STATUS_UNKNOWN else status,
            output_tail=tail,
        )

    def _slow_start(self, elapsed: float) -> None:
        """Say early that the kernel runs without ports (it may never bind them)."""
        tail = self.output_tail(_TAIL)
        log.warning(
            "kernel %r (pid %s) is running but has not bound its ports after %.0f s; "
            "waiting up to %g s (startup_timeout). Its output so far:%s",
            self.kernel_spec.name,
            self.pid,
            elapsed,
            self._startup_timeout,
            "".join(f"\n    {line}" for line in tail) if tail else " (none)",
        )

    def _no_ports(self) -> KernelStartError:
        listener = self._listener
        message = no_ports_message(
            self.port_mode,
            reason=self.port_mode_reason,
            timeout=self._startup_timeout,
            rejected=listener.rejected[-1] if listener and listener.rejected else "",
        )
        return KernelStartError(
            message, kernel_name=self.kernel_spec.name, output_tail=self.output_tail(_TAIL)
        )

    def _finish_launch(self, info: ConnectionInfo) -> None:
        assert self._connection_file is not None
        if self.port_mode in ("handshake", "auto") and self._listener is not None:
            registered = self._listener.registered
            if registered.done() and not registered.cancelled():
                # The kernel registered: it never writes a connection file, so we do,
                # for clients and for `--existing`.
                write_connection_file(info, self._connection_file)
        self._close_listener()
        self._remove_file(self._registration_file)
        self._registration_file = None
        self.connection_info = info

    # ------------------------------------------------------------------ failure paths

    async def _abort_launch(self) -> None:
        await self._discard_process()
        if self._capture is not None:
            self._capture.close()
            self._capture = None
        self._release_launch_resources()
        self._remove_file(self._connection_file)
        self._connection_file = None

    def _close_listener(self) -> None:
        if self._listener is not None:
            self._listener.close()
            self._listener = None

    def _release_launch_resources(self) -> None:
        self._close_listener()
        self._remove_file(self._registration_file)
        self._registration_file = None
        self._prepared = None
        self.port_mode = None

    @staticmethod
    def _remove_file(path: Path | None) -> None:
        if path is not None:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()

    async def cleanup(self, restart: bool = False) -> None:
        """Release everything: kill what is left, reap, close fds, remove files.

        With ``restart=True`` the key and the ports are kept for the next launch (the
        ports are tried again, so connected clients keep working if they are still free).
        """
        info = self.connection_info
        leftovers, self._leftovers = self._leftovers, None
        if leftovers is not None:
            # Shielded: if this cleanup is cancelled, the leftovers are still stopped.
            await asyncio.shield(leftovers)
        self._shutdown_watch = None
        if self._watch is not None:
            if self._reattached:
                if self._watch.poll() is None:
                    self._signal_all(signal.SIGKILL)
                    with contextlib.suppress(asyncio.TimeoutError):
                        await asyncio.wait_for(self._watch.wait(), KILL_WAIT)
                self._exit_status = self._watch.poll()
                await self._stop_leftovers(grace=LEFTOVER_GRACE)
                self._watch.close()
                self._watch = None
                self._drop_tree()
            else:
                await self._discard_process(grace=LEFTOVER_GRACE)
        if self._capture is not None:
            self._capture.close()
            self._capture = None
        self._release_launch_resources()
        self._remove_file(self._connection_file)
        self._connection_file = None
        self.process = None
        self._reattached = False
        if restart and info is not None and info.ports_chosen:
            self._sticky = info
        else:
            self._sticky = None
            self._key = None

    # ------------------------------------------------------------------ re-attach

    async def get_provisioner_info(self) -> dict[str, Any]:
        info = await super().get_provisioner_info()
        info.update(
            pid=self.pid,
            pgid=self.pgid,
            starttime=self._starttime,
            connection_file=str(self._connection_file) if self._connection_file else None,
            port_mode=self.port_mode,
            log_file=str(self._log_file) if self._log_file else None,
            tree_tag=self._tree.tag if self._tree is not None else None,
        )
        return info

    async def load_provisioner_info(self, provisioner_info: Mapping[str, Any]) -> None:
        """Re-attach to a kernel launched by another LocalProvisioner (maybe elsewhere).

        poll/wait/signals/terminate/kill work afterwards (exit is watched through a
        pidfd); the exit status of a process that is not our child cannot be known and is
        reported as ``EXIT_STATUS_UNKNOWN``. Output captured by the original launcher is
        not available, except through its ``log_file``.

        Raises:
            ProvisioningError: a process is attached already, or the info is malformed.
        """
        if self.has_process:
            raise ProvisioningError(
                f"kernel {self.kernel_spec.name!r}: a kernel process is attached already"
            )
        saved = ReattachInfo.parse(provisioner_info)
        await super().load_provisioner_info(provisioner_info)
        self._connection_file = saved.connection_file
        self._log_file = saved.log_file or self._log_file
        self.port_mode = saved.port_mode
        self.pid, self.pgid, self._starttime = saved.pid, saved.pgid, saved.starttime
        self._reattached = True
        self._exit_status = EXIT_STATUS_UNKNOWN
        if saved.pid is None:
            return
        handle = open_pid(saved.pid, starttime=saved.starttime)
        if handle is None:
            return  # the kernel is gone: poll() reports EXIT_STATUS_UNKNOWN
        self._watch = ExitWatch(handle, popen=None, loop=asyncio.get_running_loop())
        self._tree = ProcessTree(
            self._watch,
            pid=saved.pid,
            pgid=saved.pgid,
            starttime=saved.starttime,
            reattached=True,
            tag=saved.tree_tag,
        )
