"""The process half of :class:`~kernelkit.provisioning.LocalProvisioner`: spawning the
kernel with its output captured, watching its exit, signalling it and its descendants,
and stopping it and what it left behind."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, BinaryIO

from kernelkit.provisioning._base import KernelProvisionerBase
from kernelkit.provisioning._capture import (
    DEFAULT_OUTPUT_BYTES,
    DEFAULT_OUTPUT_LINES,
    OutputCapture,
    file_tail,
)
from kernelkit.provisioning._exitwatch import EXIT_STATUS_UNKNOWN, ChildProcess, ExitWatch
from kernelkit.provisioning._launcher import launch_captured
from kernelkit.provisioning._procfs import PidHandle, open_pid
from kernelkit.provisioning._proctree import ProcessTree
from kernelkit.provisioning._reaper import new_tree_tag, tag_environ

__all__ = ["KILL_WAIT", "LEFTOVER_GRACE", "LocalProcess"]

# After SIGKILL a process is gone within milliseconds unless stuck in the kernel (D state);
# never hang a failed start or a cleanup on such a process.
KILL_WAIT = 5.0
# What a process the kernel left behind gets between SIGTERM and SIGKILL once the kernel
# itself has exited: enough to flush and close files, short enough not to hold up a
# shutdown or restart. (Nothing waits for it unless such a process is still running.)
LEFTOVER_GRACE = 1.0


class LocalProcess(KernelProvisionerBase):
    """A kernel running as a local process in its own session and process group (the
    base of :class:`~kernelkit.provisioning.LocalProvisioner`, which adds the launch:
    ports, files, re-attach).

    What shutdown reaches: signals go to the kernel's process group (everything it started
    that did not leave the group, even if re-parented). ``shutdown_requested`` and
    ``terminate``/``kill``/``stop`` also pin every *descendant* of the kernel at that
    moment, in or out of the group (a grandchild that called setsid); the pins persist
    until cleanup, so they are reached even after the kernel exited and they were
    re-parented. A kernel that exits by itself after ``shutdown_requested`` (a graceful
    shutdown) has its pinned descendants that still run stopped as soon as its exit is
    seen: SIGTERM, up to 1 s to exit (watched through pidfds), SIGKILL; ``cleanup`` waits
    for that, and does it itself at the latest. ``terminate``/``kill`` signal the pinned
    descendants with the kernel; after ``stop`` what is left is killed. Out of reach: a
    process that left the group *and* stopped being a descendant before shutdown (a daemon
    that double-forked and setsid'd): it belongs to init now and nothing identifies it as
    ours. The exited kernel stays an unreaped zombie until cleanup, so its group id cannot
    be reused by another process meanwhile.

    What real kernels do to a shutdown or interrupt (seen running them through the
    manager; the manager's escalation copes with each):

    - xeus-python 0.19 exits with code 0 on SIGINT, busy or idle: a signal "interrupt"
      ends the kernel (the manager then sees a death). Its ``interrupt_request`` is
      answered ``ok`` but interrupts nothing: code runs to its end. Nothing interrupts it.
    - bash_kernel (0.10, on ipykernel 7.4) answers ``shutdown_request`` but sometimes
      (about one try in five here, with or without the SIGINT before it) never exits:
      its main thread stays blocked, so shutdown reaches SIGTERM after half the wait
      time. Its ``bash`` runs on a pty in its own session, outside the kernel's group:
      only the pinned descendants reach it.
    - ipykernel 7.4, after ``shutdown_request``, stops the children in its own group
      itself (with psutil), retrying with growing sleeps (0.01 s to 10 s, SIGTERM then
      SIGKILL, about 29 s in all) while any remains; a zombie child it never reaped
      always remains, so such a kernel does not exit by itself in time and shutdown
      reaches SIGTERM. Children in their own session are not its concern: the pinned
      descendants are stopped here once it has exited.

    Options: ``output_lines``, ``output_bytes``, ``log_file``, ``echo_output`` (a binary
    stream), ``independent`` (no ``JPY_PARENT_PID``: the kernel outlives this process).
    """

    def __init__(
        self,
        *,
        output_lines: int = DEFAULT_OUTPUT_LINES,
        output_bytes: int = DEFAULT_OUTPUT_BYTES,
        log_file: str | os.PathLike[str] | None = None,
        echo_output: BinaryIO | None = None,
        independent: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self._output_lines = output_lines
        self._output_bytes = output_bytes
        self._log_file = Path(log_file) if log_file is not None else None
        self._echo = echo_output
        self._independent = independent
        #: The kernel process, while it is our child (None after re-attach or cleanup).
        self.process: ChildProcess | None = None
        self.pid: int | None = None
        self.pgid: int | None = None
        self._starttime: int | None = None
        self._watch: ExitWatch | None = None
        self._capture: OutputCapture | None = None
        self._last_capture: OutputCapture | None = None
        self._tree: ProcessTree | None = None  # while a kernel process is watched
        # After shutdown_requested: the exit watch whose exit starts _stop_leftovers, and
        # that task (cleanup awaits it).
        self._shutdown_watch: ExitWatch | None = None
        self._leftovers: asyncio.Task[None] | None = None
        self._exit_status: int | None = None
        self._reattached = False

    @property
    def has_process(self) -> bool:
        return self._watch is not None

    @property
    def log_file(self) -> Path | None:
        """The file the kernel's output is appended to, if any."""
        return self._log_file

    # ------------------------------------------------------------------ process

    def _spawn(self, cmd: Sequence[str], env: Mapping[str, str] | None, cwd: str | None) -> None:
        assert self._capture is not None
        loop = asyncio.get_running_loop()
        tag = new_tree_tag(self.kernel_id)  # finds what escapes the group (_reaper)
        proc = launch_captured(
            cmd,
            self._capture,
            loop=loop,
            env=tag_environ(os.environ if env is None else env, tag),
            cwd=cwd,
            independent=self._independent,
            kernel_name=self.kernel_spec.name,
        )
        self._adopt(proc, tag)

    def _adopt(self, proc: ChildProcess, tag: str) -> None:
        """Watch a kernel process just started (our child, leading its own session, its
        environment tagged with ``tag``, its output read by the capture)."""
        loop = asyncio.get_running_loop()
        handle = open_pid(proc.pid) or PidHandle(proc.pid, None, None)
        self.process = proc
        self.pid = proc.pid
        self.pgid = proc.pid  # start_new_session: the kernel leads its own group
        self._starttime = handle.starttime
        self._watch = ExitWatch(handle, popen=proc, loop=loop)
        self._tree = ProcessTree(
            self._watch, pid=proc.pid, pgid=self.pgid, starttime=self._starttime, tag=tag
        )

    async def _discard_process(self, *, grace: float = 0.0) -> None:
        """Kill what runs, wait for it, stop what it left (pinned descendants get
        ``grace``), reap it, stop reading its pipes."""
        watch = self._watch
        if watch is None:
            return
        if watch.poll() is None:
            self._signal_all(signal.SIGKILL)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(watch.wait(), KILL_WAIT)
        status = watch.poll()
        if status is not None:
            self._exit_status = status
            # Before reaping: the zombie holds the pgid, so the group is still ours.
            await self._stop_leftovers(grace=grace)
            watch.reap()
        watch.close()
        self._watch = None
        if self._capture is not None:
            self._capture.close()
        self._drop_tree()
        self.process = None

    # ------------------------------------------------------------------ signals

    def _signal_group(self, signum: int) -> None:
        if self._tree is not None:
            self._tree.signal_group(signum)

    def _signal_all(self, signum: int) -> None:
        if self._tree is not None:
            self._tree.signal_all(signum)

    async def _stop_leftovers(self, *, grace: float) -> None:
        if self._tree is not None:
            await self._tree.stop_leftovers(grace=grace)

    def _drop_tree(self) -> None:
        tree, self._tree = self._tree, None
        if tree is not None:
            tree.close()

    def _on_exit_after_shutdown(self, exited: asyncio.Future[int]) -> None:
        # The kernel exited after shutdown_requested: stop what it left at once, not only
        # when cleanup comes (which awaits this task).
        if exited.cancelled() or self._watch is not self._shutdown_watch:
            return
        if self._leftovers is None:
            self._leftovers = asyncio.get_running_loop().create_task(
                self._stop_leftovers(grace=LEFTOVER_GRACE),
                name=f"kernelkit-leftovers-{self.kernel_id}",
            )

    # ------------------------------------------------------------------ lifecycle

    async def poll(self) -> int | None:
        if self._watch is None:
            return self._exit_status if self._exit_status is not None else EXIT_STATUS_UNKNOWN
        return self._watch.poll()

    async def wait(self) -> int | None:
        if self._watch is None:
            return await self.poll()
        return await self._watch.wait()

    async def send_signal(self, signum: int) -> None:
        """Signal the kernel's whole process group (SIGINT interrupts a kernel)."""
        self._signal_group(signum)

    async def shutdown_requested(self, restart: bool = False) -> None:
        """Pin the kernel's descendants now (a kernel that exits by itself leaves them
        re-parented, out of reach); once it has exited, those still running are stopped
        (SIGTERM, a short grace, SIGKILL), by :meth:`cleanup` at the latest."""
        watch = self._watch
        if watch is None or self._tree is None:
            return
        self._tree.pin_descendants()
        if self._shutdown_watch is not watch:
            self._shutdown_watch = watch
            watch.exited.add_done_callback(self._on_exit_after_shutdown)

    async def terminate(self, restart: bool = False) -> None:
        """SIGTERM to the process group and to descendants that left it."""
        self._signal_all(signal.SIGTERM)

    async def kill(self, restart: bool = False) -> None:
        """SIGKILL to the process group and to every descendant seen so far."""
        self._signal_all(signal.SIGKILL)

    async def stop(self, *, grace: float | None = None, restart: bool = False) -> int | None:
        status = await super().stop(grace=grace, restart=restart)
        # The kernel is gone; whatever it started and left running goes too.
        self._signal_all(signal.SIGKILL)
        return status

    # ------------------------------------------------------------------ output

    def output_tail(self, n: int = 20) -> list[str]:
        """The last ``n`` lines the kernel wrote (stdout and stderr interleaved)."""
        capture = self._capture or self._last_capture
        if capture is not None:
            # What is in the pipe now counts too: a dying kernel's last words may still
            # be unread when its exit is reported.
            capture.drain()
            return capture.tail(n)
        if self._log_file is not None:
            return file_tail(self._log_file, n)
        return []
