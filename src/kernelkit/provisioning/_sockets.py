"""The two sockets a launcher listens on while a kernel starts.

- :class:`RegistrationListener`: the JEP 66 registration ROUTER, bound to a port the
  system picks (``tcp://127.0.0.1:*``), so it cannot collide with anything.
- :class:`HeartbeatProbe`: for parent-chosen ports, a REQ on the kernel's heartbeat port;
  the echo says the kernel has bound its ports (ipykernel binds the heartbeat last).

Both are plain pyzmq sockets whose ``FD`` the event loop watches (``add_reader``); the FD
is edge-triggered, so every wake-up drains the socket while ``EVENTS`` says POLLIN.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import zmq

from kernelkit._errors import RemoteProtocolError
from kernelkit.protocol import (
    KernelRegistration,
    Session,
    decode_registration,
    encode_registration_reply,
)

__all__ = [
    "HeartbeatProbe",
    "RegistrationListener",
]

# The kernel waits 5 s for our ACK; keep the socket that long after closing it so the
# ACK is delivered even if we close right after sending.
_REPLY_LINGER_MS = 5000
_PROBE = b"kernelkit-port-probe"
# Retry interval of the heartbeat probe's connect (zmq adds up to as much again as jitter).
_PROBE_RECONNECT_MS = 10


class _Watched:
    def __init__(self, sock: zmq.Socket[Any], loop: asyncio.AbstractEventLoop) -> None:
        self._sock = sock
        self._loop = loop
        self._fd: int | None = None

    def _watch(self) -> None:
        fd = int(self._sock.getsockopt(zmq.FD))
        self._loop.add_reader(fd, self._on_readable)
        self._fd = fd
        # Messages may already be queued; an edge-triggered FD would not fire for them.
        self._loop.call_soon(self._on_readable)

    def _on_readable(self) -> None:
        raise NotImplementedError

    def _readable_frames(self) -> list[bytes] | None:
        if self._sock.closed or not int(self._sock.getsockopt(zmq.EVENTS)) & zmq.POLLIN:
            return None
        try:
            return self._sock.recv_multipart(zmq.NOBLOCK)
        except zmq.Again:
            return None

    def close(self, linger: int = 0) -> None:
        if self._fd is not None:
            if not self._loop.is_closed():
                self._loop.remove_reader(self._fd)
            self._fd = None
        if not self._sock.closed:
            self._sock.close(linger=linger)


class RegistrationListener(_Watched):
    """Binds the registration ROUTER and waits for one valid registration of our kernel.

    Messages with a bad signature or the wrong kernel id are ignored (anyone on the host
    can connect to the port), but remembered in :attr:`rejected` for the error message.
    """

    def __init__(
        self,
        *,
        kernel_id: str,
        key: bytes,
        signature_scheme: str = "hmac-sha256",
        ip: str = "127.0.0.1",
        context: zmq.Context[Any] | None = None,
    ) -> None:
        loop = asyncio.get_running_loop()
        ctx = context if context is not None else zmq.Context.instance()
        sock: zmq.Socket[Any] = ctx.socket(zmq.ROUTER)
        try:
            sock.setsockopt(zmq.LINGER, 0)
            sock.bind(f"tcp://{ip}:*")
            endpoint = bytes(sock.getsockopt(zmq.LAST_ENDPOINT)).decode()
        except BaseException:
            sock.close(linger=0)
            raise
        super().__init__(sock, loop)
        self.kernel_id = kernel_id
        self.ip = ip
        self.port = int(endpoint.rsplit(":", 1)[1])
        self._session = Session(key, signature_scheme=signature_scheme)
        self.registered: asyncio.Future[KernelRegistration] = loop.create_future()
        self.rejected: list[str] = []
        self._replied = False
        self._watch()

    def _on_readable(self) -> None:
        while not self.registered.done():
            frames = self._readable_frames()
            if frames is None:
                return
            try:
                identities, registration = decode_registration(frames, self._session)
            except RemoteProtocolError as exc:
                self.rejected.append(str(exc))
                continue
            if registration.kernel_id not in ("", self.kernel_id):
                self.rejected.append(
                    f"registration for kernel {registration.kernel_id!r}, not {self.kernel_id!r}"
                )
                continue
            with contextlib.suppress(zmq.Again):  # the kernel is gone already
                self._sock.send_multipart(
                    encode_registration_reply(identities, self._session), zmq.NOBLOCK
                )
                self._replied = True
            self.registered.set_result(registration)

    def close(self, linger: int = 0) -> None:
        """Unbind; if an ACK was sent, give it time to leave (zmq does that in background)."""
        super().close(linger=_REPLY_LINGER_MS if self._replied else linger)
        if not self.registered.done():
            self.registered.cancel()


class HeartbeatProbe(_Watched):
    """Pings a heartbeat port until the kernel echoes (zmq reconnects on its own)."""

    def __init__(
        self, url: str, *, context: zmq.Context[Any] | None = None, curve_serverkey: bytes = b""
    ) -> None:
        loop = asyncio.get_running_loop()
        ctx = context if context is not None else zmq.Context.instance()
        sock: zmq.Socket[Any] = ctx.socket(zmq.REQ)
        try:
            sock.setsockopt(zmq.LINGER, 0)
            if curve_serverkey:  # a CurveZMQ kernel: a throwaway client keypair
                public, secret = zmq.curve_keypair()
                sock.setsockopt(zmq.CURVE_SERVERKEY, curve_serverkey)
                sock.setsockopt(zmq.CURVE_PUBLICKEY, public)
                sock.setsockopt(zmq.CURVE_SECRETKEY, secret)
            # zmq retries the TCP connect on its own, by default every 100 ms and more (plus
            # jitter): the echo would come that long after the kernel binds. Nothing
            # tells us of the bind (a kernel given its ports rewrites no file), so keep
            # retrying often for as long as the probe lives: a refused connect on
            # loopback costs microseconds, and the probe lives only while the kernel starts.
            sock.setsockopt(zmq.RECONNECT_IVL, _PROBE_RECONNECT_MS)
            sock.setsockopt(zmq.RECONNECT_IVL_MAX, _PROBE_RECONNECT_MS)
            sock.connect(url)
            sock.send(_PROBE)
        except BaseException:
            sock.close(linger=0)
            raise
        super().__init__(sock, loop)
        self.answered: asyncio.Future[None] = loop.create_future()
        self._watch()

    def _on_readable(self) -> None:
        if self.answered.done():
            return
        if self._readable_frames() is not None:
            self.answered.set_result(None)

    def close(self, linger: int = 0) -> None:
        super().close(linger=0)
        if not self.answered.done():
            self.answered.cancel()
