"""Stopping a kernel: the graceful stop (interrupt, ``shutdown_request``, wait for the
exit (an event), SIGTERM, wait, SIGKILL), and releasing what its launch held.

A kernel on a server (its provisioner makes its transports) gets no ``shutdown_request``:
the provisioner's stop asks the server to shut it down (``DELETE``), or to restart it."""

from __future__ import annotations

import asyncio
import logging
import signal

from kernelkit._errors import KernelError
from kernelkit.client import AsyncKernelClient
from kernelkit.manager._clients import ControlClient, makes_transports
from kernelkit.provisioning import KernelProvisionerBase

__all__ = [
    "graceful_stop",
    "interrupt_by_message",
    "release",
    "stop_and_release",
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


async def release(p: KernelProvisionerBase, control: ControlClient, *, restart: bool) -> None:
    """Kill the kernel if it still runs, then release everything the launch held (the
    provisioner's cleanup reaps it and stops what it left in its group)."""
    try:
        if p.has_process and await p.poll() is None:
            await p.stop(grace=0, restart=restart)
    finally:
        await control.aclose()
        await p.cleanup(restart=restart)


async def stop_and_release(
    p: KernelProvisionerBase,
    control: ControlClient,
    *,
    now: bool,
    restart: bool,
    wait_time: float,
    kernel_name: str,
) -> int | None:
    """Stop the kernel if it runs (gracefully within ``wait_time`` unless ``now``) and
    release everything; returns its exit status."""
    try:
        if p.has_process and await p.poll() is None:
            if now:
                await p.stop(grace=0, restart=restart)
            else:
                wait_time = p.get_shutdown_wait_time(recommended=wait_time)
                client: AsyncKernelClient | None = None
                if not makes_transports(p):
                    try:
                        client = await control.get(p, kernel_name=kernel_name)
                    except KernelError as exc:
                        log.warning(
                            "kernel %s: cannot send shutdown_request (%s)", kernel_name, exc
                        )
                await graceful_stop(
                    p, client, wait_time=wait_time, restart=restart, kernel_name=kernel_name
                )
    finally:
        await release(p, control, restart=restart)
    return await p.poll()
