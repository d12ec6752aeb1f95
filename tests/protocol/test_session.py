"""Session: signing, serialize/deserialize round trips, verification and replay protection."""

from __future__ import annotations

import hashlib
import hmac
import types

import orjson
import pytest

from kernelkit import LocalProtocolError, RemoteProtocolError
from kernelkit.protocol import DELIMITER, Header, Message, Session

KEY = b"a0436f6c-1916-498b-8eb9-e81ab9368e84"

SCHEMES = [
    "hmac-sha256",
    "hmac-sha1",
    "hmac-sha224",
    "hmac-sha384",
    "hmac-sha512",
    "hmac-md5",
    "hmac-sha3_256",
    "hmac-sha3_512",
    "hmac-blake2b",
    "hmac-blake2s",
    "hmac-sha512_256",
]


def _pair(scheme: str = "hmac-sha256", key: bytes = KEY) -> tuple[Session, Session]:
    return Session(key, signature_scheme=scheme), Session(key, signature_scheme=scheme)


@pytest.mark.parametrize("scheme", SCHEMES)
def test_sign_matches_the_hmac_module(scheme: str) -> None:
    algorithm = scheme.split("-", 1)[1]
    parts = [b"{}", b'{"a": 1}', b"", b"x" * 1000]
    for key in (KEY, b"k", b"x" * 300):
        expected = hmac.new(
            key, b"".join(parts), lambda d=b"": hashlib.new(algorithm, d)
        ).hexdigest()
        assert Session(key, signature_scheme=scheme).sign(parts) == expected.encode()


@pytest.mark.parametrize("scheme", SCHEMES)
def test_round_trip_every_scheme(scheme: str) -> None:
    sender, receiver = _pair(scheme)
    request = sender.msg("execute_request", {"code": "1+1", "silent": False})
    reply = sender.msg(
        "execute_reply",
        {"status": "ok", "execution_count": 1},
        parent=request,
        metadata={"started": "2024-01-01T00:00:00Z"},
        buffers=(b"abc", memoryview(b"def")),
    )
    idents, got = receiver.deserialize(sender.serialize(reply, [b"id1", b"id2"]))
    assert idents == [b"id1", b"id2"]
    assert got.header == reply.header
    assert got.parent_header == request.header
    assert got.content == reply.content
    assert got.metadata == reply.metadata
    assert [bytes(b) for b in got.buffers] == [b"abc", b"def"]


def test_frames_layout_and_signature() -> None:
    session = Session(KEY)
    msg = session.msg("kernel_info_request")
    frames = session.serialize(msg, [b"ident"])
    assert frames[0] == b"ident"
    assert frames[1] == DELIMITER
    assert frames[2] == session.sign(frames[3:7])
    assert orjson.loads(frames[3])["msg_type"] == "kernel_info_request"
    assert frames[4] == b"{}"
    assert len(frames) == 7


def test_buffers_are_memoryviews_without_copies() -> None:
    session = Session(KEY)
    data = bytearray(b"x" * 1000)
    frames = session.serialize(session.msg("comm_msg", {}, buffers=(data,)))
    view = frames[-1]
    assert isinstance(view, memoryview)
    data[0] = ord("y")
    assert bytes(view[:1]) == b"y"


def test_unsigned_session() -> None:
    sender, receiver = _pair(key=b"")
    frames = sender.serialize(sender.msg("status", {"execution_state": "idle"}))
    assert frames[1] == b""
    _, msg = receiver.deserialize(frames)
    assert msg.content == {"execution_state": "idle"}
    # Unsigned messages are not tracked for replays: the same frames pass again.
    receiver.deserialize(frames)


def test_unknown_scheme_is_a_local_error() -> None:
    for scheme in ("hmac-nope", "sha256", "hmac-", "rsa-sha256", "hmac-shake_128"):
        with pytest.raises(LocalProtocolError, match="signature_scheme"):
            Session(KEY, signature_scheme=scheme)


def test_key_must_be_bytes() -> None:
    with pytest.raises(LocalProtocolError, match="bytes"):
        Session("text-key")  # type: ignore[arg-type]


def test_properties() -> None:
    session = Session(KEY, signature_scheme="hmac-sha512", session_id="abc", username="me")
    assert session.key == KEY
    assert session.signature_scheme == "hmac-sha512"
    assert session.session_id == "abc"
    msg = session.msg("kernel_info_request", subshell_id="sub")
    assert msg.header.session == "abc"
    assert msg.header.username == "me"
    assert msg.header.subshell_id == "sub"
    assert Session().session_id != Session().session_id


def test_forged_signature_rejected() -> None:
    sender, receiver = _pair()
    frames = sender.serialize(sender.msg("execute_request", {"code": "x"}))
    frames[1] = bytes(reversed(bytes(frames[1])))
    with pytest.raises(RemoteProtocolError, match="bad signature"):
        receiver.deserialize(frames)


def test_other_key_rejected() -> None:
    sender = Session(b"other")
    receiver = Session(KEY)
    with pytest.raises(RemoteProtocolError, match="bad signature"):
        receiver.deserialize(sender.serialize(sender.msg("status", {})))


def test_replay_rejected() -> None:
    sender, receiver = _pair()
    frames = sender.serialize(sender.msg("status", {"execution_state": "busy"}))
    receiver.deserialize(frames)
    with pytest.raises(RemoteProtocolError, match="replayed"):
        receiver.deserialize(frames)


def test_forged_signature_is_not_recorded() -> None:
    sender, receiver = _pair()
    frames = sender.serialize(sender.msg("status", {}))
    good = frames[1]
    frames[1] = b"0" * len(good)
    with pytest.raises(RemoteProtocolError, match="bad signature"):
        receiver.deserialize(frames)
    frames[1] = good
    receiver.deserialize(frames)  # still accepted: only verified signatures are recorded


def test_huge_signature_rejected_before_hashing() -> None:
    _, receiver = _pair()
    frames = [DELIMITER, b"0" * (1 << 20), b"{}", b"{}", b"{}", b"{}"]
    with pytest.raises(RemoteProtocolError, match="hex digits"):
        receiver.deserialize(frames)
    assert receiver.seen_signatures == 0


def test_message_value() -> None:
    session = Session(KEY)
    frames = session.serialize(
        Message(header=Header(msg_id="m", msg_type="t", session="s", date="2024-01-01T00:00:00Z"))
    )
    _, msg = Session(KEY).deserialize(frames)
    assert msg.header.date == "2024-01-01T00:00:00Z"
    assert msg.parent_header is None


def test_deep_nesting_is_a_remote_error() -> None:
    session = Session(KEY)
    for content in (b"[" * 5000 + b"]" * 5000, b'{"a":' * 3000 + b"1" + b"}" * 3000):
        parts = [b'{"msg_id":"m","msg_type":"t"}', b"{}", b"{}", content]
        frames = [DELIMITER, session.sign(parts), *parts]
        with pytest.raises(RemoteProtocolError, match="content frame is not valid JSON"):
            session.deserialize(frames)


def test_message_size_limit() -> None:
    tx = Session(KEY)
    rx = Session(KEY, max_message_bytes=10_000)
    assert rx.max_message_bytes == 10_000
    rx.deserialize(tx.serialize(tx.msg("status", {"x": "y" * 9000})))
    with pytest.raises(RemoteProtocolError, match="too large"):
        rx.deserialize(tx.serialize(tx.msg("status", {"x": "y" * 10_000})))
    with pytest.raises(RemoteProtocolError, match="too large"):
        rx.deserialize(tx.serialize(tx.msg("status", buffers=(b"z" * 10_000,))))


def test_unsigned_session_caps_the_signature_frame() -> None:
    tx, rx = Session(b""), Session(b"")
    frames = tx.serialize(tx.msg("status"))
    frames[1] = b"f" * 128
    rx.deserialize(frames)
    frames[1] = b"f" * 129
    with pytest.raises(RemoteProtocolError, match="longer than any HMAC"):
        rx.deserialize(frames)


@pytest.mark.parametrize(
    "frames",
    [
        [],
        [DELIMITER],
        [b"id", DELIMITER, b"sig", b"{}", b"{}"],
        [b"no", b"delimiter", b"{}", b"{}", b"{}", b"{}"],
        ["<IDS|MSG>", "sig", "{}", "{}", "{}", "{}"],
        [1, 2, 3, 4, 5, 6],
        [DELIMITER, 7, b"{}", b"{}", b"{}", b"{}"],
        [DELIMITER, b"0" * 64, None, b"{}", b"{}", b"{}"],
    ],
)
def test_malformed_frame_lists(frames: list[object]) -> None:
    with pytest.raises(RemoteProtocolError):
        Session(KEY).deserialize(frames)  # type: ignore[arg-type]


def test_bytes_like_frames_are_accepted() -> None:
    tx, rx = _pair()
    frames = tx.serialize(tx.msg("status", {"execution_state": "idle"}), [b"a", b"b"])
    mixed = [memoryview(bytes(frames[0])), bytearray(frames[1]), *frames[2:]]
    idents, msg = rx.deserialize(mixed)
    assert idents == [b"a", b"b"]
    assert all(type(i) is bytes for i in idents)
    assert msg.content == {"execution_state": "idle"}


def test_repeated_parent_headers_parse_the_same() -> None:
    tx, rx = _pair()
    request = tx.msg("execute_request", {"code": "1"}, subshell_id="s1")
    other = tx.msg("execute_request", {"code": "2"})
    seen = []
    for parent in (request, request, other, request):
        _, msg = rx.deserialize(tx.serialize(tx.msg("status", {}, parent=parent)))
        seen.append(msg.parent_header)
    assert seen == [request.header, request.header, other.header, request.header]
    assert seen[0] is not None
    assert seen[0].subshell_id == "s1"


def test_serialize_any_mapping_and_non_string_keys() -> None:
    tx, rx = _pair()
    content = types.MappingProxyType({"data": types.MappingProxyType({"a": 1}), "n": {1: "x"}})
    _, msg = rx.deserialize(tx.serialize(tx.msg("display_data", content)))
    assert msg.content == {"data": {"a": 1}, "n": {"1": "x"}}


@pytest.mark.parametrize(
    ("content", "buffers"),
    [
        ({"x": object()}, ()),
        ({"x": b"bytes are not JSON"}, ()),
        ({"big": 1 << 70}, ()),
        ({"x": 1}, ("not a buffer",)),
    ],
)
def test_unserializable_messages_are_local_errors(
    content: dict[str, object], buffers: tuple[object, ...]
) -> None:
    session = Session(KEY)
    msg = session.msg("comm_msg", content, buffers=buffers)  # type: ignore[arg-type]
    with pytest.raises(LocalProtocolError, match="comm_msg"):
        session.serialize(msg)


def test_empty_msg_type_is_a_local_error() -> None:
    with pytest.raises(LocalProtocolError, match="msg_type"):
        Session().msg("")


def test_null_parent_header_and_metadata_read_as_empty() -> None:
    # xeus-python 0.19 sends `null` for both in its iopub_welcome.
    session = Session(b"key")
    frames = [bytes(f) for f in session.serialize(session.msg("iopub_welcome", {}))]
    frames[3] = frames[4] = b"null"
    frames[1] = session.sign(frames[2:6])
    _, msg = session.deserialize(frames)
    assert msg.parent_header is None
    assert msg.metadata == {}


@pytest.mark.parametrize(
    ("content_json", "expected"),
    [
        (b'{"data": {"application/json": {"v": 1' + b"0" * 400 + b"}}}", 10**400),
        (b'{"data": {"application/json": {"v": -1' + b"0" * 400 + b"}}}", -(10**400)),
    ],
)
def test_content_orjson_refuses_is_delivered(content_json: bytes, expected: int) -> None:
    sender, receiver = _pair(key=b"k")
    msg = sender.msg("display_data", {})
    frames = sender.serialize(msg)
    # Replace the content frame by hand and re-sign: a verified message with big numbers.
    header, parent, metadata = frames[-4:-1]
    frames = [
        DELIMITER,
        sender.sign([header, parent, metadata, content_json]),
        header,
        parent,
        metadata,
        content_json,
    ]
    _, got = receiver.deserialize(frames)
    assert got.content["data"]["application/json"]["v"] == expected


def test_content_that_is_no_json_at_all_is_refused() -> None:
    sender, receiver = _pair(key=b"k")
    frames = sender.serialize(sender.msg("display_data", {}))
    header, parent, metadata = frames[-4:-1]
    bad = b'{"a": '
    frames = [
        DELIMITER,
        sender.sign([header, parent, metadata, bad]),
        header,
        parent,
        metadata,
        bad,
    ]
    with pytest.raises(RemoteProtocolError, match="content frame is not valid JSON"):
        receiver.deserialize(frames)


@pytest.mark.parametrize("size", [0, 3000, 4096, 5000, 1 << 20])
@pytest.mark.parametrize("as_view", [False, True])
def test_verifies_small_and_large_messages_alike(size: int, as_view: bool) -> None:
    # Small messages are hashed joined, large ones frame by frame: both verify, and a
    # flipped byte in the content fails both.
    sender, receiver = Session(KEY), Session(KEY)
    frames = sender.serialize(sender.msg("stream", {"name": "stdout", "text": "x" * size}))
    wire = [memoryview(bytes(f)) if as_view else bytes(f) for f in frames]
    _, msg = receiver.deserialize(wire)
    assert len(msg.content["text"]) == size
    forged = [bytes(f) for f in frames]
    forged[-1] = forged[-1].replace(b'"stdout"', b'"stderr"')
    with pytest.raises(RemoteProtocolError, match="bad signature"):
        Session(KEY).deserialize(forged)
