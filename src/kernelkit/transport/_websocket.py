"""The WebSocket transport: one socket to a Jupyter Server, Kernel Gateway or Enterprise
Gateway carrying a kernel's shell, control, iopub and stdin channels.

The endpoint is ``/api/kernels/<id>/channels?session_id=<id>``. The transport offers the
``v1.kernel.websocket.jupyter.org`` subprotocol and falls back to the legacy framing when
the server does not choose it (a Jupyter Server in gateway mode never does). The server
signs for the kernel, so nothing here holds the kernel's key.

What the servers do not do, and this transport makes up for (PROTOCOL.md):

- Latency: the servers leave Nagle on, so each reply waits for our delayed ACK (~40 ms).
  We set ``TCP_NODELAY`` and re-arm ``TCP_QUICKACK`` (Linux) after every read.
- Liveness: there is no heartbeat channel (``supports_heartbeat`` is False: clients run
  no heartbeat over it). Keepalive pings every ``ping_interval`` seconds close a socket
  that stopped answering within ``ping_timeout`` (the servers never close it themselves,
  not even after the kernel is gone); :meth:`WebSocketTransport.ping` is one such ping.
  A socket that cannot be reopened within ``reconnect_timeout`` ends the transport.
- Dropped sockets: the transport reconnects with the same ``session_id``; the server
  buffers what the kernel sent meanwhile and replays it. Messages queued while
  disconnected are sent after the reconnect; a message received twice (by id) is
  delivered once.
- Kernel death and restarts by the server arrive only as IOPub ``status`` messages with
  no parent: ``restarting`` (then, not reliably, ``starting``), or ``dead``. ``dead``
  ends the transport with :class:`~kernelkit.KernelDied`; on ``restarting`` a receiver
  that has ``notify_dead`` / ``notify_restarted`` (as
  :class:`~kernelkit.AsyncKernelClient` has) gets both: pending requests fail at once
  with KernelDied, and new ones go to the new kernel (``wait_for_ready`` first).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable, Mapping
from urllib.parse import urlsplit

from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from kernelkit._connection import ConnectionInfo
from kernelkit._errors import (
    ClientClosed,
    KernelDied,
    KernelError,
    LocalProtocolError,
    RemoteProtocolError,
)
from kernelkit.protocol import (
    WS_V1_SUBPROTOCOL,
    Message,
    Session,
    decode_ws_legacy,
    decode_ws_v1,
    encode_ws_legacy,
    encode_ws_v1,
)
from kernelkit.protocol._session import DEFAULT_MAX_MESSAGE_BYTES
from kernelkit.transport._base import Receiver
from kernelkit.transport._wsopen import channels_url, open_websocket

__all__ = ["WebSocketTransport", "channels_url"]

log = logging.getLogger("kernelkit.transport")

_SEND_CHANNELS = frozenset(("shell", "control", "stdin"))
# Message ids remembered to drop a message the server replays after a reconnect although
# it had reached us (a reply is never delivered twice).
_RECENT_IDS = 4096
# Close code a peer (or websockets on our side) uses for a message over max_size.
_TOO_BIG = 1009

#: Called with a kernel-wide status the server reports (``restarting``, ``starting``,
#: ``dead``: IOPub ``status`` messages with no parent).
StatusHook = Callable[[str], None]


class WebSocketTransport:
    """A client's WebSocket connection to one kernel on a Jupyter Server or gateway.

    ``url`` is the channels endpoint (:func:`channels_url`); ``session_id`` (default: the
    session's id) names this client to the server, which buffers and replays that
    session's messages across reconnects. ``token`` is sent as ``Authorization: token
    <token>`` (never in the URL, never in reprs or logs); ``headers`` adds others.

    ``subprotocol`` False offers nothing (legacy framing only). ``tcp_tuning`` False
    leaves the socket as asyncio makes it (no ``TCP_QUICKACK``; for comparisons).
    ``ping_interval`` (None: no keepalive) and ``ping_timeout`` are the keepalive pings
    that close a silent socket; ``reconnect_timeout`` bounds the attempts to reconnect a
    dropped socket before the transport reports itself lost. ``max_size`` is the largest
    message the socket accepts (bigger ones are refused before they are read whole).
    ``on_status`` hears the kernel-wide statuses the server reports.
    """

    __slots__ = (
        "_closed",
        "_connected",
        "_headers",
        "_kernel_name",
        "_lost",
        "_max_size",
        "_on_status",
        "_open_timeout",
        "_outbox",
        "_outbox_ready",
        "_ping_interval",
        "_ping_timeout",
        "_receiver",
        "_recent",
        "_reconnect_timeout",
        "_reconnects",
        "_session",
        "_session_id",
        "_subprotocol",
        "_supervisor",
        "_tcp_tuning",
        "_url",
        "_v1",
        "_ws",
    )

    def __init__(
        self,
        url: str,
        session: Session | None = None,
        *,
        session_id: str | None = None,
        token: str | None = None,
        headers: Mapping[str, str] | None = None,
        subprotocol: bool = True,
        tcp_tuning: bool = True,
        ping_interval: float | None = 5.0,
        ping_timeout: float = 10.0,
        open_timeout: float = 30.0,
        reconnect_timeout: float = 30.0,
        max_size: int | None = DEFAULT_MAX_MESSAGE_BYTES,
        kernel_name: str = "",
        on_status: StatusHook | None = None,
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("ws", "wss") or not parts.netloc:
            raise LocalProtocolError(
                f"WebSocket URL {url!r} must start with ws:// or wss:// and name a host "
                "(use channels_url() to make one from a server URL)"
            )
        if parts.query or parts.username or parts.password:
            raise LocalProtocolError(
                "the WebSocket URL must carry no query and no credentials: pass the "
                "token as token=..., the session as session_id=..."
            )
        for name, value in (("ping_timeout", ping_timeout), ("open_timeout", open_timeout)):
            if value <= 0:
                raise LocalProtocolError(f"{name} must be positive seconds, got {value}")
        if ping_interval is not None and ping_interval <= 0:
            raise LocalProtocolError(
                f"ping_interval must be positive seconds or None, got {ping_interval}"
            )
        self._url = url
        self._session = session if session is not None else Session(b"")
        self._session_id = session_id or self._session.session_id
        hdrs = dict(headers or {})
        if token:
            hdrs["Authorization"] = f"token {token}"
        self._headers = hdrs
        self._subprotocol = subprotocol
        self._tcp_tuning = tcp_tuning
        self._ping_interval = ping_interval
        self._ping_timeout = ping_timeout
        self._open_timeout = open_timeout
        self._reconnect_timeout = reconnect_timeout
        self._max_size = max_size
        self._kernel_name = kernel_name or "(unnamed)"
        self._on_status = on_status
        self._ws: ClientConnection | None = None
        self._v1 = False
        self._receiver: Receiver | None = None
        self._supervisor: asyncio.Task[None] | None = None
        self._connected: asyncio.Event | None = None
        self._outbox: deque[str | bytes] = deque()
        self._outbox_ready: asyncio.Event | None = None
        self._recent: dict[str, None] = {}
        self._closed = False
        self._lost = False
        self._reconnects = 0

    def __repr__(self) -> str:
        state = (
            "closed"
            if self._closed
            else "connected"
            if self._connected is not None and self._connected.is_set()
            else "new"
            if self._supervisor is None
            else "reconnecting"
        )
        framing = "v1" if self._v1 else "legacy"
        return f"<WebSocketTransport {self._url} session={self._session_id} {framing} {state}>"

    # -- the Transport interface -------------------------------------------------------

    @property
    def session(self) -> Session:
        return self._session

    @property
    def supports_heartbeat(self) -> bool:
        # No heartbeat channel, and no client heartbeat over this transport: the server,
        # not the kernel, answers pings, and a server busy relaying a big message is late
        # by seconds without anything being wrong. Liveness is this transport's own (the
        # keepalive with its generous ping_timeout, the reconnect budget) and the
        # server's word on IOPub (see the module docstring). ping() still works.
        return False

    @property
    def heartbeat_url(self) -> str:
        return self._url

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def url(self) -> str:
        """The channels endpoint (without the session query)."""
        return self._url

    @property
    def session_id(self) -> str:
        return self._session_id

    @property
    def subprotocol(self) -> str | None:
        """The subprotocol the server chose (None: legacy framing; or not connected)."""
        return WS_V1_SUBPROTOCOL if self._v1 and self._ws is not None else None

    @property
    def reconnects(self) -> int:
        """How many times a dropped socket was reconnected."""
        return self._reconnects

    async def connect(self, receiver: Receiver) -> None:
        """Open the socket and start delivering messages to ``receiver``.

        Raises:
            ClientClosed: the transport is closed, or already connected.
            KernelDied: the server has no such kernel (404).
            KernelError: the server is unreachable, refused the token (401/403), or the
                handshake failed otherwise.
        """
        if self._closed:
            raise ClientClosed("this WebSocketTransport is closed; make a new one")
        if self._supervisor is not None:
            raise ClientClosed("this WebSocketTransport is already connected")
        loop = asyncio.get_running_loop()
        self._connected = asyncio.Event()
        self._outbox_ready = asyncio.Event()
        ws = await self._open()
        self._receiver = receiver
        self._install(ws)
        self._supervisor = loop.create_task(
            self._supervise(), name=f"kernelkit-ws-{self._session_id}"
        )

    def send(self, channel: str, message: Message) -> None:
        if channel not in _SEND_CHANNELS:
            raise LocalProtocolError(
                f"cannot send on channel {channel!r}: use shell, control or stdin"
            )
        if self._closed or self._outbox_ready is None:
            raise ClientClosed(
                "this WebSocketTransport is closed"
                if self._closed
                else "this WebSocketTransport is not connected"
            )
        data = encode_ws_v1(channel, message) if self._v1 else encode_ws_legacy(channel, message)
        self._outbox.append(data)
        self._outbox_ready.set()

    async def ping(self, timeout: float) -> bool:
        """A WebSocket ping answered by the server within ``timeout`` seconds (waiting for
        a reconnect in progress, within the same time)."""
        if self._closed or self._connected is None:
            raise ClientClosed("this WebSocketTransport is closed or not connected")
        try:
            await asyncio.wait_for(self._ping_once(), timeout)
        except asyncio.TimeoutError:
            return False
        except ClientClosed:
            raise
        return not self._closed

    async def _ping_once(self) -> None:
        connected = self._connected
        assert connected is not None
        while True:
            if self._closed:
                raise ClientClosed("this WebSocketTransport is closed")
            await connected.wait()
            ws = self._ws
            if ws is None:
                continue
            try:
                pong = await ws.ping()
                await pong
                return
            except ConnectionClosed:
                # Dropped under us: the supervisor reconnects; try again once it has.
                if connected.is_set() and self._ws is ws:
                    connected.clear()

    def reconnect(self, info: ConnectionInfo) -> None:
        """Not possible: a WebSocket transport is addressed by its URL, not by connection
        info (a kernel the server restarts keeps its URL; nothing to follow).

        Raises:
            ClientClosed: the transport is closed.
            KernelError: always otherwise.
        """
        if self._closed:
            raise ClientClosed("this WebSocketTransport is closed")
        raise KernelError(
            f"kernel {self._kernel_name} is reached through {self._url}, not through "
            "connection info: a WebSocket transport cannot follow it to new ports"
        )

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._outbox.clear()
        if self._connected is not None:
            self._connected.set()  # wake pings waiting for a reconnect (they see closed)
        if self._outbox_ready is not None:
            self._outbox_ready.set()
        if self._supervisor is not None:
            self._supervisor.cancel()
        ws, self._ws = self._ws, None
        if ws is not None and ws.transport is not None:
            ws.transport.abort()

    async def aclose(self) -> None:
        """Close the socket with a close frame (briefly), then stop."""
        if self._closed:
            return
        ws = self._ws
        supervisor = self._supervisor
        self._closed = True
        self._outbox.clear()
        if self._connected is not None:
            self._connected.set()
        if self._outbox_ready is not None:
            self._outbox_ready.set()
        if supervisor is not None:
            supervisor.cancel()
            await asyncio.wait({supervisor})
        self._ws = None
        if ws is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(ws.close(), 1.0)
            if ws.transport is not None:
                ws.transport.abort()

    # -- connecting --------------------------------------------------------------------

    async def _open(self) -> ClientConnection:
        return await open_websocket(
            self._url,
            self._session_id,
            headers=self._headers,
            subprotocol=self._subprotocol,
            tcp_tuning=self._tcp_tuning,
            max_size=self._max_size,
            ping_interval=self._ping_interval,
            ping_timeout=self._ping_timeout,
            open_timeout=self._open_timeout,
            kernel_name=self._kernel_name,
        )

    def _install(self, ws: ClientConnection) -> None:
        self._ws = ws
        self._v1 = ws.subprotocol == WS_V1_SUBPROTOCOL
        assert self._connected is not None
        self._connected.set()

    async def _supervise(self) -> None:
        """Run the reader and writer of each socket; reconnect when one drops."""
        while not self._closed:
            ws = self._ws
            assert ws is not None
            reader = asyncio.ensure_future(self._read(ws))
            writer = asyncio.ensure_future(self._write(ws))
            try:
                await asyncio.wait({reader, writer}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for task in (reader, writer):
                    task.cancel()
                await asyncio.wait({reader, writer})
            if self._closed or self._lost:
                return
            assert self._connected is not None
            self._connected.clear()
            if ws.transport is not None:
                ws.transport.abort()
            why = ws.close_exc if hasattr(ws, "close_exc") else None
            log.info("kernelkit: WebSocket to %s dropped (%s); reconnecting", self._url, why)
            try:
                new = await self._reconnect()
            except KernelError as exc:
                self._give_up(exc)
                return
            self._reconnects += 1
            self._install(new)

    async def _reconnect(self) -> ClientConnection:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._reconnect_timeout
        delay = 0.02
        while True:
            try:
                return await self._open()
            except (KernelDied, ClientClosed):
                raise
            except KernelError as exc:
                if "refused the token" in str(exc) or loop.time() + delay >= deadline:
                    raise KernelError(
                        f"the WebSocket to {self._url} dropped and could not be reopened "
                        f"within {self._reconnect_timeout:g} s: {exc}"
                    ) from exc
            await asyncio.sleep(delay)
            delay = min(delay * 2, 1.0)

    def _give_up(self, error: KernelError) -> None:
        self._lost = True
        receiver = self._receiver
        log.warning("kernelkit: %s", error)
        self.close()
        if receiver is not None:
            receiver.transport_lost(error)

    # -- moving frames -----------------------------------------------------------------

    async def _write(self, ws: ClientConnection) -> None:
        outbox = self._outbox
        ready = self._outbox_ready
        assert ready is not None
        while not self._closed:
            while outbox:
                # Popped only once sent: a message whose send failed goes out again on
                # the next socket.
                await ws.send(outbox[0])
                if outbox:
                    outbox.popleft()
            ready.clear()
            await ready.wait()

    async def _read(self, ws: ClientConnection) -> None:
        handle = self._handle
        try:
            async for data in ws:
                handle(data)
        except ConnectionClosed as exc:
            sent = exc.sent
            if sent is not None and sent.code == _TOO_BIG:
                self._refused_too_big()

    def _refused_too_big(self) -> None:
        """The socket refused a message over ``max_size`` and closes. What the server
        wrote after it is lost with the socket (the server buffers only once it sees the
        close), so requests in flight fail now, saying why, instead of at their timeout."""
        receiver = self._receiver
        if receiver is None:
            return
        error = RemoteProtocolError(
            f"a message from {self._url} was over the {self._max_size}-byte limit "
            "(max_size): refused unread; the socket is reopened, and replies in flight "
            "on it are lost"
        )
        receiver.message_rejected("", error)
        notify_dead = getattr(receiver, "notify_dead", None)
        notify_restarted = getattr(receiver, "notify_restarted", None)
        if notify_dead is not None and notify_restarted is not None:
            notify_dead(KernelError(str(error)))
            notify_restarted(None)

    def _handle(self, data: str | bytes) -> None:
        receiver = self._receiver
        if receiver is None:
            return
        try:
            if self._v1:
                if isinstance(data, str):
                    raise RemoteProtocolError(
                        f"{self._url} sent a text frame on the binary "
                        f"{WS_V1_SUBPROTOCOL} subprotocol"
                    )
                channel, msg = decode_ws_v1(data)
            else:
                channel, msg = decode_ws_legacy(data)
        except RemoteProtocolError as exc:
            receiver.message_rejected("", exc)
            return
        recent = self._recent
        msg_id = msg.header.msg_id
        if msg_id in recent:
            return  # replayed after a reconnect although it had reached us
        recent[msg_id] = None
        if len(recent) > _RECENT_IDS:
            del recent[next(iter(recent))]
        receiver.message_received(channel, msg)
        if channel == "iopub" and msg.parent_header is None and msg.header.msg_type == "status":
            self._kernel_status(str(msg.content.get("execution_state", "")), receiver)

    def _kernel_status(self, state: str, receiver: Receiver) -> None:
        """A kernel-wide status from the server (the kernel died, restarted, is gone)."""
        if self._on_status is not None:
            try:
                self._on_status(state)
            except Exception:
                log.exception("kernelkit: a WebSocket status hook failed")
        if state == "restarting":
            # Pending requests die with the old kernel, at once. New ones are accepted
            # right away: the new kernel's own "starting" often reaches the server before
            # it has subscribed (never relayed), and wait_for_ready asks until it answers.
            notify_dead = getattr(receiver, "notify_dead", None)
            notify_restarted = getattr(receiver, "notify_restarted", None)
            if notify_dead is not None:
                notify_dead(
                    KernelDied(
                        "the kernel died; the server is restarting it",
                        kernel_name=self._kernel_name,
                    )
                )
            if notify_restarted is not None:
                notify_restarted(None)
        elif state == "dead":
            self._give_up(
                KernelDied(
                    "the server reports the kernel dead (it kept dying, or was shut down)",
                    kernel_name=self._kernel_name,
                )
            )
