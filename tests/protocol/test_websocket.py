"""Both Jupyter Server WebSocket framings: layouts byte by byte, round trips, bad input."""

from __future__ import annotations

import itertools
import struct

import orjson
import pytest

from kernelkit import LocalProtocolError, RemoteProtocolError
from kernelkit.protocol import (
    Message,
    Session,
    decode_ws_legacy,
    decode_ws_v1,
    encode_ws_legacy,
    encode_ws_v1,
)

SESSION = Session(b"", session_id="s1", username="u")


def _msg(buffers: tuple[bytes, ...] = (), *, reply: bool = False) -> Message:
    request = SESSION.msg("execute_request", {"code": "1+1"})
    if not reply:
        return SESSION.msg("execute_request", {"code": "print(1)"}, buffers=buffers)
    return SESSION.msg(
        "execute_reply", {"status": "ok"}, parent=request, metadata={"m": 1}, buffers=buffers
    )


def _same(a: Message, b: Message) -> None:
    assert a.header == b.header
    assert a.parent_header == b.parent_header
    assert a.content == b.content
    assert a.metadata == b.metadata
    assert [bytes(x) for x in a.buffers] == [bytes(x) for x in b.buffers]


@pytest.mark.parametrize("channel", ["shell", "control", "iopub", "stdin"])
@pytest.mark.parametrize("buffers", [(), (b"a",), (b"", b"\x00" * 1000)])
@pytest.mark.parametrize("reply", [False, True])
def test_v1_round_trip(channel: str, buffers: tuple[bytes, ...], reply: bool) -> None:
    msg = _msg(buffers, reply=reply)
    got_channel, got = decode_ws_v1(encode_ws_v1(channel, msg))
    assert got_channel == channel
    _same(got, msg)


def test_v1_layout() -> None:
    msg = _msg((b"BUF",))
    data = encode_ws_v1("iopub", msg)
    (n,) = struct.unpack_from("<Q", data)
    assert n == 7  # channel, 4 JSON parts, 1 buffer -> 6 parts, 7 offsets
    offsets = struct.unpack_from(f"<{n}Q", data, 8)
    assert offsets[0] == 8 * (n + 1)
    assert offsets[-1] == len(data)
    parts = [data[a:b] for a, b in itertools.pairwise(offsets)]
    assert parts[0] == b"iopub"
    assert orjson.loads(parts[1])["msg_id"] == msg.header.msg_id
    assert parts[2] == b"{}"
    assert parts[-1] == b"BUF"


@pytest.mark.parametrize("channel", ["shell", "iopub"])
@pytest.mark.parametrize("buffers", [(), (b"a",), (b"", b"xyz" * 100)])
@pytest.mark.parametrize("reply", [False, True])
def test_legacy_round_trip(channel: str, buffers: tuple[bytes, ...], reply: bool) -> None:
    msg = _msg(buffers, reply=reply)
    data = encode_ws_legacy(channel, msg)
    assert isinstance(data, bytes if buffers else str)
    got_channel, got = decode_ws_legacy(data)
    assert got_channel == channel
    _same(got, msg)


def test_legacy_text_layout() -> None:
    msg = _msg()
    obj = orjson.loads(encode_ws_legacy("shell", msg))
    assert obj["channel"] == "shell"
    assert obj["msg_id"] == msg.header.msg_id
    assert obj["msg_type"] == "execute_request"
    assert obj["header"] == msg.header.to_dict()
    assert obj["parent_header"] == {}
    assert obj["buffers"] == []


def test_legacy_binary_layout() -> None:
    data = encode_ws_legacy("iopub", _msg((b"ONE", b"TWO")))
    assert isinstance(data, bytes)
    (nbufs,) = struct.unpack_from(">I", data)
    assert nbufs == 3
    offsets = [*struct.unpack_from(">3I", data, 4), len(data)]
    assert offsets[0] == 16
    parts = [data[a:b] for a, b in itertools.pairwise(offsets)]
    assert "buffers" not in orjson.loads(parts[0])
    assert parts[1:] == [b"ONE", b"TWO"]


def test_unknown_channel_is_local_error() -> None:
    for encode in (encode_ws_v1, encode_ws_legacy):
        with pytest.raises(LocalProtocolError, match="unknown channel"):
            encode("hb", _msg())


def _v1(parts: list[bytes], *, n: int | None = None, offsets: list[int] | None = None) -> bytes:
    count = len(parts) + 1 if n is None else n
    if offsets is None:
        offsets = [8 * (count + 1)]
        for p in parts:
            offsets.append(offsets[-1] + len(p))
    return struct.pack(f"<{len(offsets) + 1}Q", count, *offsets) + b"".join(parts)


GOOD_JSON = [b'{"msg_id":"a","msg_type":"t"}', b"{}", b"{}", b"{}"]

BAD_V1 = {
    "empty": b"",
    "short": b"\x01\x00",
    "huge count": struct.pack("<Q", 1 << 60) + b"\x00" * 64,
    "too few parts": _v1([b"shell", b"{}", b"{}"]),
    "first offset wrong": _v1([b"shell", *GOOD_JSON], offsets=[0, 5, 10, 12, 14, 16]),
    "last offset short": _v1([b"shell", *GOOD_JSON])[:-1],
    "backwards": _v1(
        [b"shell", *GOOD_JSON], offsets=[56, 61, 60, 100, 102, 104 + len(GOOD_JSON[0])]
    ),
    "bad channel utf8": _v1([b"\xff\xfe", *GOOD_JSON]),
    "unknown channel": _v1([b"nope", *GOOD_JSON]),
    "bad json": _v1([b"shell", b"{", b"{}", b"{}", b"{}"]),
    "header not object": _v1([b"shell", b"[]", b"{}", b"{}", b"{}"]),
    "content not object": _v1([b"shell", GOOD_JSON[0], b"{}", b"{}", b"1"]),
    "header field type": _v1([b"shell", b'{"msg_id":1,"msg_type":"t"}', b"{}", b"{}", b"{}"]),
    "deep nesting": _v1([b"shell", GOOD_JSON[0], b"{}", b"{}", b'{"a":' + b"[" * 5000]),
}


@pytest.mark.parametrize("data", BAD_V1.values(), ids=BAD_V1.keys())
def test_v1_malformed(data: bytes) -> None:
    with pytest.raises(RemoteProtocolError):
        decode_ws_v1(data)


def test_v1_good_helper_is_good() -> None:
    channel, msg = decode_ws_v1(_v1([b"shell", *GOOD_JSON]))
    assert (channel, msg.msg_type) == ("shell", "t")


def _legacy(obj: object) -> str:
    return orjson.dumps(obj).decode()


GOOD_OBJ = {
    "channel": "iopub",
    "header": {"msg_id": "a", "msg_type": "status"},
    "parent_header": {},
    "metadata": {},
    "content": {},
    "buffers": [],
}

BAD_LEGACY: dict[str, str | bytes] = {
    "not json": "{",
    "not object": "[]",
    "no channel": _legacy({k: v for k, v in GOOD_OBJ.items() if k != "channel"}),
    "unknown channel": _legacy({**GOOD_OBJ, "channel": "hb"}),
    "no content": _legacy({k: v for k, v in GOOD_OBJ.items() if k != "content"}),
    "bad header": _legacy({**GOOD_OBJ, "header": {"msg_id": "a"}}),
    "bad parent": _legacy({**GOOD_OBJ, "parent_header": {"msg_id": 3, "msg_type": "x"}}),
    "metadata list": _legacy({**GOOD_OBJ, "metadata": []}),
    "buffers in text": _legacy({**GOOD_OBJ, "buffers": ["AAAA"]}),
    "binary short": b"\x00\x00",
    "binary zero parts": struct.pack(">II", 0, 8),
    "binary huge count": struct.pack(">I", 1 << 30) + b"\x00" * 16,
    "binary bad first offset": struct.pack(">II", 1, 0) + b"{}",
    "binary backwards": struct.pack(">III", 2, 12, 4) + _legacy(GOOD_OBJ).encode(),
    "binary bad utf8": struct.pack(">II", 1, 8) + b'{"channel":"\xff"}',
}


@pytest.mark.parametrize("data", BAD_LEGACY.values(), ids=BAD_LEGACY.keys())
def test_legacy_malformed(data: str | bytes) -> None:
    with pytest.raises(RemoteProtocolError):
        decode_ws_legacy(data)


def test_legacy_good_object_is_good() -> None:
    channel, msg = decode_ws_legacy(_legacy(GOOD_OBJ))
    assert (channel, msg.msg_type, msg.parent_header) == ("iopub", "status", None)


def test_v1_buffers_are_views_of_the_frame() -> None:
    data = bytearray(encode_ws_v1("iopub", _msg((b"abc",))))
    _, msg = decode_ws_v1(data)
    assert isinstance(msg.buffers[0], memoryview)
    data[-1] = ord("z")
    assert bytes(msg.buffers[0]) == b"abz"
