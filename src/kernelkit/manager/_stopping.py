"""The graceful stop of a kernel: interrupt, ``shutdown_request``, wait for the exit (an
event), SIGTERM, wait, SIGKILL."""

from __future__ import annotations

import asyncio
import logging
import signal

from kernelkit.client import AsyncKernelClient
from kernelkit.provisioning import KernelProvisionerBase

__all__ = [
    "graceful_stop",
    "interrupt_by_message",
]

log = logging.getLogger("kernelkit.manager")


async def graceful_stop(
    p: KernelProvisionerBase,
    control: AsyncKernelClient | None,
    *,
    wait_time: float,
    restart: bool,
    kernel_name: str,
) -> int | None:
    """Stop the kernel within ``wait_time`` seconds; returns its exit status.

    With a ``control`` client: interrupt, ``shutdown_request``, wait up to half the time
    for the process to exit; then (or without one) SIGTERM, the rest of the time, SIGKILL.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait_time
    reply: asyncio.Task[object] | None = None
    try:
        if control is not None:
            # Interrupt first: a kernel busy in user code may answer shutdown_request
            # but not exit until that code returns (ipykernel does this).
            if p.interrupt_mode == "signal":
                await p.send_signal(signal.SIGINT)
            else:
                interrupt_by_message(control, kernel_name=kernel_name)
            reply = loop.create_task(control.shutdown(restart=restart))
            await p.shutdown_requested(restart=restart)
            try:
                return await asyncio.wait_for(p.wait(), wait_time / 2)
            except asyncio.TimeoutError:
                log.info(
                    "kernel %s did not exit within %g s of shutdown_request: SIGTERM",
                    kernel_name,
                    wait_time / 2,
                )
        return await p.stop(grace=max(0.0, deadline - loop.time()), restart=restart)
    finally:
        if reply is not None:
            reply.cancel()
            # The reply is not needed (the process exit is what counts); collect the
            # task so its cancellation or failure is not reported as unretrieved.
            await asyncio.wait({reply})


def interrupt_by_message(control: AsyncKernelClient, *, kernel_name: str) -> None:
    """Send interrupt_request without waiting for the reply (shutdown follows)."""
    task = asyncio.get_running_loop().create_task(control.interrupt())

    def collect(t: asyncio.Task[object]) -> None:
        # It fails with ClientClosed once the kernel is gone: expected, not an error.
        if not t.cancelled() and t.exception() is not None:
            log.debug("kernel %s: interrupt_request: %s", kernel_name, t.exception())

    task.add_done_callback(collect)
