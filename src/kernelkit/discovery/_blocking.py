"""The blocking face of a launch: :class:`LaunchedKernel` owns one event-loop thread."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from types import TracebackType
from typing import Any, TypeVar

from kernelkit._connection import ConnectionInfo
from kernelkit._errors import KernelTimeout, ProvisioningError
from kernelkit._loopthread import LoopThread
from kernelkit.discovery._types import KernelHandle

__all__ = [
    "LaunchedKernel",
    "to_thread",
]

T = TypeVar("T")


async def to_thread(func: Callable[[str], T], arg: str) -> T:
    """Run a blocking listing call off the event loop."""
    return await asyncio.to_thread(func, arg)


def _run(thread: LoopThread, coro: Coroutine[Any, Any, T], timeout: float | None) -> T:
    if timeout is not None:
        coro = asyncio.wait_for(coro, timeout)
    try:
        return thread.run(coro)
    except TimeoutError as exc:
        if isinstance(exc, KernelTimeout):
            raise
        raise KernelTimeout(f"did not finish within {timeout:g} s") from exc


class LaunchedKernel:
    """A kernel started by :meth:`KernelFinder.launch`: its provisioner, driven from a
    private event-loop thread. Close it (or use ``with``) to stop the kernel and the
    thread.
    """

    def __init__(self, provisioner: KernelHandle, thread: LoopThread) -> None:
        self._provisioner = provisioner
        self._thread = thread

    @classmethod
    def start(
        cls, launch: Coroutine[Any, Any, KernelHandle], *, timeout: float | None = None
    ) -> LaunchedKernel:
        """Run ``launch`` (a finder's ``alaunch(...)``) on a new loop thread.

        Raises:
            KernelTimeout: the launch took longer than ``timeout`` (it was cancelled).
        """
        thread = LoopThread(
            "kernelkit-launched-kernel", owner="the launched kernel", error=ProvisioningError
        )
        try:
            provisioner = _run(thread, launch, timeout)
        except BaseException:
            thread.close()
            raise
        return cls(provisioner, thread)

    @property
    def provisioner(self) -> KernelHandle:
        """The provisioner (use it from :meth:`run` only: it lives on the loop thread)."""
        return self._provisioner

    @property
    def kernel_id(self) -> str:
        return self._provisioner.kernel_id

    @property
    def connection_info(self) -> ConnectionInfo:
        """Where the kernel listens."""
        info = self._provisioner.connection_info
        assert info is not None  # set by a successful launch
        return info

    def run(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        """Run a coroutine (e.g. one of the provisioner's methods) on the loop thread."""
        return _run(self._thread, coro, timeout)

    def poll(self) -> int | None:
        """None while the kernel runs, else its exit status."""
        return self.run(self._provisioner.poll())

    def wait(self, timeout: float | None = None) -> int | None:
        """Wait until the kernel exits; returns its exit status.

        Raises:
            KernelTimeout: it was still running after ``timeout`` seconds.
        """
        return self.run(self._provisioner.wait(), timeout)

    def send_signal(self, signum: int) -> None:
        """Send ``signum`` to the kernel's process group."""
        self.run(self._provisioner.send_signal(signum))

    def terminate(self) -> None:
        """SIGTERM the kernel."""
        self.run(self._provisioner.terminate())

    def kill(self) -> None:
        """SIGKILL the kernel."""
        self.run(self._provisioner.kill())

    def stop(self, *, grace: float | None = None) -> int | None:
        """Terminate, wait up to ``grace`` seconds, kill; returns the exit status."""
        return self.run(self._provisioner.stop(grace=grace))

    def close(self) -> None:
        """Stop the kernel if it still runs, release what its launch held, end the thread."""
        if self._thread.closed:
            return
        try:
            self.run(self._stop_and_cleanup())
        finally:
            self._thread.close()

    async def _stop_and_cleanup(self) -> None:
        if await self._provisioner.poll() is None:
            await self._provisioner.stop()
        await self._provisioner.cleanup(restart=False)

    def __enter__(self) -> LaunchedKernel:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
