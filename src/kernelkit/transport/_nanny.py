"""Talking to a kernel's nanny: :class:`NannyControl` (asyncio, one ZeroMQ DEALER).

Requests are signed with the kernel's key (whoever has the connection file may control
the kernel, as whoever has it may run code in it). Events (``kernel_died``,
``kernel_restarted``) arrive on the same socket once :meth:`NannyControl.subscribe` was
called. The protocol itself is :mod:`kernelkit.protocol._nanny`.

A nanny whose control socket is on the network is a CurveZMQ server: the connection
file carries its public key (``kernelkit_nanny_publickey``), and each controlling client
encrypts to it with a keypair of its own, made here and never written anywhere. A
handshake that fails (a wrong key, a key missing on one side) fails the requests at once
with an error naming the nanny, instead of leaving them to time out.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping
from typing import Any

import zmq
import zmq.asyncio
from zmq.utils.monitor import parse_monitor_message

from kernelkit._connection import CHANNELS, ConnectionInfo
from kernelkit._errors import (
    KernelError,
    KernelTimeout,
    LocalProtocolError,
    ProvisioningError,
    RemoteProtocolError,
)
from kernelkit.protocol import NANNY_ACTIONS, NANNY_REPLY, NANNY_REQUEST, Message, Session

__all__ = ["NannyControl", "NannyEventCallback", "follow_restart"]

log = logging.getLogger("kernelkit.nanny")

#: Called on the event loop with each event's type and content.
NannyEventCallback = Callable[[str, Mapping[str, Any]], None]

_HANDSHAKE_OK = int(zmq.EVENT_HANDSHAKE_SUCCEEDED)
# A mechanism mismatch or a refusal is final at once; a failure without detail (a wrong
# server key; or a nanny that closed mid-handshake as it stopped) only when it repeats.
_HANDSHAKE_FATAL = frozenset(
    (int(zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL), int(zmq.EVENT_HANDSHAKE_FAILED_AUTH))
)
_HANDSHAKE_NO_DETAIL = int(zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL)
_HANDSHAKE_RETRIES = 3
_MONITORED = _HANDSHAKE_OK | _HANDSHAKE_NO_DETAIL | sum(_HANDSHAKE_FATAL)


class NannyControl:
    """A connection to one nanny's control socket (``address`` as in the connection
    file's ``kernelkit_nanny``; ``server_key``: its CurveZMQ public key, as in
    ``kernelkit_nanny_publickey``, empty for a nanny in plain text on loopback).
    Use ``async with`` or call :meth:`aclose`.

    Raises:
        ProvisioningError: ``address`` is not a ZeroMQ endpoint.
        LocalProtocolError: a ``server_key`` with a libzmq built without CURVE.
    """

    def __init__(
        self,
        address: str,
        *,
        key: bytes,
        signature_scheme: str = "hmac-sha256",
        server_key: bytes = b"",
        on_event: NannyEventCallback | None = None,
    ) -> None:
        if not address.startswith(("tcp://", "ipc://")):
            raise ProvisioningError(
                f"nanny address {address!r} is not a ZeroMQ endpoint (tcp://host:port)"
            )
        if server_key and not zmq.has("curve"):
            raise LocalProtocolError(
                f"nanny {address} is CurveZMQ-encrypted but this pyzmq's libzmq has no "
                "CURVE support; install a pyzmq wheel (it bundles libsodium)"
            )
        self.address = address
        self.encrypted = bool(server_key)
        self._session = Session(key, signature_scheme=signature_scheme)
        # The process-wide asyncio context (one I/O thread for every nanny connection).
        self._sock = zmq.asyncio.Context.instance().socket(zmq.DEALER)
        self._sock.linger = 0
        if server_key:
            public, secret = zmq.curve_keypair()
            self._sock.curve_serverkey = server_key
            self._sock.curve_publickey = public
            self._sock.curve_secretkey = secret
        self._monitor = self._sock.get_monitor_socket(_MONITORED)
        self._sock.connect(address)
        self._pending: dict[str, asyncio.Future[Mapping[str, Any]]] = {}
        self._on_event = on_event
        self._tasks: list[asyncio.Task[None]] = []
        self._failures = 0
        #: Why the nanny cannot be talked to (a failed handshake), or None.
        self.broken: KernelError | None = None
        self._closed = False

    async def __aenter__(self) -> NannyControl:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def _ensure_reader(self) -> None:
        if not self._tasks:
            loop = asyncio.get_running_loop()
            self._tasks = [loop.create_task(self._read()), loop.create_task(self._watch())]

    async def _read(self) -> None:
        while True:
            frames = await self._sock.recv_multipart(copy=False)
            try:
                _, msg = self._session.deserialize([f.buffer for f in frames])
            except RemoteProtocolError as exc:
                log.warning("nanny %s: refused a message: %s", self.address, exc)
                continue
            self._dispatch(msg)

    async def _watch(self) -> None:
        """Follow the ZMTP handshakes: a failed one is a clear error, not a hang."""
        while True:
            event = parse_monitor_message(await self._monitor.recv_multipart())["event"]
            if event == _HANDSHAKE_OK:
                self._failures = 0
                continue
            self._failures += 1
            if event in _HANDSHAKE_FATAL or self._failures >= _HANDSHAKE_RETRIES:
                self._handshake_failed()

    def _handshake_failed(self) -> None:
        if self.encrypted:
            why = (
                "the nanny's CurveZMQ public key in the connection file is wrong, or the "
                "nanny is not encrypted"
            )
        else:
            why = (
                "the nanny is CurveZMQ-encrypted and the connection file has no "
                "kernelkit_nanny_publickey"
            )
        self.broken = ProvisioningError(
            f"cannot talk to nanny {self.address}: the ZeroMQ handshake failed ({why}); "
            "use the kernel's own connection file"
        )
        for fut in self._pending.values():
            if not fut.done():
                fut.set_exception(self.broken)

    def _dispatch(self, msg: Message) -> None:
        if msg.msg_type == NANNY_REPLY:
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
            ProvisioningError: an unknown action, the nanny answered with an error, or the
                handshake with it failed (a wrong or missing CurveZMQ key).
            KernelTimeout: no answer within ``timeout`` seconds (the nanny is gone, or
                out of reach).
        """
        if action not in NANNY_ACTIONS:
            raise ProvisioningError(
                f"unknown nanny action {action!r}; known: {', '.join(sorted(NANNY_ACTIONS))}"
            )
        if self._closed:
            raise ProvisioningError(f"nanny {self.address}: the control connection is closed")
        if self.broken is not None:
            raise self.broken
        self._ensure_reader()
        msg = self._session.msg(NANNY_REQUEST, {"action": action, **fields})
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
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for fut in self._pending.values():
            if not fut.done():
                fut.set_exception(ProvisioningError(f"nanny {self.address}: connection closed"))
        self._pending.clear()
        self._sock.disable_monitor()
        self._monitor.close(linger=0)
        self._sock.close(linger=0)


def follow_restart(info: ConnectionInfo, content: Mapping[str, Any]) -> ConnectionInfo:
    """Where a restarted kernel listens, from a ``kernel_restarted`` event's content.

    The key, the curve keys and the address stay this side's own (the nanny reports the
    addresses on its machine, which a client elsewhere may reach otherwise). Only ports
    that the nanny says changed (``ports_changed``: the old ones were taken) are followed.
    """
    conn = content.get("connection")
    if not isinstance(conn, Mapping) or content.get("ports_changed") is False:
        return info
    ports: dict[str, int] = {}
    for channel in CHANNELS:
        port = conn.get(f"{channel}_port")
        if isinstance(port, int) and not isinstance(port, bool) and port > 0:
            ports[f"{channel}_port"] = port
    return info.with_ports(**ports) if ports else info
