"""The two framings Jupyter Server uses for kernel messages on a WebSocket (pure functions).

``v1.kernel.websocket.jupyter.org`` (the subprotocol a client offers) is one binary frame
per message::

    u64 LE n | n x u64 LE offsets | channel (UTF-8) | header | parent_header | metadata
    | content | buffers...

Offset ``i`` is where part ``i`` starts (the channel is part 0); the last offset is the
total length. The JSON parts are exactly the ZeroMQ frames, unsigned: the server signs
for the kernel.

The legacy protocol (no subprotocol) sends a text frame of JSON
``{channel, header, parent_header, metadata, content, buffers: []}``; a message with
buffers becomes a binary frame instead::

    u32 BE nbufs | nbufs x u32 BE offsets | JSON (without "buffers") | buffers...

where ``nbufs`` counts the JSON part too and offsets are from the start of the frame.

Malformed input raises :class:`~kernelkit.RemoteProtocolError`; a message we cannot
encode raises :class:`~kernelkit.LocalProtocolError`.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from itertools import pairwise
from typing import Any

import orjson

from kernelkit._errors import LocalProtocolError, RemoteProtocolError
from kernelkit.protocol._message import Header, Message
from kernelkit.protocol._msgtypes import CHANNEL_NAMES
from kernelkit.protocol._session import DELIMITER, Session, loads_json

__all__ = [
    "WS_V1_SUBPROTOCOL",
    "decode_ws_legacy",
    "decode_ws_v1",
    "encode_ws_legacy",
    "encode_ws_v1",
]

#: The WebSocket subprotocol name of the binary framing.
WS_V1_SUBPROTOCOL = "v1.kernel.websocket.jupyter.org"

# Parsing and validation are the Session's, unsigned (the server signs for the kernel).
_UNSIGNED = Session(b"")
_CHANNELS = frozenset(CHANNEL_NAMES)
_CHANNEL_BYTES: dict[str, bytes] = {name: name.encode() for name in CHANNEL_NAMES}
_U64 = struct.Struct("<Q")
_U32 = struct.Struct(">I")


def _check_channel(channel: str) -> None:
    if channel not in _CHANNELS:
        raise LocalProtocolError(
            f"unknown channel {channel!r}: a WebSocket carries {', '.join(CHANNEL_NAMES)}"
        )


def _byte_view(data: bytes | bytearray | memoryview) -> memoryview:
    """A flat view of unsigned bytes over ``data``, without copying."""
    try:
        view = memoryview(data)
        return view if view.format == "B" and view.ndim == 1 else view.cast("B")
    except TypeError as exc:
        raise RemoteProtocolError(f"WebSocket message must be contiguous bytes: {exc}") from exc


def _parts(msg: Message) -> list[bytes | memoryview]:
    """header, parent_header, metadata, content (JSON) and the buffers, unsigned."""
    return _UNSIGNED.serialize(msg)[2:]


def encode_ws_v1(channel: str, msg: Message) -> bytes:
    """One ``v1.kernel.websocket.jupyter.org`` binary frame for ``msg`` on ``channel``.

    Raises:
        LocalProtocolError: unknown channel, or the message cannot be written as JSON.
    """
    _check_channel(channel)
    parts: list[bytes | memoryview] = [_CHANNEL_BYTES[channel], *_parts(msg)]
    n = len(parts) + 1
    offsets = [8 * (n + 1)]
    for part in parts:
        offsets.append(offsets[-1] + memoryview(part).nbytes)
    return b"".join([struct.pack(f"<{n + 1}Q", n, *offsets), *parts])


def decode_ws_v1(data: bytes | bytearray | memoryview) -> tuple[str, Message]:
    """Decode a ``v1.kernel.websocket.jupyter.org`` frame into ``(channel, message)``.

    Buffers are memoryviews into ``data`` (no copies).

    Raises:
        RemoteProtocolError: the frame is truncated, its offsets are inconsistent, the
            channel is unknown, or the message inside is malformed.
    """
    if isinstance(data, str):
        raise RemoteProtocolError(
            "a v1.kernel.websocket.jupyter.org message must be a binary frame, got text"
        )
    view = _byte_view(data)
    size = len(view)
    if size < 8:
        raise RemoteProtocolError(f"WebSocket v1 frame of {size} bytes is truncated")
    (n,) = _U64.unpack_from(view, 0)
    # channel + 4 JSON parts need 6 offsets; the table must fit inside the frame.
    if n < 6 or 8 * (n + 1) > size:
        raise RemoteProtocolError(
            f"WebSocket v1 frame declares {n} offsets, which is impossible for a frame of "
            f"{size} bytes with a channel and 4 JSON parts"
        )
    offsets = struct.unpack_from(f"<{n}Q", view, 8)
    if offsets[0] != 8 * (n + 1) or offsets[-1] != size:
        raise RemoteProtocolError(
            f"WebSocket v1 offsets must start after the offset table ({8 * (n + 1)}) and end "
            f"at the frame's end ({size}); got {offsets[0]} and {offsets[-1]}"
        )
    for start, stop in pairwise(offsets):
        if stop < start:
            raise RemoteProtocolError(f"WebSocket v1 offsets go backwards ({start} > {stop})")
    try:
        channel = str(view[offsets[0] : offsets[1]], "utf-8")
    except UnicodeDecodeError as exc:
        raise RemoteProtocolError(f"WebSocket v1 channel name is not UTF-8: {exc}") from exc
    if channel not in _CHANNELS:
        raise RemoteProtocolError(f"WebSocket v1 message on unknown channel {channel!r}")
    frames: list[bytes | memoryview] = [DELIMITER, b""]
    frames += [view[offsets[i] : offsets[i + 1]] for i in range(1, n - 1)]
    _, msg = _UNSIGNED.deserialize(frames)
    return channel, msg


def encode_ws_legacy(channel: str, msg: Message) -> str | bytes:
    """The legacy framing: JSON text, or the binary layout when ``msg`` has buffers.

    Raises:
        LocalProtocolError: unknown channel, or the message cannot be written as JSON.
    """
    _check_channel(channel)
    parts = _parts(msg)
    # The JSON frames are already serialized: splice them into one object as they are.
    body = b"".join(
        (
            b'{"channel":',
            orjson.dumps(channel),
            b',"msg_id":',
            orjson.dumps(msg.header.msg_id),
            b',"msg_type":',
            orjson.dumps(msg.header.msg_type),
            b',"header":',
            parts[0],
            b',"parent_header":',
            parts[1],
            b',"metadata":',
            parts[2],
            b',"content":',
            parts[3],
            b',"buffers":[]}' if len(parts) == 4 else b"}",
        )
    )
    if len(parts) == 4:
        return body.decode()
    chunks: list[bytes | memoryview] = [body, *parts[4:]]
    nbufs = len(chunks)
    offsets = [4 * (nbufs + 1)]
    for chunk in chunks[:-1]:
        offsets.append(offsets[-1] + memoryview(chunk).nbytes)
    if offsets[-1] + memoryview(chunks[-1]).nbytes > 0xFFFFFFFF:
        raise LocalProtocolError(
            "message too large for the legacy WebSocket framing (4 GiB, 32-bit offsets); "
            "use the v1.kernel.websocket.jupyter.org subprotocol"
        )
    return b"".join([struct.pack(f">{nbufs + 1}I", nbufs, *offsets), *chunks])


def decode_ws_legacy(data: str | bytes | bytearray | memoryview) -> tuple[str, Message]:
    """Decode a legacy WebSocket message (text JSON or binary with buffers).

    Raises:
        RemoteProtocolError: not JSON, not an object, missing or mistyped fields, an
            unknown channel, or inconsistent binary offsets.
    """
    buffers: tuple[memoryview, ...] = ()
    if isinstance(data, str):
        body: str | memoryview = data
    else:
        view = _byte_view(data)
        size = len(view)
        if size < 8:
            raise RemoteProtocolError(f"legacy binary WebSocket frame of {size} bytes is truncated")
        (nbufs,) = _U32.unpack_from(view, 0)
        if nbufs < 1 or 4 * (nbufs + 1) > size:
            raise RemoteProtocolError(
                f"legacy binary WebSocket frame declares {nbufs} parts, impossible in {size} bytes"
            )
        offsets = [*struct.unpack_from(f">{nbufs}I", view, 4), size]
        if offsets[0] != 4 * (nbufs + 1):
            raise RemoteProtocolError(
                f"legacy binary WebSocket offsets must start after the offset table "
                f"({4 * (nbufs + 1)}), got {offsets[0]}"
            )
        for start, stop in pairwise(offsets):
            if stop < start:
                raise RemoteProtocolError(
                    f"legacy binary WebSocket offsets go backwards ({start} > {stop})"
                )
        body = view[offsets[0] : offsets[1]]
        buffers = tuple(view[offsets[i] : offsets[i + 1]] for i in range(1, nbufs))
    if len(body) > _UNSIGNED.max_message_bytes:
        raise RemoteProtocolError(
            f"legacy WebSocket message of {len(body)} bytes is over the "
            f"{_UNSIGNED.max_message_bytes}-byte limit"
        )
    obj = loads_json(body, what="legacy WebSocket message")
    if type(obj) is not dict:
        raise RemoteProtocolError(
            f"legacy WebSocket message must be a JSON object, got {type(obj).__name__}"
        )
    channel = obj.get("channel")
    if not isinstance(channel, str) or channel not in _CHANNELS:
        raise RemoteProtocolError(f"legacy WebSocket message on unknown channel {channel!r}")
    if not buffers and obj.get("buffers"):
        # A text frame cannot carry binary buffers; jupyter_server never sends any here.
        raise RemoteProtocolError("legacy WebSocket text message lists buffers it cannot carry")
    return channel, _message_from_object(obj, buffers)


def _message_from_object(obj: Mapping[str, Any], buffers: tuple[memoryview, ...]) -> Message:
    missing = [k for k in ("header", "parent_header", "metadata", "content") if k not in obj]
    if missing:
        raise RemoteProtocolError(f"legacy WebSocket message has no {', '.join(missing)}")
    header = Header.from_dict(obj["header"])
    parent_d = obj["parent_header"]
    if type(parent_d) is dict and not parent_d:
        parent = None
    else:
        try:
            parent = Header.from_dict(parent_d)
        except RemoteProtocolError as exc:
            raise RemoteProtocolError(f"parent_header: {exc}") from None
    metadata = obj["metadata"]
    content = obj["content"]
    if type(metadata) is not dict:
        raise RemoteProtocolError(f"metadata must be a JSON object, got {type(metadata).__name__}")
    if type(content) is not dict:
        raise RemoteProtocolError(f"content must be a JSON object, got {type(content).__name__}")
    return Message(
        header=header, content=content, parent_header=parent, metadata=metadata, buffers=buffers
    )
