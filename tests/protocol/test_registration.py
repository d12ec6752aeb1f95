"""JEP 66 registration messages: frames in, values out (no sockets)."""

from __future__ import annotations

import hashlib
import hmac

import orjson
import pytest

from kernelkit import LocalProtocolError, RemoteProtocolError
from kernelkit.protocol import (
    DELIMITER,
    REGISTRATION_ACK,
    KernelRegistration,
    Session,
    decode_registration,
    decode_registration_reply,
    encode_registration,
    encode_registration_reply,
)

KEY = b"a0b1c2d3-secret"
REG = KernelRegistration(
    kernel_id="k1", shell_port=5001, iopub_port=5002, stdin_port=5003, control_port=5004,
    hb_port=5005,
)  # fmt: skip


def _xeus_frames(
    content: dict[str, object], key: bytes = KEY, identity: bytes = b"\0id"
) -> list[bytes]:
    """What xeus-zmq's kernel side puts on the wire, as a ROUTER receives it."""
    body = orjson.dumps(content)
    sig = hmac.new(key, body, hashlib.sha256).hexdigest().encode()
    return [identity, DELIMITER, sig, body]


def test_two_peers_back_to_back() -> None:
    kernel, launcher = Session(KEY), Session(KEY)
    sent = encode_registration(REG, kernel)
    ids, got = decode_registration([b"route", *sent], launcher)
    assert ids == [b"route"]
    assert got == REG
    reply = encode_registration_reply(ids, launcher)
    assert reply[0] == b"route"
    assert decode_registration_reply(reply[1:], kernel) == REGISTRATION_ACK


def test_kernel_side_writes_ports_as_strings_like_xeus() -> None:
    frames = encode_registration(REG, Session(KEY))
    assert frames[0] == DELIMITER
    content = orjson.loads(frames[2])
    assert content["shell_port"] == "5001"
    assert content["kernel_id"] == "k1"


def test_decodes_exact_xeus_frames() -> None:
    # The frames xeus-python 0.19 sent in a real run (ports as strings, sorted keys).
    content = {
        "control_port": "60488", "hb_port": "58773", "iopub_port": "64719",
        "kernel_id": "kid1", "shell_port": "59472", "stdin_port": "53686",
    }  # fmt: skip
    ids, reg = decode_registration(_xeus_frames(content), Session(KEY))
    assert ids == [b"\0id"]
    assert reg.ports() == {
        "shell_port": 59472, "iopub_port": 64719, "stdin_port": 53686,
        "control_port": 60488, "hb_port": 58773,
    }  # fmt: skip
    assert reg.kernel_id == "kid1"


def test_reply_is_what_xeus_verifies() -> None:
    reply = encode_registration_reply([b"\0id"], Session(KEY))
    assert reply == [
        b"\0id",
        DELIMITER,
        hmac.new(KEY, b"ACK", hashlib.sha256).hexdigest().encode(),
        b"ACK",
    ]


def test_integer_ports_are_accepted() -> None:
    content = {k: v for k, v in REG.ports().items()} | {"kernel_id": "k1"}
    _, reg = decode_registration(_xeus_frames(content), Session(KEY))
    assert reg == REG


def test_memoryview_frames() -> None:
    frames = [memoryview(f) for f in _xeus_frames(REG.ports() | {"kernel_id": "k1"})]
    assert decode_registration(frames, Session(KEY))[1] == REG


def test_unsigned_session_skips_the_signature() -> None:
    frames = _xeus_frames(REG.ports() | {"kernel_id": "k1"})
    frames[2] = b""
    assert decode_registration(frames, Session(b""))[1] == REG


@pytest.mark.parametrize(
    ("frames", "message"),
    [
        ([b"id", b"sig", b"{}"], "delimiter"),
        ([b"id", DELIMITER, b"sig"], "got 1 frames"),
        ([b"id", DELIMITER, b"sig", b"{}", b"extra"], "got 3 frames"),
        ([*(b"i" * 9), DELIMITER, b"s", b"{}"], "routing identities"),
    ],
)
def test_malformed_framing(frames: list[bytes], message: str) -> None:
    with pytest.raises(RemoteProtocolError, match=message):
        decode_registration(frames, Session(b""))


def test_forged_signature_is_rejected_before_parsing() -> None:
    frames = _xeus_frames({"not": "checked"}, key=b"other key")
    with pytest.raises(RemoteProtocolError, match="invalid signature"):
        decode_registration(frames, Session(KEY))


def test_oversized_content() -> None:
    frames = [DELIMITER, b"", b"x" * (64 * 1024 + 1)]
    with pytest.raises(RemoteProtocolError, match="too large"):
        decode_registration(frames, Session(b""))


_GOOD = {**{k: str(v) for k, v in REG.ports().items()}, "kernel_id": "k1"}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"not json", "not JSON"),
        (b"[1, 2]", "not a JSON object"),
        (orjson.dumps({**_GOOD, "kernel_id": 3}), "'kernel_id' must be a string"),
        (orjson.dumps({k: v for k, v in _GOOD.items() if k != "hb_port"}), "missing hb_port"),
        (orjson.dumps({**_GOOD, "shell_port": "0"}), "not a usable port"),
        (orjson.dumps({**_GOOD, "shell_port": 70000}), "not a usable port"),
        (orjson.dumps({**_GOOD, "shell_port": "-1"}), "must be a port number"),
        (orjson.dumps({**_GOOD, "shell_port": "١٢"}), "must be a port number"),
        (orjson.dumps({**_GOOD, "shell_port": True}), "boolean"),
        (orjson.dumps({**_GOOD, "shell_port": 1.5}), "must be a port number"),
    ],
)
def test_bad_content(content: bytes, message: str) -> None:
    with pytest.raises(RemoteProtocolError, match=message):
        decode_registration([DELIMITER, b"", content], Session(b""))


def test_reply_with_wrong_signature() -> None:
    reply = encode_registration_reply([], Session(b"launcher key"))
    with pytest.raises(RemoteProtocolError, match="registration reply: invalid signature"):
        decode_registration_reply(reply, Session(KEY))


def test_encoding_a_bad_port_is_our_mistake() -> None:
    bad = KernelRegistration("k", 0, 1, 2, 3, 4)
    with pytest.raises(LocalProtocolError, match="shell_port = 0"):
        encode_registration(bad, Session(KEY))
