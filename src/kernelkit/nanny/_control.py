"""Talking to a kernel's nanny: :class:`NannyControl` (asyncio).

Requests are signed with the kernel's key (whoever has the connection file may control
the kernel, as whoever has it may run code in it). Events (``kernel_died``,
``kernel_restarted``) arrive on the same socket once :meth:`subscribe` was called.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping
from typing import Any

import zmq
import zmq.asyncio

from kernelkit._errors import KernelTimeout, ProvisioningError, RemoteProtocolError
from kernelkit.nanny._wire import ACTIONS, REPLY, REQUEST
from kernelkit.protocol import Message, Session

__all__ = ["NannyControl"]

log = logging.getLogger("kernelkit.nanny")

EventCallback = Callable[[str, Mapping[str, Any]], None]


class NannyControl:
    """A connection to one nanny's control socket (``address`` as in the connection
    file's ``kernelkit_nanny``). Use ``async with`` or call :meth:`aclose`."""

    def __init__(
        self,
        address: str,
        *,
        key: bytes,
        signature_scheme: str = "hmac-sha256",
        on_event: EventCallback | None = None,
    ) -> None:
        if not address.startswith(("tcp://", "ipc://")):
            raise ProvisioningError(
                f"nanny address {address!r} is not a ZeroMQ endpoint (tcp://host:port)"
            )
        self.address = address
        self._session = Session(key, signature_scheme=signature_scheme)
        self._ctx = zmq.asyncio.Context()
        self._sock = self._ctx.socket(zmq.DEALER)
        self._sock.linger = 0
        self._sock.connect(address)
        self._pending: dict[str, asyncio.Future[Mapping[str, Any]]] = {}
        self._on_event = on_event
        self._reader: asyncio.Task[None] | None = None
        self._closed = False

    async def __aenter__(self) -> NannyControl:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def _ensure_reader(self) -> None:
        if self._reader is None:
            self._reader = asyncio.get_running_loop().create_task(self._read())

    async def _read(self) -> None:
        while True:
            frames = await self._sock.recv_multipart(copy=False)
            try:
                _, msg = self._session.deserialize([f.buffer for f in frames])
            except RemoteProtocolError as exc:
                log.warning("nanny %s: refused a message: %s", self.address, exc)
                continue
            self._dispatch(msg)

    def _dispatch(self, msg: Message) -> None:
        if msg.msg_type == REPLY:
            fut = self._pending.pop(msg.parent_id or "", None)
            if fut is not None and not fut.done():
                fut.set_result(msg.content)
            return
        if self._on_event is not None:
            try:
                self._on_event(msg.msg_type, msg.content)
            except Exception:
                log.exception("nanny %s: event callback failed", self.address)

    async def request(self, action: str, *, timeout: float = 10.0, **fields: Any) -> dict[str, Any]:
        """Ask the nanny to do ``action``; returns the reply's content.

        Raises:
            ProvisioningError: an unknown action, or the nanny answered with an error.
            KernelTimeout: no answer within ``timeout`` seconds (the nanny is gone, or
                out of reach).
        """
        if action not in ACTIONS:
            raise ProvisioningError(
                f"unknown nanny action {action!r}; known: {', '.join(sorted(ACTIONS))}"
            )
        if self._closed:
            raise ProvisioningError(f"nanny {self.address}: the control connection is closed")
        self._ensure_reader()
        msg = self._session.msg(REQUEST, {"action": action, **fields})
        fut: asyncio.Future[Mapping[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[msg.msg_id] = fut
        await self._sock.send_multipart(self._session.serialize(msg), copy=False)
        try:
            content = await asyncio.wait_for(fut, timeout)
        except asyncio.TimeoutError:
            raise KernelTimeout(
                f"nanny {self.address} did not answer {action!r} within {timeout:g} s "
                "(is it still running, and reachable?)"
            ) from None
        finally:
            self._pending.pop(msg.msg_id, None)
        if content.get("status") != "ok":
            reason = content.get("message", "no reason given")
            raise ProvisioningError(f"nanny {self.address}: {action} failed: {reason}")
        return dict(content)

    async def subscribe(self, *, timeout: float = 10.0) -> dict[str, Any]:
        """Receive events from now on; returns the kernel's status."""
        return await self.request("subscribe", timeout=timeout)

    async def aclose(self) -> None:
        """Close the connection (requests in flight fail)."""
        if self._closed:
            return
        self._closed = True
        reader, self._reader = self._reader, None
        if reader is not None:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader
        for fut in self._pending.values():
            if not fut.done():
                fut.set_exception(ProvisioningError(f"nanny {self.address}: connection closed"))
        self._pending.clear()
        self._sock.close(linger=0)
        self._ctx.term()
