"""A sandbox's watch on its kernel's iopub channel: how long each execute request runs.

The provisioner does not talk the messaging protocol to the kernel, but it may listen:
``status: busy`` with an ``execute_request`` parent starts that request's wall-clock
timer, ``status: idle`` for it stops the timer. A timer that expires, or a request that
ends after the sandbox's process limit was hit, is reported through ``on_limit`` (the
provisioner then stops the kernel, so its owner learns why through
:class:`~kernelkit.KernelDied`). Only status messages are parsed; their topic says so.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

import zmq
import zmq.asyncio

from kernelkit._connection import ConnectionInfo
from kernelkit._errors import RemoteProtocolError
from kernelkit.protocol import Session

__all__ = ["ExecuteWatch"]

log = logging.getLogger("kernelkit.provisioning")

_DELIMITER = b"<IDS|MSG>"


class ExecuteWatch:
    """Subscribes to ``info``'s iopub and times execute requests (see the module).

    ``check`` is called when an execute request ends and returns a limit that was
    reached meanwhile ("process limit 64 reached"), or None.
    """

    def __init__(
        self,
        info: ConnectionInfo,
        *,
        wall_clock: float | None,
        check: Callable[[], str | None],
        on_limit: Callable[[str], None],
    ) -> None:
        self._info = info
        self._wall_clock = wall_clock
        self._check = check
        self._on_limit = on_limit
        self._session = Session(info.key, signature_scheme=info.signature_scheme)
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._ctx = zmq.asyncio.Context.instance()
        self._sock: zmq.asyncio.Socket = self._ctx.socket(zmq.SUB)
        self._sock.setsockopt(zmq.LINGER, 0)
        self._sock.setsockopt(zmq.SUBSCRIBE, b"")
        self._sock.connect(info.url("iopub"))
        self._task: asyncio.Task[None] = asyncio.get_running_loop().create_task(
            self._run(), name="kernelkit-sandbox-watch"
        )

    async def _run(self) -> None:
        while True:
            frames: list[bytes] = await self._sock.recv_multipart()
            if not frames or (frames[0] != _DELIMITER and b"status" not in frames[0]):
                continue  # only status messages matter (ipykernel: "kernel.<id>.status")
            try:
                _, msg = self._session.deserialize(frames)
            except RemoteProtocolError as exc:
                log.debug("sandbox watch: ignoring an iopub message: %s", exc)
                continue
            parent = msg.parent_header
            if msg.msg_type != "status" or parent is None:
                continue
            if parent.msg_type != "execute_request":
                continue
            state = msg.content.get("execution_state")
            if state == "busy":
                self._started(parent.msg_id)
            elif state == "idle":
                self._ended(parent.msg_id)

    def _started(self, msg_id: str) -> None:
        if self._wall_clock is None or msg_id in self._timers:
            return
        loop = asyncio.get_running_loop()
        limit = self._wall_clock
        self._timers[msg_id] = loop.call_later(
            limit, self._on_limit, f"wall-clock limit {limit:g} s reached by an execute request"
        )

    def _ended(self, msg_id: str) -> None:
        timer = self._timers.pop(msg_id, None)
        if timer is not None:
            timer.cancel()
        reached = self._check()
        if reached is not None:
            self._on_limit(reached)

    async def aclose(self) -> None:
        """Stop watching (cancels the timers; never raises)."""
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        if self._task.done() and not self._task.cancelled():
            exc = self._task.exception()
            if exc is not None:
                log.warning("sandbox watch ended with %s: %s", type(exc).__name__, exc)
        self._sock.close(linger=0)

    def __repr__(self) -> str:
        return f"<ExecuteWatch {self._info.url('iopub')} wall_clock={self._wall_clock}>"
