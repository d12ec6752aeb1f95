"""kernelkit's protocol layer against the real peers: jupyter_client's Session and
jupyter_server's WebSocket framing helpers (test-only peers, never imported by src/)."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

import pytest

from kernelkit import RemoteProtocolError
from kernelkit.protocol import (
    Message,
    Session,
    decode_ws_legacy,
    decode_ws_v1,
    encode_ws_legacy,
    encode_ws_v1,
)

jc_session = pytest.importorskip("jupyter_client.session")
ws_base = pytest.importorskip("jupyter_server.services.kernels.connection.base")
jsonutil = pytest.importorskip("jupyter_client.jsonutil")

pytestmark = pytest.mark.integration

KEY = b"5ca1ab1e-0000-4000-8000-00000000beef"
SCHEMES = ["hmac-sha256", "hmac-sha1", "hmac-sha512", "hmac-md5", "hmac-sha384"]
BUFFERS = [b"\x00\x01\x02", b"x" * 100_000]
CONTENT = {"code": "print('héllo ✓')", "silent": False, "user_expressions": {"a": [1, 2.5, None]}}


def _jc(scheme: str = "hmac-sha256", key: bytes = KEY) -> Any:
    return jc_session.Session(key=key, signature_scheme=scheme, username="jc")


def _as_bytes(frames: list[Any]) -> list[bytes]:
    return [bytes(f) for f in frames]


@pytest.mark.parametrize("scheme", SCHEMES)
def test_kernelkit_to_jupyter_client(scheme: str) -> None:
    kk = Session(KEY, signature_scheme=scheme)
    request = kk.msg("execute_request", {"code": "1"})
    msg = kk.msg(
        "execute_reply",
        CONTENT,
        parent=request,
        metadata={"engine": "e"},
        subshell_id="sub-1",
        buffers=tuple(BUFFERS),
    )
    frames = _as_bytes(kk.serialize(msg, [b"route-1"]))

    peer = _jc(scheme)
    idents, rest = peer.feed_identities(frames)
    got = peer.deserialize(rest)
    assert idents == [b"route-1"]
    assert got["header"]["msg_id"] == msg.msg_id
    assert got["header"]["msg_type"] == "execute_reply"
    assert got["header"]["subshell_id"] == "sub-1"
    assert got["parent_header"]["msg_id"] == request.msg_id
    assert got["content"] == CONTENT
    assert got["metadata"] == {"engine": "e"}
    assert [bytes(b) for b in got["buffers"]] == BUFFERS
    assert got["header"]["date"] == msg.header.datetime()


@pytest.mark.parametrize("scheme", SCHEMES)
def test_jupyter_client_to_kernelkit(scheme: str) -> None:
    peer = _jc(scheme)
    request = peer.msg("execute_request", {"code": "1"})
    msg = peer.msg("execute_reply", CONTENT, parent=request, metadata={"engine": "e"})
    frames = peer.serialize(msg, [b"route-1"]) + BUFFERS

    kk = Session(KEY, signature_scheme=scheme)
    idents, got = kk.deserialize(frames)
    assert idents == [b"route-1"]
    assert got.header.msg_id == msg["header"]["msg_id"]
    assert got.header.session == peer.session
    assert got.header.username == "jc"
    assert got.parent_id == request["header"]["msg_id"]
    assert got.content == CONTENT
    assert got.metadata == {"engine": "e"}
    assert [bytes(b) for b in got.buffers] == BUFFERS
    # jupyter_client writes dates its own way; kernelkit keeps the string and parses on demand.
    sent = msg["header"]["date"]
    assert got.header.datetime() == sent
    assert got.header.datetime().tzinfo is not None  # type: ignore[union-attr]


@pytest.mark.parametrize("scheme", SCHEMES)
def test_signatures_are_identical(scheme: str) -> None:
    parts = [b'{"a":1}', b"{}", b"{}", json.dumps(CONTENT).encode()]
    assert Session(KEY, signature_scheme=scheme).sign(parts) == _jc(scheme).sign(parts)


def test_forged_and_replayed_rejected_by_both() -> None:
    kk_tx = Session(KEY)
    frames = _as_bytes(kk_tx.serialize(kk_tx.msg("status", {"execution_state": "idle"})))
    peer = _jc()
    peer.deserialize(peer.feed_identities(frames)[1])
    with pytest.raises(ValueError, match="Duplicate"):
        peer.deserialize(peer.feed_identities(frames)[1])

    peer_frames = peer.serialize(peer.msg("status", {"execution_state": "busy"}))
    forged = [*peer_frames]
    forged[-1] = b'{"execution_state":"idle"}'
    with pytest.raises(RemoteProtocolError, match="bad signature"):
        Session(KEY).deserialize(forged)


def test_unsigned_both_ways() -> None:
    kk = Session(b"")
    peer = _jc(key=b"")
    frames = _as_bytes(kk.serialize(kk.msg("kernel_info_request")))
    assert peer.deserialize(peer.feed_identities(frames)[1])["msg_type"] == "kernel_info_request"
    _, got = kk.deserialize(peer.serialize(peer.msg("kernel_info_reply", {"status": "ok"})))
    assert got.content == {"status": "ok"}


# --- jupyter_server WebSocket framings ------------------------------------------------------


def _kk_message() -> Message:
    kk = Session(b"", username="kk")
    request = kk.msg("execute_request", {"code": "1"})
    return kk.msg("display_data", CONTENT, parent=request, metadata={"m": True})


def _jc_frames_after_signature(buffers: list[bytes]) -> tuple[dict[str, Any], list[bytes]]:
    peer = _jc(key=b"")
    request = peer.msg("execute_request", {"code": "1"})
    msg = peer.msg("display_data", CONTENT, parent=request, metadata={"m": True})
    frames = peer.serialize(msg)
    return msg, [*frames[2:], *buffers]


@pytest.mark.parametrize("buffers", [[], BUFFERS])
def test_ws_v1_ours_to_jupyter_server(buffers: list[bytes]) -> None:
    msg = _kk_message()
    msg = Message(
        header=msg.header,
        content=msg.content,
        parent_header=msg.parent_header,
        metadata=msg.metadata,
        buffers=tuple(buffers),
    )
    channel, parts = ws_base.deserialize_msg_from_ws_v1(encode_ws_v1("shell", msg))
    assert channel == "shell"
    # What the server does next: sign the parts and send them to the kernel.
    peer = _jc()
    signed = [b"<IDS|MSG>", peer.sign(parts[:4]), *parts]
    got = peer.deserialize(peer.feed_identities(signed)[1])
    assert got["header"]["msg_id"] == msg.msg_id
    assert got["parent_header"]["msg_id"] == msg.parent_id
    assert got["content"] == CONTENT
    assert got["metadata"] == {"m": True}
    assert [bytes(b) for b in got["buffers"]] == buffers


@pytest.mark.parametrize("buffers", [[], BUFFERS])
def test_ws_v1_jupyter_server_to_ours(buffers: list[bytes]) -> None:
    sent, parts = _jc_frames_after_signature(buffers)
    channel, got = decode_ws_v1(ws_base.serialize_msg_to_ws_v1(parts, "iopub"))
    assert channel == "iopub"
    assert got.msg_id == sent["header"]["msg_id"]
    assert got.parent_id == sent["parent_header"]["msg_id"]
    assert got.content == CONTENT
    assert [bytes(b) for b in got.buffers] == buffers


def test_ws_v1_server_made_message_to_ours() -> None:
    # The server builds some messages itself (status: restarting/dead) with pack().
    peer = _jc(key=b"")
    msg = peer.msg("status", {"execution_state": "dead"})
    channel, got = decode_ws_v1(ws_base.serialize_msg_to_ws_v1(msg, "iopub", peer.pack))
    assert (channel, got.msg_type, got.content) == ("iopub", "status", {"execution_state": "dead"})


def test_ws_legacy_text_ours_to_jupyter_server() -> None:
    msg = _kk_message()
    data = encode_ws_legacy("shell", msg)
    assert isinstance(data, str)
    obj = json.loads(data)  # what the server does with a text frame
    assert obj.pop("channel") == "shell"
    # ... then Session.send(stream, obj): it must serialize and sign as a message dict.
    peer = _jc()
    frames = peer.serialize(obj)
    got = peer.deserialize(peer.feed_identities(frames)[1])
    assert got["header"]["msg_id"] == msg.msg_id
    assert got["content"] == CONTENT


def test_ws_legacy_binary_ours_to_jupyter_server() -> None:
    msg = _kk_message()
    msg = Message(
        header=msg.header,
        content=msg.content,
        parent_header=msg.parent_header,
        metadata=msg.metadata,
        buffers=tuple(BUFFERS),
    )
    data = encode_ws_legacy("iopub", msg)
    assert isinstance(data, bytes)
    got = ws_base.deserialize_binary_message(data)
    assert got["channel"] == "iopub"
    assert got["header"]["msg_id"] == msg.msg_id
    assert got["header"]["date"] == msg.header.datetime()
    assert got["content"] == CONTENT
    assert [bytes(b) for b in got["buffers"]] == BUFFERS


@pytest.mark.parametrize("buffers", [[], BUFFERS])
def test_ws_legacy_jupyter_server_to_ours(buffers: list[bytes]) -> None:
    # The server's _reserialize_reply: Session.deserialize, add channel, then JSON text or
    # the binary layout when there are buffers.
    sent, parts = _jc_frames_after_signature(buffers)
    peer = _jc(key=b"")
    msg = peer.deserialize([b"", *parts])
    msg["channel"] = "iopub"
    if msg["buffers"]:
        data: str | bytes = ws_base.serialize_binary_message(msg)
    else:
        data = json.dumps(msg, default=jsonutil.json_default)
    channel, got = decode_ws_legacy(data)
    assert channel == "iopub"
    assert got.msg_id == sent["header"]["msg_id"]
    assert got.parent_id == sent["parent_header"]["msg_id"]
    assert got.content == CONTENT
    assert got.metadata == {"m": True}
    assert [bytes(b) for b in got.buffers] == buffers
    assert got.header.datetime() == sent["header"]["date"].astimezone(timezone.utc)
    assert isinstance(got.header.datetime(), datetime)
