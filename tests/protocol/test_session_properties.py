"""Property tests (hypothesis) for Session: round trips, tamper detection, replays, history."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kernelkit import RemoteProtocolError
from kernelkit.protocol import DELIMITER, Header, Message, Session

KEY = b"hypothesis-key"
SCHEMES = st.sampled_from(["hmac-sha256", "hmac-sha1", "hmac-sha512", "hmac-md5"])

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# JSON values orjson writes and reads back unchanged: 64-bit integers, finite floats.
json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=8,
)
json_objects = st.dictionaries(st.text(max_size=10), json_values, max_size=4)
ids = st.text(min_size=1, max_size=40)
strs = st.text(max_size=40)

headers = st.builds(
    Header,
    msg_id=ids,
    msg_type=ids,
    session=strs,
    username=strs,
    date=strs,
    version=strs,
    subshell_id=st.none() | strs,
    extra=st.dictionaries(
        st.text(max_size=8).filter(
            lambda k: (
                k
                not in {
                    "msg_id",
                    "msg_type",
                    "session",
                    "username",
                    "date",
                    "version",
                    "subshell_id",
                }
            )
        ),
        json_values,
        max_size=3,
    ),
)
messages = st.builds(
    Message,
    header=headers,
    content=json_objects,
    parent_header=st.none() | headers,
    metadata=json_objects,
    buffers=st.lists(st.binary(max_size=64), max_size=3).map(tuple),
)
identities = st.lists(st.binary(max_size=16).filter(lambda b: b != DELIMITER), max_size=3)


def _same(a: Message, b: Message) -> None:
    assert a.header == b.header
    assert a.parent_header == b.parent_header
    assert a.content == b.content
    assert a.metadata == b.metadata
    assert [bytes(x) for x in a.buffers] == [bytes(x) for x in b.buffers]


@SETTINGS
@given(msg=messages, idents=identities, scheme=SCHEMES, key=st.sampled_from([KEY, b""]))
def test_round_trip_any_message(msg: Message, idents: list[bytes], scheme: str, key: bytes) -> None:
    tx = Session(key, signature_scheme=scheme)
    rx = Session(key, signature_scheme=scheme)
    got_idents, got = rx.deserialize([bytes(f) for f in tx.serialize(msg, idents)])
    assert got_idents == idents
    _same(got, msg)


@SETTINGS
@given(
    msg=messages,
    scheme=SCHEMES,
    data=st.data(),
)
def test_any_single_byte_change_to_a_signed_frame_is_rejected(
    msg: Message, scheme: str, data: Any
) -> None:
    tx = Session(KEY, signature_scheme=scheme)
    frames = [bytes(f) for f in tx.serialize(msg)]
    # Frames 1..5 are the signature and the four JSON frames it covers; 0 is the delimiter.
    index = data.draw(st.integers(min_value=0, max_value=5), label="frame")
    frame = bytearray(frames[index])
    pos = data.draw(st.integers(min_value=0, max_value=len(frame) - 1), label="position")
    new = data.draw(st.integers(min_value=0, max_value=255).filter(lambda b: b != frame[pos]))
    frame[pos] = new
    frames[index] = bytes(frame)
    with pytest.raises(RemoteProtocolError):
        Session(KEY, signature_scheme=scheme).deserialize(frames)


@SETTINGS
@given(msg=messages, scheme=SCHEMES)
def test_a_replayed_message_is_rejected(msg: Message, scheme: str) -> None:
    tx = Session(KEY, signature_scheme=scheme)
    rx = Session(KEY, signature_scheme=scheme)
    frames = [bytes(f) for f in tx.serialize(msg)]
    rx.deserialize(frames)
    with pytest.raises(RemoteProtocolError, match="replayed"):
        rx.deserialize(frames)
    # A forged copy is not recorded, so it cannot shadow anything either.
    assert rx.seen_signatures == 1


def _stream(n: int) -> list[list[bytes]]:
    tx = Session(KEY, session_id="history")
    return [
        [bytes(f) for f in tx.serialize(tx.msg("status", {"execution_state": "idle", "n": i}))]
        for i in range(n)
    ]


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(min_value=0, max_value=60),
    max_entries=st.integers(min_value=0, max_value=40),
    max_bytes=st.integers(min_value=0, max_value=64 * 40),
)
def test_history_is_bounded_by_count_and_bytes_and_forgets_oldest_first(
    n: int, max_entries: int, max_bytes: int
) -> None:
    stream = _stream(n)
    rx = Session(KEY, replay_history=max_entries, replay_history_bytes=max_bytes)
    for frames in stream:
        rx.deserialize(frames)
    cap = min(max_entries, max_bytes // 64)  # a hmac-sha256 signature is 64 hex digits
    held = min(n, cap)
    assert rx.seen_signatures == held
    assert rx.seen_signature_bytes == 64 * held <= max_bytes
    assert rx.seen_signatures <= max_entries
    # The newest `held` are remembered; everything older was forgotten, oldest first.
    for frames in stream[n - held :]:
        with pytest.raises(RemoteProtocolError, match="replayed"):
            rx.deserialize(frames)
    if n > held:
        rx.deserialize(stream[n - held - 1])  # the newest forgotten one is accepted again


def test_history_forgetting_is_deterministic() -> None:
    stream = _stream(50)

    def replay_outcomes() -> list[bool]:
        rx = Session(KEY, replay_history=16)
        for frames in stream:
            rx.deserialize(frames)
        out = []
        for frames in reversed(stream):  # newest first: the remembered ones come first
            try:
                rx.deserialize(frames)
            except RemoteProtocolError:
                out.append(False)
            else:
                out.append(True)
        return out

    first = replay_outcomes()
    assert first == replay_outcomes()
    assert first == [False] * 16 + [True] * 34
