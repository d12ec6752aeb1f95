"""Session.deserialize's fast paths give what the general, checked paths give.

The deserializer unpacks the usual frame shapes directly and validates the usual header
inline; everything else goes the general way. Each table row is read both ways (the
reference is the checked path) and must come out the same, or fail the same.
"""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from kernelkit import RemoteProtocolError
from kernelkit.protocol import DELIMITER, Header, Session

KEY = b"fast-path-key"
_SIX = {
    "msg_id": "m1",
    "msg_type": "status",
    "username": "u",
    "session": "s",
    "date": "2026-12-07T00:00:00+00:00",
    "version": "5.3",
}


def _signed(header: Any, identities: list[bytes], buffers: list[bytes]) -> list[bytes]:
    tx = Session(KEY)
    parts = [orjson.dumps(header), b"{}", b"{}", b'{"execution_state": "idle"}']
    return [*identities, DELIMITER, tx.sign(parts), *parts, *buffers]


HEADERS: list[Any] = [
    _SIX,
    {**_SIX, "subshell_id": "sub"},
    {**_SIX, "subshell_id": None},
    {**_SIX, "x-extra": 1},
    {**_SIX, "subshell_id": "sub", "x-extra": [1]},
    {**_SIX, "subshell_id": None, "x-extra": "e"},
    {k: v for k, v in _SIX.items() if k != "date"},  # a missing optional field
    {k: v for k, v in _SIX.items() if k != "msg_id"},
    {**_SIX, "msg_id": ""},
    {**_SIX, "msg_type": ""},
    {**_SIX, "msg_type": 3},
    {**_SIX, "session": None},
    {**_SIX, "version": 5.3},
    {**_SIX, "date": 0},
    {**_SIX, "subshell_id": 7},
    [],
    "header",
    None,
]


@pytest.mark.parametrize("header", HEADERS)
def test_inline_header_checks_match_the_checked_path(header: Any) -> None:
    try:
        expected: Header | str = Header._from_dict_checked(header)
    except RemoteProtocolError as exc:
        expected = str(exc)
    try:
        got: Header | str = Session(KEY).deserialize(_signed(header, [], []))[1].header
    except RemoteProtocolError as exc:
        got = str(exc)
    assert got == expected
    if isinstance(got, Header):
        assert type(got) is Header
        assert type(got.extra) is dict


SHAPES = [
    ([], []),
    ([b"id"], []),
    ([b"id"], [b"buf"]),
    ([b"a", b"b"], []),
    ([], [b"b1", b"b2"]),
]


@pytest.mark.parametrize(("identities", "buffers"), SHAPES)
def test_every_frame_shape_is_read_alike(identities: list[bytes], buffers: list[bytes]) -> None:
    frames = _signed(_SIX, identities, buffers)
    for sequence in (list, tuple):
        got_ids, msg = Session(KEY).deserialize(sequence(frames))
        assert got_ids == identities
        assert msg.header.msg_id == "m1"
        assert msg.buffers == tuple(buffers)
        assert type(msg.buffers) is tuple


def test_a_delimiter_as_identity_is_not_taken_for_the_real_one() -> None:
    # Seven frames whose first is the delimiter: the message starts there (as
    # jupyter_client reads it), so the real delimiter is taken as the signature.
    frames = _signed(_SIX, [DELIMITER], [])
    with pytest.raises(RemoteProtocolError, match="bad signature"):
        Session(KEY).deserialize(frames)


@pytest.mark.parametrize("identity", ["text", 5, None])
def test_an_identity_that_is_not_bytes_like_is_a_remote_error(identity: object) -> None:
    # A signed message behind it: only the identity is wrong.
    frames: list[Any] = [identity, *_signed(_SIX, [], [])]
    with pytest.raises(RemoteProtocolError, match="identity frames must be bytes-like"):
        Session(KEY).deserialize(frames)
