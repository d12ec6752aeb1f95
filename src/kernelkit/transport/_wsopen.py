"""Opening the WebSocket of a kernel's channels: the endpoint URL, the handshake (with
its refusals translated into kernelkit errors), and the socket options the servers do not
set (``TCP_NODELAY``, ``TCP_QUICKACK`` re-armed after every read)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidHandshake, InvalidStatus, InvalidURI

from kernelkit._errors import KernelDied, KernelError, LocalProtocolError
from kernelkit.protocol import WS_V1_SUBPROTOCOL

__all__ = ["TunedConnection", "channels_url", "open_websocket"]

_TCP_QUICKACK: int | None = getattr(socket, "TCP_QUICKACK", None)


def channels_url(server_url: str, kernel_id: str) -> str:
    """The ``ws://`` (or ``wss://``) channels endpoint of ``kernel_id`` on the server at
    ``server_url`` (``http://host:port/base/``), without the ``session_id`` query.

    Raises:
        LocalProtocolError: ``server_url`` is not an http, https, ws or wss URL.
    """
    parts = urlsplit(server_url)
    scheme = {"http": "ws", "https": "wss", "ws": "ws", "wss": "wss"}.get(parts.scheme)
    if scheme is None or not parts.netloc:
        raise LocalProtocolError(
            f"server URL {server_url!r} must start with http://, https://, ws:// or wss:// "
            "and name a host"
        )
    path = parts.path.rstrip("/") + f"/api/kernels/{quote(kernel_id, safe='')}/channels"
    return urlunsplit((scheme, parts.netloc, path, "", ""))


class TunedConnection(ClientConnection):
    """A client connection that answers every read with an immediate ACK.

    Linux leaves quick-ACK mode on its own after a few segments, so ``TCP_QUICKACK`` is
    set again after each read: the server's next small write (Nagle holds it until our
    ACK) then goes out at once instead of after our ~40 ms delayed ACK.
    """

    _kk_sock: Any = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if _TCP_QUICKACK is not None:
                self._kk_sock = sock
                self._quickack()

    def _quickack(self) -> None:
        try:
            self._kk_sock.setsockopt(socket.IPPROTO_TCP, _TCP_QUICKACK, 1)
        except OSError:
            self._kk_sock = None  # closed under us, or not TCP after all: stop trying

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self._kk_sock is not None:
            self._quickack()


async def open_websocket(
    url: str,
    session_id: str,
    *,
    headers: Mapping[str, str],
    subprotocol: bool,
    tcp_tuning: bool,
    max_size: int | None,
    ping_interval: float | None,
    ping_timeout: float,
    open_timeout: float,
    kernel_name: str,
) -> ClientConnection:
    """Open the channels WebSocket at ``url`` for ``session_id``.

    Raises:
        KernelDied: the server has no such kernel (404).
        KernelError: the server is unreachable, refused the token (401/403), or the
            handshake failed otherwise.
    """
    uri = f"{url}?session_id={quote(session_id, safe='')}"
    options: dict[str, Any] = {
        "subprotocols": [WS_V1_SUBPROTOCOL] if subprotocol else None,
        "additional_headers": dict(headers),
        "compression": None,
        "max_size": max_size,
        "max_queue": 256,
        "ping_interval": ping_interval,
        "ping_timeout": ping_timeout,
        "open_timeout": open_timeout,
        "close_timeout": 1.0,
        "proxy": None,
        "create_connection": TunedConnection if tcp_tuning else ClientConnection,
    }
    try:
        return await connect(uri, **options)
    except InvalidStatus as exc:
        status = exc.response.status_code
        if status in (401, 403):
            raise KernelError(
                f"the server at {url} refused the token (HTTP {status}): check the token "
                "given for this server"
            ) from None
        if status == 404:
            raise KernelDied(
                f"the server at {url} has no such kernel (HTTP 404): it was shut down, or "
                "never existed",
                kernel_name=kernel_name,
            ) from None
        raise KernelError(f"the server at {url} refused the WebSocket (HTTP {status})") from None
    except (InvalidHandshake, InvalidURI) as exc:
        raise KernelError(f"WebSocket handshake with {url} failed: {exc}") from exc
    except asyncio.TimeoutError as exc:
        raise KernelError(f"no WebSocket from {url} within {open_timeout:g} s") from exc
    except OSError as exc:
        raise KernelError(
            f"cannot reach {url}: {exc.strerror or exc}; is the server running?"
        ) from exc
