"""Header and Message value objects, and Header.from_dict's fast path for received headers."""

from __future__ import annotations

import dataclasses
import datetime
import pickle
import uuid

import pytest

from kernelkit import LocalProtocolError, RemoteProtocolError
from kernelkit.protocol import PROTOCOL_VERSION, Header, Message, new_id
from kernelkit.protocol._message import unchecked_message

WIRE = {
    "msg_id": "m1",
    "msg_type": "execute_request",
    "session": "s",
    "username": "u",
    "date": "2024-01-02T03:04:05.678901Z",
    "version": "5.3",
}


def test_fast_path_builds_an_ordinary_frozen_header() -> None:
    fast = Header.from_dict(dict(WIRE))
    slow = Header(**WIRE)  # type: ignore[arg-type]
    assert type(fast) is Header
    assert fast == slow
    assert repr(fast) == repr(slow)
    assert dataclasses.asdict(fast) == dataclasses.asdict(slow)
    with pytest.raises(dataclasses.FrozenInstanceError):
        fast.msg_id = "x"  # type: ignore[misc]
    assert pickle.loads(pickle.dumps(fast)) == fast
    assert fast.datetime() is not None


def test_unchecked_message_is_an_ordinary_frozen_message() -> None:
    header = Header(**WIRE)  # type: ignore[arg-type]
    fast = unchecked_message(header, {"a": 1}, None, {}, (b"x",))
    slow = Message(header=header, content={"a": 1}, buffers=(b"x",))
    assert type(fast) is Message
    assert fast == slow
    assert repr(fast) == repr(slow)
    with pytest.raises(dataclasses.FrozenInstanceError):
        fast.content = {}  # type: ignore[misc]


def test_no_post_init_is_skipped() -> None:
    # The fast paths bypass __init__; that is only sound while neither class has one.
    assert not hasattr(Header, "__post_init__")
    assert not hasattr(Message, "__post_init__")


@pytest.mark.parametrize(
    ("wire", "expected"),
    [
        (WIRE, Header(**WIRE)),  # type: ignore[arg-type]
        ({**WIRE, "subshell_id": "sub"}, Header(**WIRE, subshell_id="sub")),  # type: ignore[arg-type]
        ({**WIRE, "subshell_id": None}, Header(**WIRE)),  # type: ignore[arg-type]
        ({**WIRE, "x": [1]}, Header(**WIRE, extra={"x": [1]})),  # type: ignore[arg-type]
        ({"msg_id": "m", "msg_type": "t"}, Header("m", "t", "", "", "", "")),
        # An unknown key with a known one missing: still six keys, still kept in extra.
        (
            {k: v for k, v in WIRE.items() if k != "version"} | {"x": 1},
            Header("m1", "execute_request", "s", "u", WIRE["date"], "", extra={"x": 1}),
        ),
    ],
)
def test_from_dict_values(wire: dict[str, object], expected: Header) -> None:
    assert Header.from_dict(dict(wire)) == expected


class _Str(str):
    pass


def test_from_dict_accepts_str_subclasses_through_the_checked_path() -> None:
    h = Header.from_dict({**WIRE, "msg_id": _Str("m9")})
    assert h.msg_id == "m9"


@pytest.mark.parametrize(
    ("wire", "problem"),
    [
        ([], "must be a JSON object"),
        ({**WIRE, "msg_id": ""}, "msg_id must be a non-empty string"),
        ({**WIRE, "msg_id": 1}, "msg_id must be a non-empty string"),
        ({k: v for k, v in WIRE.items() if k != "msg_type"}, "msg_type must be"),
        ({**WIRE, "session": None}, "session must be a string"),
        ({**WIRE, "date": 20240101}, "date must be a string"),
        ({**WIRE, "version": 5.3}, "version must be a string"),
        ({**WIRE, "username": ["u"]}, "username must be a string"),
        ({**WIRE, "subshell_id": 3}, "subshell_id must be a string or null"),
    ],
)
def test_from_dict_rejects(wire: object, problem: str) -> None:
    with pytest.raises(RemoteProtocolError, match=problem):
        Header.from_dict(wire)


def test_new_id_is_a_uuid4_hex() -> None:
    ids = {new_id() for _ in range(200)}
    assert len(ids) == 200
    for i in ids:
        u = uuid.UUID(hex=i)
        assert (u.version, u.variant, u.hex) == (4, uuid.RFC_4122, i)


def test_build_makes_an_ordinary_message() -> None:
    request = Message.build("execute_request", {"code": "1"}, session="s")
    reply = Message.build(
        "execute_reply", {"status": "ok"}, session="s", parent=request, subshell_id="x"
    )
    assert type(reply) is Message
    assert type(reply.header) is Header
    assert reply.parent_header == request.header
    assert reply.header.subshell_id == "x"
    assert reply.header.version == PROTOCOL_VERSION
    assert reply.header.datetime() is not None
    assert reply == dataclasses.replace(reply)
    with pytest.raises(LocalProtocolError):
        Message.build("", session="s")


# -- to_dict: jupyter_client's message dict ---------------------------------------------


def test_to_dict_has_jupyter_clients_shape() -> None:
    request = Message.build("execute_request", {"code": "1"}, session="s", subshell_id="sub")
    reply = Message.build(
        "execute_reply",
        {"status": "ok"},
        session="k",
        parent=request,
        metadata={"m": 1},
        buffers=(b"b",),
    )
    d = reply.to_dict()
    assert set(d) == {
        "header",
        "parent_header",
        "metadata",
        "content",
        "buffers",
        "msg_id",
        "msg_type",
    }
    assert d["msg_id"] == d["header"]["msg_id"] == reply.msg_id
    assert d["msg_type"] == d["header"]["msg_type"] == "execute_reply"
    assert d["parent_header"]["msg_id"] == request.msg_id
    assert d["parent_header"]["subshell_id"] == "sub"
    assert d["content"] == {"status": "ok"}
    assert d["metadata"] == {"m": 1}
    assert d["buffers"] == [b"b"]
    for header in (d["header"], d["parent_header"]):
        date = header["date"]
        assert isinstance(date, datetime.datetime)
        assert date.tzinfo is not None
        assert date.utcoffset() == datetime.timedelta(0)


def test_to_dict_without_parent_and_fresh_dicts() -> None:
    msg = Message.build("status", {"execution_state": "idle"}, session="k")
    d = msg.to_dict()
    assert d["parent_header"] == {}
    d["content"]["execution_state"] = "busy"
    assert msg.content["execution_state"] == "idle"


@pytest.mark.parametrize(
    ("date", "expected"),
    [
        (
            "2024-01-02T03:04:05.678901Z",
            datetime.datetime(2024, 1, 2, 3, 4, 5, 678901, tzinfo=datetime.timezone.utc),
        ),
        (
            "2024-01-02T03:04:05+02:00",
            datetime.datetime(
                2024, 1, 2, 3, 4, 5, tzinfo=datetime.timezone(datetime.timedelta(hours=2))
            ),
        ),
        # No offset: UTC, as the spec writes dates.
        (
            "2024-01-02T03:04:05",
            datetime.datetime(2024, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc),
        ),
        ("", ""),  # no date: kept as it came
        ("yesterday", "yesterday"),
    ],
)
def test_to_dict_dates(date: str, expected: object) -> None:
    header = Header(**{**WIRE, "date": date})  # type: ignore[arg-type]
    got = Message(header=header, parent_header=header).to_dict()
    assert got["header"]["date"] == expected
    assert got["parent_header"]["date"] == expected
    if isinstance(expected, datetime.datetime):
        assert got["header"]["date"].tzinfo is not None
