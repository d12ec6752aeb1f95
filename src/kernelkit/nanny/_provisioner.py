"""Kernels supervised by a nanny: :class:`NannyProvisioner` (entry point
``nanny-provisioner``)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import orjson

from kernelkit._connection import ConnectionInfo, connection_file_path
from kernelkit._errors import KernelError, KernelStartError, ProvisioningError
from kernelkit.nanny._first import NANNY_CODE
from kernelkit.nanny._prepare import prepare_early
from kernelkit.nanny._wire import EVENT_DIED, EVENT_RESTARTED, NannyConfig, control_wants_curve
from kernelkit.provisioning import (
    EXIT_STATUS_UNKNOWN,
    KernelProvisionerBase,
    LaunchParams,
    OutputCapture,
    base_environ,
)
from kernelkit.provisioning._exitwatch import ExitWatch
from kernelkit.provisioning._procfs import PidHandle, open_pid
from kernelkit.specs import KernelSpec
from kernelkit.transport import NannyControl

__all__ = ["NannyProvisioner"]

# The nanny's own start (Python, imports) on top of the kernel's start timeout.
_NANNY_START = 30.0
_NANNY_EXIT = 10.0
_READY_LIMIT = 1 << 20


class NannyProvisioner(KernelProvisionerBase):
    """Runs the kernel under a nanny (``python -m kernelkit.nanny``) on this machine.

    The nanny launches the kernel (kernel-chosen ports, as
    :class:`~kernelkit.provisioning.LocalProvisioner` does: it runs one), adopts every
    process the kernel orphans (child subreaper), keeps its output, and answers signed
    control requests; the connection file names it (``kernelkit_nanny``), so a process
    that did not start the kernel can interrupt, restart and stop it and hear of its
    death (:func:`kernelkit.nanny.attach`). If this process dies, the nanny stops the
    kernel and everything it started within ``owner_grace`` seconds, unless ``detached``.

    The nanny's control socket is CurveZMQ-encrypted whenever it listens on the network
    (``control_encryption="auto"``; ``"curve"``: always; ``"none"``: plain text, only
    when asked for): the connection file carries its public key only.

    Options: ``detached``, ``owner_grace``, ``control_encryption``, ``python`` (the
    interpreter that runs the nanny; it needs kernelkit), and the LocalProvisioner options
    it passes on
    (``port_mode``, ``ip``, ``transport``, ``encryption``, ``runtime_dir``, ``startup_timeout``,
    ``bind_retries``, ``output_lines``, ``output_bytes``, ``log_file``,
    ``shutdown_wait_time``, ``stable_start_time``).
    """

    def __init__(
        self,
        *,
        kernel_id: str,
        kernel_spec: KernelSpec,
        detached: bool = False,
        owner_grace: float = 1.0,
        control_encryption: str = "auto",
        python: str | None = None,
        runtime_dir: str | os.PathLike[str] | None = None,
        startup_timeout: float = 60.0,
        shutdown_wait_time: float | None = None,
        stable_start_time: float | None = None,
        **options: Any,
    ) -> None:
        local = {k: v for k, v in options.items() if k in _LOCAL_OPTIONS}
        super().__init__(
            kernel_id=kernel_id,
            kernel_spec=kernel_spec,
            **{k: v for k, v in options.items() if k not in _LOCAL_OPTIONS},
        )
        self._detached = detached
        self._owner_grace = float(owner_grace)
        control_wants_curve(control_encryption, "127.0.0.1")  # a wrong choice fails here
        self._control_encryption = control_encryption
        self._python = python or sys.executable
        self._runtime_dir = Path(runtime_dir) if runtime_dir is not None else None
        self._startup_timeout = float(startup_timeout)
        self._shutdown_wait_time = shutdown_wait_time
        self._stable_start_time = stable_start_time
        self._options: dict[str, Any] = {
            **local,
            "startup_timeout": self._startup_timeout,
            "runtime_dir": str(self._runtime_dir) if self._runtime_dir else None,
        }
        self._key: bytes | None = None
        self._nanny_key = b""  # the nanny's CurveZMQ public key, when it is encrypted
        self._params: tuple[dict[str, str], str | None, tuple[str, ...]] | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._nanny_watch: ExitWatch | None = None
        self._stderr: OutputCapture | None = None
        self.control: NannyControl | None = None
        #: The nanny's control address and pid, once launched (or attached).
        self.nanny_address: str | None = None
        self.nanny_pid: int | None = None
        #: The kernel's pid (on the nanny's machine).
        self.pid: int | None = None
        self._connection_file: Path | None = None
        self._died: asyncio.Future[int] | None = None
        self._tail: list[str] = []
        self._keep_nanny = False  # cleanup(restart=True): the next launch restarts in place
        #: The nanny started the kernel as prepared here (the last launch; see _prepare).
        self._started_early = False

    # ------------------------------------------------------------------ properties

    @property
    def has_process(self) -> bool:
        return self.control is not None

    @property
    def connection_file(self) -> Path | None:
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
        """Prepare the nanny's command; the kernel's environment, directory and extra
        arguments go to the nanny, which builds the kernel's command line itself."""
        kernel_env = base_environ(env, inherit_env=inherit_env)
        self._params = (
            kernel_env,
            os.fspath(cwd) if cwd is not None else None,
            tuple(extra_arguments),
        )
        self._connection_file = connection_file_path(self.kernel_id, runtime_dir=self._runtime_dir)
        return LaunchParams(cmd=self._nanny_command(), env=dict(os.environ), cwd=None)

    # Hooks for a nanny elsewhere (SSHProvisioner).

    def _nanny_command(self) -> tuple[str, ...]:
        return (self._python, "-c", NANNY_CODE)

    def _nanny_config(
        self, env: dict[str, str], cwd: str | None, extra: tuple[str, ...]
    ) -> NannyConfig:
        return NannyConfig(
            kernel_id=self.kernel_id,
            spec=self.kernel_spec,
            env=env,
            cwd=cwd,
            extra_arguments=extra,
            options={k: v for k, v in self._options.items() if v is not None},
            owner_pid=os.getpid(),
            detached=self._detached,
            owner_grace=self._owner_grace,
            control_encryption=self._control_encryption,
        )

    async def _reach(
        self, connection: Mapping[str, Any], control: str | None
    ) -> tuple[dict[str, Any], str | None]:
        """Where this process reaches the kernel's ports and the nanny (here: as told)."""
        return dict(connection), control

    def _describe_failure(self, message: str) -> str:
        return message

    def _prepare_early(self, config: NannyConfig) -> dict[str, Any] | None:
        """The request's ``"early"`` block: the kernel's launch, prepared here (None: the
        nanny prepares it)."""
        return prepare_early(config)

    def _forget_early(self, early: dict[str, Any] | None) -> None:
        """Remove the connection file prepared for a nanny that did not start its kernel
        (one on this machine: a nanny elsewhere removes its own)."""
        if early is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(early["connection_file"])

    async def launch_kernel(
        self,
        cmd: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        cwd: str | None = None,
    ) -> ConnectionInfo:
        """Start the nanny (or, after ``cleanup(restart=True)``, ask the running one to
        restart the kernel) and wait until the kernel's ports are known.

        Raises:
            KernelStartError: the kernel (or the nanny) failed to start.
            ProvisioningError: :meth:`pre_launch` was not called.
        """
        if self._params is None:
            raise ProvisioningError(
                f"kernel {self.kernel_spec.name!r}: call pre_launch() before launch_kernel()"
            )
        self._died = asyncio.get_running_loop().create_future()
        if self._keep_nanny and self.control is not None:
            self._keep_nanny = False
            status = await self.control.request(
                "restart", timeout=self._startup_timeout + _NANNY_START, grace=0
            )
            connection, _ = await self._reach(status["connection"], None)
            return self._connected(connection, status.get("pid"))
        self._keep_nanny = False
        env_k, cwd_k, extra = self._params
        config = self._nanny_config(env_k, cwd_k, extra)
        # The kernel's launch prepared here, so the nanny starts it before its imports.
        early = self._prepare_early(config)
        try:
            ready = await self._spawn_nanny(cmd, env, config, early=early)
        except BaseException:
            self._forget_early(early)
            raise
        if ready.get("status") != "ok":
            self._forget_early(early)  # (a nanny that failed may not have got to it)
            message = str(ready.get("message", "the nanny failed"))
            err = KernelStartError(self._describe_failure(message))
            err.exit_code = ready.get("exit_code")
            err.output_tail = tuple(ready.get("output_tail") or ())
            raise err
        self._key = str(ready["connection"]["key"]).encode("utf-8", "surrogateescape")
        self._started_early = ready.get("prepared") is True
        connection, control = await self._reach(ready["connection"], str(ready["control"]))
        assert control is not None
        self.nanny_address = control
        self.nanny_pid = int(ready["nanny_pid"])
        self._nanny_key = str(ready.get("control_publickey") or "").encode("ascii")
        self.control = NannyControl(
            self.nanny_address, key=self._key, server_key=self._nanny_key, on_event=self._on_event
        )
        await self.control.subscribe()
        return self._connected(connection, ready.get("pid"))

    def _connected(self, connection: Mapping[str, Any], pid: object) -> ConnectionInfo:
        assert self._key is not None
        key = self._key.decode("utf-8", "surrogateescape")
        info = ConnectionInfo.from_dict({**connection, "key": key}, source="the nanny")
        self.pid = pid if isinstance(pid, int) else None
        self.connection_info = info
        return info

    async def _spawn_nanny(
        self,
        cmd: Sequence[str],
        env: Mapping[str, str] | None,
        config: NannyConfig,
        *,
        early: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        err_r, err_w = OutputCapture.new_pipe()
        try:
            proc = _popen_nanny(cmd, env, err_w)
        except OSError as exc:
            os.close(err_r)
            raise KernelStartError(
                f"cannot start the nanny ({cmd[0]}): {exc.strerror or exc}",
                kernel_name=self.kernel_spec.name,
            ) from exc
        finally:
            os.close(err_w)
        self._proc = proc
        self._stderr = OutputCapture(max_lines=200)
        self._stderr.attach(loop, [("stderr", err_r)])
        handle = open_pid(proc.pid) or PidHandle(proc.pid, None, None)
        self._nanny_watch = ExitWatch(handle, popen=proc, loop=loop)
        assert proc.stdin is not None
        assert proc.stdout is not None
        request = config.to_dict()
        if early is not None:
            request["early"] = early
        proc.stdin.write(orjson.dumps(request) + b"\n")
        proc.stdin.flush()  # stdin stays open: its end tells the nanny we are gone
        line = await self._read_line(proc.stdout.fileno(), self._startup_timeout + _NANNY_START)
        if not line:
            status = self._nanny_watch.poll()
            self._stderr.drain()
            raise KernelStartError(
                self._describe_failure("the nanny exited before it reported the kernel's ports"),
                kernel_name=self.kernel_spec.name,
                exit_code=status,
                output_tail=self._stderr.tail(20),
            )
        try:
            ready = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            raise KernelStartError(
                f"the nanny answered something that is not JSON: {line[:200]!r}",
                kernel_name=self.kernel_spec.name,
            ) from exc
        if not isinstance(ready, dict):
            raise KernelStartError("the nanny's answer is not an object")
        return ready

    async def _read_line(self, fd: int, timeout: float) -> bytes:
        """One line from the nanny's stdout (event-driven); b"" if it closed first."""
        loop = asyncio.get_running_loop()
        done: asyncio.Future[bytes] = loop.create_future()
        buf = bytearray()
        os.set_blocking(fd, False)

        def readable() -> None:
            try:
                chunk = os.read(fd, 65536)
            except BlockingIOError:
                return
            buf.extend(chunk)
            if (not chunk or b"\n" in buf or len(buf) > _READY_LIMIT) and not done.done():
                done.set_result(bytes(buf).split(b"\n", 1)[0] if chunk else b"")

        loop.add_reader(fd, readable)
        try:
            return await asyncio.wait_for(done, timeout)
        except asyncio.TimeoutError:
            raise KernelStartError(
                f"the nanny did not report the kernel's ports within {timeout:g} s",
                kernel_name=self.kernel_spec.name,
            ) from None
        finally:
            loop.remove_reader(fd)

    def _on_event(self, kind: str, content: Mapping[str, Any]) -> None:
        if kind == EVENT_DIED and not content.get("restarting"):
            # (A restart asked by another client is not a death: kernel_restarted follows.)
            self._tail = [str(x) for x in content.get("output_tail") or ()]
            status = content.get("exit_status")
            if self._died is not None and not self._died.done():
                self._died.set_result(status if isinstance(status, int) else EXIT_STATUS_UNKNOWN)
        elif kind == EVENT_RESTARTED and self._died is not None and self._died.done():
            self._died = asyncio.get_running_loop().create_future()

    # ------------------------------------------------------------------ lifecycle

    def _nanny_gone(self) -> bool:
        return self._nanny_watch is not None and self._nanny_watch.poll() is not None

    async def poll(self) -> int | None:
        if self._died is not None and self._died.done():
            return self._died.result()
        if self.control is None or self._nanny_gone():
            return EXIT_STATUS_UNKNOWN
        return None

    async def wait(self) -> int | None:
        if self._died is None:
            return await self.poll()
        waits: list[asyncio.Future[Any]] = [self._died]
        if self._nanny_watch is not None:
            waits.append(self._nanny_watch.exited)
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        return await self.poll()

    async def _ask(self, action: str, **fields: Any) -> None:
        """Ask the nanny for ``action``; nothing if it is gone, or goes before it answers
        (the kernel went with it: there is nothing left to signal or stop)."""
        control, watch = self.control, self._nanny_watch
        if control is None or self._nanny_gone():
            return
        request: asyncio.Future[Any] = asyncio.ensure_future(control.request(action, **fields))
        if watch is None:
            await request
            return
        waits: set[asyncio.Future[Any]] = {request, watch.exited}
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        if request.done():
            request.result()
            return
        request.cancel()
        await asyncio.gather(request, return_exceptions=True)

    async def send_signal(self, signum: int) -> None:
        """Signal the kernel's process group, through the nanny."""
        await self._ask("signal", signum=int(signum))

    async def shutdown_requested(self, restart: bool = False) -> None:
        await self._ask("shutdown_requested")

    async def terminate(self, restart: bool = False) -> None:
        await self._ask("terminate")

    async def kill(self, restart: bool = False) -> None:
        await self._ask("kill")

    async def stop(self, *, grace: float | None = None, restart: bool = False) -> int | None:
        """Stop the kernel (terminate, ``grace`` seconds, kill). Unless a restart follows,
        the nanny goes with it (and, on another host, the ssh connection that carries it):
        nothing of ours runs once this returns, whether or not :meth:`cleanup` follows."""
        status = await super().stop(grace=grace, restart=restart)
        if not restart:
            await self._end_nanny()
        return status

    async def cleanup(self, restart: bool = False) -> None:
        """Stop the nanny (it stops whatever is left of the kernel and removes its files);
        with ``restart=True`` it stays, and the next launch restarts the kernel in place
        (same key, same ports where free)."""
        if restart and self.control is not None and not self._nanny_gone():
            self._keep_nanny = True
            return
        self._keep_nanny = False
        await self._end_nanny()
        if not restart:
            self._key = None
        self._connection_file = None

    async def _end_nanny(self) -> None:
        """Ask the nanny to stop (the kernel, its descendants, its files) and wait for its
        process (ssh's, for another host) to exit; kill it past the limit."""
        control, self.control = self.control, None
        if control is not None:
            with contextlib.suppress(KernelError):
                if not self._nanny_gone():
                    await control.request("stop", grace=0, timeout=_NANNY_EXIT)
            await control.aclose()
        await self._release_nanny()

    async def disconnect(self) -> None:
        """Let go of the nanny without stopping anything: close the control connection
        and the owner's link (the nanny's stdin). A detached kernel keeps running, to be
        re-attached (:meth:`load_provisioner_info` with :meth:`get_provisioner_info`'s
        answer, or :class:`~kernelkit.nanny.AttachedKernel`); any other stops after
        ``owner_grace`` seconds, as if this process had exited."""
        control, self.control = self.control, None
        if control is not None:
            await control.aclose()
        watch, self._nanny_watch = self._nanny_watch, None
        proc, self._proc = self._proc, None
        if proc is not None:
            for stream in (proc.stdin, proc.stdout):
                if stream is not None:
                    with contextlib.suppress(OSError):
                        stream.close()
        if watch is not None:
            # It lives on; once it exits, reap it (our child) and stop watching.
            _DISOWNED.add(watch)
            watch.exited.add_done_callback(lambda _: _reap_disowned(watch))
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None

    async def _release_nanny(self) -> None:
        watch, self._nanny_watch = self._nanny_watch, None
        proc, self._proc = self._proc, None
        if proc is not None and proc.stdin is not None:
            with contextlib.suppress(OSError):
                proc.stdin.close()  # the nanny reads the end of its owner
        if watch is not None:
            if watch.poll() is None:
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(watch.wait(), _NANNY_EXIT)
            if watch.poll() is None and proc is not None:
                proc.send_signal(signal.SIGKILL)
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(watch.wait(), _NANNY_EXIT)
            watch.reap()
            watch.close()
        if proc is not None and proc.stdout is not None:
            proc.stdout.close()
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None

    # ------------------------------------------------------------------ output

    def output_tail(self, n: int = 20) -> list[str]:
        """The last lines the kernel wrote, as of its death (the nanny keeps the rest:
        ``await provisioner.control.request("output")``)."""
        return self._tail[-n:] if n > 0 else []

    # ------------------------------------------------------------------ re-attach

    async def get_provisioner_info(self) -> dict[str, Any]:
        info = await super().get_provisioner_info()
        info.update(
            nanny=self.nanny_address,
            nanny_pid=self.nanny_pid,
            pid=self.pid,
            connection_file=str(self._connection_file) if self._connection_file else None,
        )
        return info

    async def load_provisioner_info(self, provisioner_info: Mapping[str, Any]) -> None:
        """Re-attach to a kernel under a nanny (its owner gone, or detached): this process
        becomes its owner.

        Raises:
            ProvisioningError: the info names no nanny, or the nanny refused.
            KernelTimeout: the nanny did not answer.
        """
        await super().load_provisioner_info(provisioner_info)
        address = provisioner_info.get("nanny")
        if not isinstance(address, str) or self.connection_info is None:
            raise ProvisioningError(
                "provisioner info: 'nanny' (the control address) and 'connection_info' "
                "are needed to re-attach"
            )
        self._key = self.connection_info.key
        self._nanny_key = self.connection_info.nanny_publickey
        cf = provisioner_info.get("connection_file")
        self._connection_file = Path(cf) if isinstance(cf, str) else None
        nanny_pid = provisioner_info.get("nanny_pid")
        self.nanny_pid = nanny_pid if isinstance(nanny_pid, int) else None
        await self._attach(address)

    async def _attach(self, address: str) -> None:
        assert self._key is not None
        loop = asyncio.get_running_loop()
        self._died = loop.create_future()
        control = NannyControl(
            address, key=self._key, server_key=self._nanny_key, on_event=self._on_event
        )
        try:
            await control.request("attach", owner_pid=os.getpid(), detached=self._detached)
            status = await control.subscribe()
        except BaseException:
            await control.aclose()
            raise
        self.control = control
        self.nanny_address = address
        pid = status.get("pid")
        self.pid = pid if isinstance(pid, int) else None
        if status.get("state") == "dead" and not self._died.done():
            exit_status = status.get("exit_status")
            self._died.set_result(exit_status if isinstance(exit_status, int) else -256)
        if self.nanny_pid is not None:
            handle = open_pid(self.nanny_pid)
            if handle is not None:
                self._nanny_watch = ExitWatch(handle, popen=None, loop=loop)


# Nannies let go of by disconnect(), until they exit and are reaped.
_DISOWNED: set[ExitWatch] = set()


def _reap_disowned(watch: ExitWatch) -> None:
    _DISOWNED.discard(watch)
    if watch.exited.done() and not watch.exited.cancelled():
        watch.reap()
    watch.close()


def _popen_nanny(
    cmd: Sequence[str], env: Mapping[str, str] | None, stderr: int
) -> subprocess.Popen[bytes]:
    # Its own session: a Ctrl-C at the owner's terminal is the owner's to handle, and the
    # nanny stops the kernel when the owner goes.
    return subprocess.Popen(
        list(cmd),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=stderr,
        env=dict(env) if env is not None else None,
        start_new_session=True,
    )


_LOCAL_OPTIONS = frozenset(
    {
        "port_mode",
        "ip",
        "transport",
        "encryption",
        "bind_retries",
        "output_lines",
        "output_bytes",
        "log_file",
    }
)
