"""A client told by the kernel's nanny of its death: :class:`NannyWatch`.

A kernel started under a nanny has its control address in the connection file
(``kernelkit_nanny``). A client made from that file subscribes to it, so when the kernel
dies its pending requests fail at once with :class:`~kernelkit.KernelDied` carrying the
exit status and the last output, instead of when the heartbeat gives up; and it follows a
restart that another process asked for. The subscription is made in the background: a
nanny out of reach costs the client nothing but this notice (logged).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any

from kernelkit._connection import ConnectionInfo
from kernelkit._errors import KernelError
from kernelkit.client._core import ClientCore
from kernelkit.protocol import NANNY_RESTARTED, died_error, is_final_death
from kernelkit.transport import NannyControl, follow_restart

__all__ = ["NannyWatch"]

log = logging.getLogger("kernelkit.client")

#: How long the nanny may take to accept the subscription before the client stops asking.
SUBSCRIBE_TIMEOUT = 10.0


class NannyWatch:
    """Subscribes ``core`` to the death and restarts of the kernel ``info`` describes
    (``info.nanny`` must be set). :meth:`start` on the core's loop, :meth:`aclose` at the end.
    """

    def __init__(self, info: ConnectionInfo, core: ClientCore) -> None:
        self._info = info
        self._core = core
        self._control: NannyControl | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def subscribed(self) -> asyncio.Task[None] | None:
        """The subscription in progress or done (None before :meth:`start`)."""
        return self._task

    def start(self) -> None:
        """Subscribe in the background, on the running loop."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._subscribe())

    async def _subscribe(self) -> None:
        info = self._info
        control = NannyControl(
            info.nanny,
            key=info.key,
            signature_scheme=info.signature_scheme,
            server_key=info.nanny_publickey,
            on_event=self._on_event,
        )
        self._control = control
        try:
            status = await control.subscribe(timeout=SUBSCRIBE_TIMEOUT)
        except KernelError as exc:
            log.warning(
                "kernel %s: its nanny cannot tell this client of the kernel's death (%s); "
                "the heartbeat still will",
                self._core.kernel_name,
                exc,
            )
            return
        if status.get("state") == "dead":
            self._core.notify_dead(died_error(status, kernel_name=info.kernel_name))

    def _on_event(self, kind: str, content: Mapping[str, Any]) -> None:
        if is_final_death(kind, content):
            self._core.notify_dead(died_error(content, kernel_name=self._info.kernel_name))
        elif kind == NANNY_RESTARTED:
            self._info = follow_restart(self._info, content)
            self._core.notify_restarted(self._info)

    async def aclose(self) -> None:
        """Stop listening to the nanny."""
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        control, self._control = self._control, None
        if control is not None:
            await control.aclose()
