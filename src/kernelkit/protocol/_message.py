"""Message and Header value objects, and helpers that build requests and replies."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from kernelkit._errors import LocalProtocolError, RemoteProtocolError

__all__ = [
    "PROTOCOL_VERSION",
    "Header",
    "Message",
    "new_id",
    "now_iso",
]

#: The messaging protocol version kernelkit speaks (the spec's newest: "Messaging in Jupyter").
PROTOCOL_VERSION = "5.5"

_urandom = os.urandom
_HEADER_STR_FIELDS = ("msg_id", "msg_type", "session", "username", "date", "version")
_HEADER_KNOWN = frozenset((*_HEADER_STR_FIELDS, "subshell_id"))


def new_id() -> str:
    """A fresh message or session id (uuid4 hex, as jupyter_client makes them)."""
    # uuid.uuid4().hex, without the UUID object: random bytes with the version 4 and
    # RFC 4122 variant bits set.
    b = bytearray(_urandom(16))
    b[6] = (b[6] & 0x0F) | 0x40
    b[8] = (b[8] & 0x3F) | 0x80
    return b.hex()


def now_iso() -> str:
    """The current UTC time as an ISO 8601 string with offset, as headers carry it."""
    return datetime.now(timezone.utc).isoformat()


@dataclass(frozen=True, slots=True)
class Header:
    """A message header.

    ``date`` stays the ISO 8601 string that was sent, so it round-trips byte for byte and
    costs nothing on the hot path; :meth:`datetime` parses it on demand. Keys the spec does
    not name are kept in ``extra`` and written back unchanged.
    """

    msg_id: str
    msg_type: str
    session: str
    username: str = "kernelkit"
    date: str = ""
    version: str = PROTOCOL_VERSION
    subshell_id: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    def datetime(self) -> datetime | None:
        """``date`` parsed, or None when it is empty or not ISO 8601."""
        if not self.date:
            return None
        text = self.date[:-1] + "+00:00" if self.date.endswith("Z") else self.date
        try:
            return datetime.fromisoformat(text)
        except ValueError:
            return None

    def to_dict(self) -> dict[str, Any]:
        """The header as the JSON object that goes on the wire."""
        d: dict[str, Any] = {
            "msg_id": self.msg_id,
            "msg_type": self.msg_type,
            "username": self.username,
            "session": self.session,
            "date": self.date,
            "version": self.version,
        }
        if self.subshell_id is not None:
            d["subshell_id"] = self.subshell_id
        if self.extra:
            d.update(self.extra)
        return d

    @classmethod
    def from_dict(cls, d: object) -> Header:
        """Validate a header received from a peer.

        Missing optional fields (``session``, ``username``, ``date``, ``version``) become
        ``""``; keys the spec does not name go to ``extra``.

        Raises:
            RemoteProtocolError: ``d`` is not an object, or a field is missing or of the
                wrong type.
        """
        if cls is Header:
            return received_header(d)
        return cls._from_dict_checked(d)

    @classmethod
    def _from_dict_checked(cls, d: object) -> Header:
        if not isinstance(d, dict):
            raise RemoteProtocolError(f"header must be a JSON object, got {type(d).__name__}")
        for name in ("msg_id", "msg_type"):
            value = d.get(name)
            if not isinstance(value, str) or not value:
                raise RemoteProtocolError(f"header.{name} must be a non-empty string")
        for name in ("session", "username", "date", "version"):
            value = d.get(name, "")
            if not isinstance(value, str):
                raise RemoteProtocolError(
                    f"header.{name} must be a string, got {type(value).__name__}"
                )
        subshell_id = d.get("subshell_id")
        if subshell_id is not None and not isinstance(subshell_id, str):
            raise RemoteProtocolError("header.subshell_id must be a string or null")
        extra = {k: v for k, v in d.items() if k not in _HEADER_KNOWN}
        return cls(
            msg_id=d["msg_id"],
            msg_type=d["msg_type"],
            session=d.get("session", ""),
            username=d.get("username", ""),
            date=d.get("date", ""),
            version=d.get("version", ""),
            subshell_id=subshell_id,
            extra=extra,
        )


def received_header(d: object) -> Header:
    """``Header.from_dict(d)``, as a plain function (a classmethod call costs a tenth of
    the whole header). The deserializer calls it for parent headers and for any header
    its inlined copy of the fast path below does not take; keep the two in step
    (tests/protocol/test_session_fastpaths.py compares them).

    Raises:
        RemoteProtocolError: as :meth:`Header.from_dict`.
    """
    # Exact types as JSON parsing makes them, all six standard keys present, checked
    # inline; see _HeaderSlots for the build.
    if type(d) is dict:
        try:
            msg_id = d["msg_id"]
            msg_type = d["msg_type"]
            session = d["session"]
            username = d["username"]
            date = d["date"]
            version = d["version"]
        except KeyError:
            pass  # a field is missing: the checked path applies the defaults
        else:
            subshell_id = d.get("subshell_id")
            if (
                type(msg_id) is str
                and msg_id
                and type(msg_type) is str
                and msg_type
                and type(session) is str
                and type(username) is str
                and type(date) is str
                and type(version) is str
                and (subshell_id is None or type(subshell_id) is str)
            ):
                h = _HeaderSlots()
                h.msg_id = msg_id
                h.msg_type = msg_type
                h.session = session
                h.username = username
                h.date = date
                h.version = version
                h.subshell_id = subshell_id
                # Six (or seven, with subshell_id) keys that are all known: no extras.
                h.extra = (
                    {}
                    if len(d) == (6 if subshell_id is None else 7)
                    else {k: v for k, v in d.items() if k not in _HEADER_KNOWN}
                )
                h.__class__ = Header  # type: ignore[assignment]
                return h  # type: ignore[return-value]
    return Header._from_dict_checked(d)


@dataclass(frozen=True, slots=True)
class Message:
    """One Jupyter message: header, parent header, metadata, content and binary buffers.

    ``parent_header`` is None when the wire carried ``{}`` (a message with no parent).
    """

    header: Header
    content: Mapping[str, Any] = field(default_factory=dict)
    parent_header: Header | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)
    buffers: tuple[bytes | memoryview, ...] = ()

    @property
    def msg_type(self) -> str:
        return self.header.msg_type

    @property
    def msg_id(self) -> str:
        return self.header.msg_id

    @property
    def parent_id(self) -> str | None:
        """The msg_id of the request this message answers, if any."""
        return self.parent_header.msg_id if self.parent_header is not None else None

    def to_dict(self) -> dict[str, Any]:
        """The message in jupyter_client's dict shape, as its ``Session.deserialize``
        returns it.

        Keys ``header``, ``parent_header`` (``{}`` without a parent), ``metadata``,
        ``content``, ``buffers`` (a list) and, at the top, ``msg_id`` and ``msg_type``.
        Each header's ``date`` is a timezone-aware :class:`~datetime.datetime` (a date
        without an offset is taken as UTC, as the spec writes dates); a date that is
        empty or not ISO 8601 stays the string it was. Fresh dicts: changing them does
        not change the message.
        """
        return {
            "header": _header_dict(self.header),
            "msg_id": self.header.msg_id,
            "msg_type": self.header.msg_type,
            "parent_header": _header_dict(self.parent_header) if self.parent_header else {},
            "metadata": dict(self.metadata),
            "content": dict(self.content),
            "buffers": list(self.buffers),
        }

    @classmethod
    def build(
        cls,
        msg_type: str,
        content: Mapping[str, Any] | None = None,
        *,
        session: str,
        parent: Message | Header | None = None,
        subshell_id: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        buffers: tuple[bytes | memoryview, ...] = (),
        username: str = "kernelkit",
    ) -> Message:
        """Make a new message with a fresh id and the current date.

        ``parent`` (the request being answered) becomes ``parent_header``.

        Raises:
            LocalProtocolError: ``msg_type`` is empty.
        """
        if not msg_type or not isinstance(msg_type, str):
            raise LocalProtocolError("msg_type must be a non-empty string")
        parent_header = parent.header if isinstance(parent, Message) else parent
        # Our own values, already known good: build without the dataclass __init__s.
        h = _HeaderSlots()
        h.msg_id = new_id()
        h.msg_type = msg_type
        h.session = session
        h.username = username
        h.date = now_iso()
        h.version = PROTOCOL_VERSION
        h.subshell_id = subshell_id
        h.extra = {}
        h.__class__ = Header  # type: ignore[assignment]
        return unchecked_message(
            h,  # type: ignore[arg-type]
            dict(content) if content is not None else {},
            parent_header,
            dict(metadata) if metadata is not None else {},
            buffers,
        )


def _header_dict(header: Header) -> dict[str, Any]:
    d = header.to_dict()
    when = header.datetime()
    if when is not None:
        d["date"] = when if when.tzinfo is not None else when.replace(tzinfo=timezone.utc)
    return d


# Building received messages is the hot path of every client, and a frozen dataclass's
# __init__ (object.__setattr__ per field) costs more than parsing the JSON. So a
# deserializer fills a plain twin with the same slots, then assigns __class__: CPython
# allows that between classes of identical layout, and the result is an ordinary frozen
# Header/Message (equal, hashable, immutable). Only for values already validated; neither
# class has a __post_init__ that this skips (tests check both).


class _HeaderSlots:
    __slots__ = Header.__slots__
    msg_id: str
    msg_type: str
    session: str
    username: str
    date: str
    version: str
    subshell_id: str | None
    extra: Mapping[str, Any]


class _MessageSlots:
    __slots__ = Message.__slots__
    header: Header
    content: Mapping[str, Any]
    parent_header: Header | None
    metadata: Mapping[str, Any]
    buffers: tuple[bytes | memoryview, ...]


def unchecked_message(
    header: Header,
    content: Mapping[str, Any],
    parent_header: Header | None,
    metadata: Mapping[str, Any],
    buffers: tuple[bytes | memoryview, ...],
) -> Message:
    """``Message(...)`` without the dataclass __init__, for a deserializer's validated parts."""
    m = _MessageSlots()
    m.header = header
    m.content = content
    m.parent_header = parent_header
    m.metadata = metadata
    m.buffers = buffers
    m.__class__ = Message  # type: ignore[assignment]
    return m  # type: ignore[return-value]
