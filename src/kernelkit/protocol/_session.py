"""Signing, serializing and verifying Jupyter messages (sans-IO).

A :class:`Session` turns a :class:`Message` into the ZeroMQ frames of the wire protocol
and back::

    identities..., b"<IDS|MSG>", signature, header, parent_header, metadata, content, buffers...

The signature is the hex HMAC of the four JSON frames. Incoming frames are checked in the
order that costs an attacker the most and us the least: size caps first, then the
signature (constant time), then the replay history, then JSON parsing and field types.
Anything wrong raises :class:`~kernelkit.RemoteProtocolError`; nothing is half-returned.
"""

from __future__ import annotations

import hashlib
import json
from collections import deque
from collections.abc import Mapping, Sequence
from hmac import compare_digest
from typing import Any

import orjson

from kernelkit._errors import (
    LocalProtocolError,
    MessageTooLarge,
    RemoteProtocolError,
    SignatureMismatch,
)
from kernelkit.protocol._message import (
    _HEADER_KNOWN,
    Header,
    Message,
    _HeaderSlots,
    _MessageSlots,
    new_id,
    received_header,
)

__all__ = [
    "DEFAULT_MAX_MESSAGE_BYTES",
    "DEFAULT_REPLAY_HISTORY",
    "DEFAULT_REPLAY_HISTORY_BYTES",
    "DELIMITER",
    "Session",
]

#: The frame that separates routing identities from the message.
DELIMITER = b"<IDS|MSG>"

#: Largest message (all frames together) :meth:`Session.deserialize` accepts by default.
DEFAULT_MAX_MESSAGE_BYTES = 512 * 1024 * 1024
#: How many signatures the replay history remembers by default (jupyter_client: 2**16).
DEFAULT_REPLAY_HISTORY = 1 << 16
#: How many bytes of signatures the replay history holds at most by default.
DEFAULT_REPLAY_HISTORY_BYTES = 16 * 1024 * 1024

# The longest hex digest any hashlib algorithm produces (sha512, sha3_512, blake2b).
# An unsigned session ignores the signature frame, but never reads a longer one.
_MAX_UNSIGNED_SIGNATURE = 128

# Translation tables that XOR every key byte with the HMAC pads (RFC 2104).
_IPAD = bytes((x ^ 0x36) for x in range(256))
_OPAD = bytes((x ^ 0x5C) for x in range(256))
_NO_PARENT: Any = object()
# Below this many bytes, hashing the four JSON frames joined costs less than four updates.
_JOIN_BELOW = 4096
# Parent headers remembered per session: how many, and the largest one (in bytes).
_PARENT_CACHE_SIZE = 32
_PARENT_CACHE_MAX_BYTES = 4096

_loads = orjson.loads
_dumps = orjson.dumps
_JSONDecodeError = orjson.JSONDecodeError


def _json_default(obj: object) -> object:
    # orjson serializes dict but not other mappings; anything else is an error.
    if isinstance(obj, Mapping):
        return dict(obj)
    raise TypeError(f"Type is not JSON serializable: {type(obj).__name__}")


def _dumps_lenient(obj: object, what: str, msg_type: str) -> bytes:
    """The slow path: non-dict mappings and non-string keys (as the json module allows)."""
    try:
        return _dumps(obj, default=_json_default, option=orjson.OPT_NON_STR_KEYS)
    except TypeError as exc:  # orjson.JSONEncodeError
        raise LocalProtocolError(
            f"the {what} of this {msg_type!r} message cannot be sent as JSON: {exc}"
        ) from exc


def signature_scheme_problem(signature_scheme: str) -> str | None:
    """Why a Session cannot sign with ``signature_scheme`` (None: it can). The one rule
    that connection files and sessions share."""
    prefix, sep, algorithm = signature_scheme.partition("-")
    if prefix != "hmac" or not sep or not algorithm:
        return "it must be 'hmac-' followed by a hashlib algorithm, e.g. 'hmac-sha256'"
    try:
        probe = hashlib.new(algorithm)
    except (ValueError, TypeError):
        available = ", ".join(sorted(hashlib.algorithms_available))
        return f"no hash algorithm {algorithm!r} here (available: {available})"
    if algorithm.startswith("shake") or probe.digest_size <= 0:
        return f"{algorithm} has no fixed digest size, so it cannot make an HMAC"
    return None


def _hash_factory(signature_scheme: str) -> Any:
    """The hashlib constructor for an ``hmac-<algorithm>`` scheme.

    Raises:
        LocalProtocolError: the scheme is not ``hmac-`` followed by a hashlib algorithm
            with a fixed-size digest.
    """
    problem = signature_scheme_problem(signature_scheme)
    if problem is not None:
        raise LocalProtocolError(f"unsupported signature_scheme {signature_scheme!r}: {problem}")
    algorithm = signature_scheme.partition("-")[2]

    def factory(data: bytes = b"") -> Any:
        return hashlib.new(algorithm, data)

    # The named constructors (hashlib.sha256, ...) skip a name lookup per message.
    named = getattr(hashlib, algorithm, None)
    return named if callable(named) else factory


class Session:
    """Signs and verifies messages with one key, and frames them for the wire.

    ``key`` empty means unsigned: the signature frame is ``b""`` and is not checked.
    ``signature_scheme`` is ``"hmac-"`` plus any hashlib algorithm with a fixed digest
    (``hmac-sha256``, ``hmac-sha1``, ``hmac-sha512``, ``hmac-md5``, ...).

    Incoming messages are remembered by signature for replay protection; the history
    keeps at most ``replay_history`` signatures and ``replay_history_bytes`` bytes of them
    (0 disables it), forgetting the oldest first, so which one is forgotten never depends
    on chance. Only signatures that verified are recorded, and all of them have the
    scheme's length, so the byte bound is an entry bound fixed at construction.
    ``max_message_bytes`` caps the total size of the frames :meth:`deserialize` accepts.

    Raises:
        LocalProtocolError: the key is not bytes, or the signature scheme is unsupported.
    """

    __slots__ = (
        "_inner",
        "_key",
        "_max_message_bytes",
        "_outer",
        "_parents",
        "_seen",
        "_seen_cap",
        "_seen_order",
        "_session_id",
        "_sig_len",
        "_signature_scheme",
        "username",
    )

    def __init__(
        self,
        key: bytes = b"",
        *,
        signature_scheme: str = "hmac-sha256",
        session_id: str | None = None,
        username: str = "kernelkit",
        max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
        replay_history: int = DEFAULT_REPLAY_HISTORY,
        replay_history_bytes: int = DEFAULT_REPLAY_HISTORY_BYTES,
    ) -> None:
        if not isinstance(key, (bytes, bytearray)):
            raise LocalProtocolError(
                f"Session key must be bytes, got {type(key).__name__} (encode the "
                "connection file's key as ASCII)"
            )
        if not isinstance(signature_scheme, str):
            raise LocalProtocolError("signature_scheme must be a string such as 'hmac-sha256'")
        factory = _hash_factory(signature_scheme)
        self._key = bytes(key)
        self._signature_scheme = signature_scheme
        self._session_id = session_id if session_id is not None else new_id()
        self.username = username
        self._max_message_bytes = max_message_bytes

        # HMAC (RFC 2104) prepared once: the inner and outer hashes already hold the padded
        # key, so each message costs two C-level copies instead of a new hmac object.
        probe = factory()
        block_size = probe.block_size
        self._sig_len: int = 2 * probe.digest_size
        self._seen: set[bytes] = set()
        self._parents: dict[bytes, Header] = {}
        self._seen_order: deque[bytes] = deque()
        self._seen_cap = max(0, min(replay_history, replay_history_bytes // self._sig_len))
        k = self._key
        if len(k) > block_size:
            k = factory(k).digest()
        k = k.ljust(block_size, b"\0")
        self._inner = factory(k.translate(_IPAD))
        self._outer = factory(k.translate(_OPAD))

    @property
    def session_id(self) -> str:
        """The id written into the ``session`` field of every header this session makes."""
        return self._session_id

    @property
    def key(self) -> bytes:
        """The signing key (``b""`` for unsigned)."""
        return self._key

    @property
    def signature_scheme(self) -> str:
        """The scheme, e.g. ``"hmac-sha256"``."""
        return self._signature_scheme

    @property
    def max_message_bytes(self) -> int:
        """The largest total frame size :meth:`deserialize` accepts."""
        return self._max_message_bytes

    @property
    def seen_signatures(self) -> int:
        """How many signatures the replay history holds now."""
        return len(self._seen_order)

    @property
    def seen_signature_bytes(self) -> int:
        """How many bytes of signatures the replay history holds now."""
        return len(self._seen_order) * self._sig_len

    def msg(
        self,
        msg_type: str,
        content: Mapping[str, Any] | None = None,
        *,
        parent: Message | Header | None = None,
        subshell_id: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        buffers: tuple[bytes | memoryview, ...] = (),
    ) -> Message:
        """A new message from this session (fresh id, current date).

        ``parent`` is the request being answered; it becomes ``parent_header``.

        Raises:
            LocalProtocolError: ``msg_type`` is empty.
        """
        return Message.build(
            msg_type,
            content,
            session=self._session_id,
            parent=parent,
            subshell_id=subshell_id,
            metadata=metadata,
            buffers=buffers,
            username=self.username,
        )

    def sign(self, parts: Sequence[bytes | memoryview]) -> bytes:
        """The hex HMAC of ``parts`` as ASCII bytes; ``b""`` when the key is empty."""
        if not self._key:
            return b""
        inner = self._inner.copy()
        for part in parts:
            inner.update(part)
        outer = self._outer.copy()
        outer.update(inner.digest())
        signature: bytes = outer.hexdigest().encode()
        return signature

    def serialize(self, msg: Message, identities: Sequence[bytes] = ()) -> list[bytes | memoryview]:
        """The frames for ``msg``: identities, delimiter, signature, four JSON frames, buffers.

        Buffers are passed on as memoryviews of the caller's objects, without copies.

        Raises:
            LocalProtocolError: a part of the message cannot be written as JSON, or a
                buffer does not support the buffer protocol.
        """
        parent_header = msg.parent_header
        metadata = msg.metadata
        content = msg.content
        try:
            header_b = _dumps(msg.header.to_dict())
            parent_b = _dumps(parent_header.to_dict()) if parent_header is not None else b"{}"
            metadata_b = _dumps(metadata)
            content_b = _dumps(content)
        except TypeError:  # orjson.JSONEncodeError: a non-dict mapping, a non-str key, ...
            msg_type = msg.header.msg_type
            header_b = _dumps_lenient(msg.header.to_dict(), "header", msg_type)
            parent_b = (
                _dumps_lenient(parent_header.to_dict(), "parent_header", msg_type)
                if parent_header is not None
                else b"{}"
            )
            metadata_b = _dumps_lenient(metadata, "metadata", msg_type)
            content_b = _dumps_lenient(content, "content", msg_type)

        if self._key:
            inner = self._inner.copy()
            inner.update(header_b)
            inner.update(parent_b)
            inner.update(metadata_b)
            inner.update(content_b)
            outer = self._outer.copy()
            outer.update(inner.digest())
            signature = outer.hexdigest().encode()
        else:
            signature = b""

        frames: list[bytes | memoryview] = list(identities) if identities else []
        frames += (DELIMITER, signature, header_b, parent_b, metadata_b, content_b)
        if msg.buffers:
            try:
                frames += [b if type(b) is memoryview else memoryview(b) for b in msg.buffers]
            except TypeError as exc:
                raise LocalProtocolError(
                    f"a buffer of this {msg.header.msg_type!r} message is not bytes-like: {exc}"
                ) from exc
        return frames

    def deserialize(self, frames: Sequence[bytes | memoryview]) -> tuple[list[bytes], Message]:
        """Verify and parse received frames into ``(identities, message)``.

        The signature is checked in constant time before anything is parsed, and recorded
        in the replay history only once it has verified.

        Raises:
            RemoteProtocolError: the frames are malformed, too large, forged (bad
                signature) or replayed (signature seen before), or a field has the wrong
                type.
        """
        try:
            nframes = len(frames)
            # The usual shapes unpack directly: a client's DEALER socket receives no
            # identities, a kernel's ROUTER socket one, and most messages carry no buffers.
            buffers: Sequence[bytes | memoryview] = ()
            if nframes == 6 and frames[0] == DELIMITER:
                idx = 0
                _, signature, header_b, parent_b, metadata_b, content_b = frames
            elif nframes == 7 and frames[1] == DELIMITER != frames[0]:
                idx = 1
                _, _, signature, header_b, parent_b, metadata_b, content_b = frames
            else:
                try:
                    idx = frames.index(DELIMITER)  # a C-level scan for lists and tuples
                except ValueError:
                    raise RemoteProtocolError(
                        f"no {DELIMITER!r} delimiter among {nframes} frames: not a Jupyter message"
                    ) from None
                if nframes - idx < 6:
                    raise RemoteProtocolError(
                        f"truncated message: {nframes - idx - 1} frames after {DELIMITER!r}, "
                        "need a signature and 4 JSON frames"
                    )
                signature, header_b, parent_b, metadata_b, content_b = frames[idx + 1 : idx + 6]
                buffers = frames[idx + 6 :]
            total = len(signature) + len(header_b) + len(parent_b)
            total += len(metadata_b) + len(content_b)
            if buffers:
                total += sum(map(len, buffers))
        except TypeError as exc:
            raise RemoteProtocolError(f"frames must be bytes-like: {exc}") from exc
        if total > self._max_message_bytes:
            raise MessageTooLarge(
                f"message too large: {total} bytes, the limit is {self._max_message_bytes} "
                "(Session max_message_bytes)",
                limit=self._max_message_bytes,
            )

        if self._key:
            if len(signature) != self._sig_len:
                raise SignatureMismatch(
                    "unsigned message, but this session has a key"
                    if not signature
                    else f"bad signature: {len(signature)} bytes, a {self._signature_scheme} "
                    f"signature is {self._sig_len} hex digits"
                )
            inner = self._inner.copy()
            try:
                if total <= _JOIN_BELOW:  # one update of a joined copy is cheaper
                    inner.update(b"".join((header_b, parent_b, metadata_b, content_b)))
                else:
                    inner.update(header_b)
                    inner.update(parent_b)
                    inner.update(metadata_b)
                    inner.update(content_b)
            except TypeError as exc:
                raise RemoteProtocolError(f"frames must be bytes-like: {exc}") from exc
            outer = self._outer.copy()
            outer.update(inner.digest())
            try:
                ok = compare_digest(signature, outer.hexdigest().encode())
            except TypeError as exc:
                raise RemoteProtocolError(f"signature frame must be bytes-like: {exc}") from exc
            if not ok:
                raise SignatureMismatch(
                    f"bad signature: the {self._signature_scheme} HMAC does not match "
                    "(forged or corrupted message, or a different key)"
                )
            if type(signature) is not bytes:
                signature = bytes(signature)
            seen = self._seen
            if signature in seen:
                raise RemoteProtocolError(
                    "replayed message: a message with this signature was already received "
                    "(a duplicate send or a replay attack)"
                )
            seen.add(signature)
            order = self._seen_order
            order.append(signature)
            if len(order) > self._seen_cap:  # forget the oldest: first in, first out
                seen.discard(order.popleft())
        elif len(signature) > _MAX_UNSIGNED_SIGNATURE:
            raise RemoteProtocolError(
                f"bad signature: {len(signature)} bytes, longer than any HMAC hex digest"
            )

        # Requests carry b"{}" for parent_header and often for metadata: skip the parser.
        # JSON null means "none" there too: xeus-python 0.19 sends it in iopub_welcome.
        # Replies and outputs repeat their request's header byte for byte: a small cache
        # of recent parent headers skips parsing and validating it again.
        parent: Header | None = None
        parent_d: Any = _NO_PARENT
        try:
            header_d = _loads(header_b)
            if parent_b != b"{}" and parent_b != b"null":
                if type(parent_b) is bytes:
                    parent = self._parents.get(parent_b)
                if parent is None:
                    parent_d = _loads(parent_b)
            metadata = {} if metadata_b == b"{}" or metadata_b == b"null" else _loads(metadata_b)
            content = _loads(content_b)
        except _JSONDecodeError:
            # What orjson refuses but JSON allows (integers past 64 bits, NaN) is content
            # like any other: parse it the slow way rather than drop a verified message.
            header_d = loads_json(header_b, what="header frame")
            if parent_b != b"{}" and parent_b != b"null":
                parent, parent_d = None, loads_json(parent_b, what="parent_header frame")
            metadata = (
                {}
                if metadata_b == b"{}" or metadata_b == b"null"
                else loads_json(metadata_b, what="metadata frame")
            )
            content = loads_json(content_b, what="content frame")

        if type(metadata) is not dict:
            raise RemoteProtocolError(
                f"metadata must be a JSON object, got {type(metadata).__name__}"
            )
        if type(content) is not dict:
            raise RemoteProtocolError(
                f"content must be a JSON object, got {type(content).__name__}"
            )
        # received_header(header_d), its fast path folded in (a call and its checks cost
        # a tenth of a small message): exact JSON types, the six standard keys present.
        # Anything else takes the checked path, which applies defaults or says what is wrong.
        header: Any = None
        if type(header_d) is dict:
            try:
                msg_id = header_d["msg_id"]
                msg_type = header_d["msg_type"]
                session = header_d["session"]
                username = header_d["username"]
                date = header_d["date"]
                version = header_d["version"]
            except KeyError:
                pass
            else:
                nkeys = len(header_d)
                subshell_id = None if nkeys == 6 else header_d.get("subshell_id")
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
                    header = _HeaderSlots()
                    header.msg_id = msg_id
                    header.msg_type = msg_type
                    header.session = session
                    header.username = username
                    header.date = date
                    header.version = version
                    header.subshell_id = subshell_id
                    # Six keys, or seven with subshell_id, all known: no extras.
                    header.extra = (
                        {}
                        if nkeys == 6 or (nkeys == 7 and subshell_id is not None)
                        else {k: v for k, v in header_d.items() if k not in _HEADER_KNOWN}
                    )
                    header.__class__ = Header
        if header is None:
            header = received_header(header_d)
        if parent_d is not _NO_PARENT and (type(parent_d) is not dict or parent_d):
            try:
                parent = received_header(parent_d)
            except RemoteProtocolError as exc:
                raise RemoteProtocolError(f"parent_header: {exc}") from None
            if type(parent_b) is bytes and len(parent_b) <= _PARENT_CACHE_MAX_BYTES:
                parents = self._parents
                if len(parents) >= _PARENT_CACHE_SIZE:
                    parents.clear()
                parents[parent_b] = parent

        if not idx:
            identities = []
        elif idx == 1 and type(frames[0]) is bytes:  # a kernel's ROUTER: one identity
            identities = [frames[0]]
        else:
            try:  # bytes(memoryview(f)): an int would make zero bytes, a str fails unclearly
                identities = [f if type(f) is bytes else bytes(memoryview(f)) for f in frames[:idx]]
            except TypeError as exc:
                raise RemoteProtocolError(f"identity frames must be bytes-like: {exc}") from exc
        # unchecked_message(...), inlined: a call costs a twentieth of a small message.
        m = _MessageSlots()
        m.header = header
        m.content = content
        m.parent_header = parent
        m.metadata = metadata
        m.buffers = tuple(buffers) if buffers else ()
        m.__class__ = Message  # type: ignore[assignment]
        return identities, m  # type: ignore[return-value]


def loads_json(data: bytes | memoryview | str, *, what: str = "") -> Any:
    """Parse JSON as the protocol allows it: orjson, then the standard library for what
    orjson refuses (integers past 64 bits, ``NaN``, ``Infinity``), as jupyter_client does.

    Raises:
        RemoteProtocolError: it is not JSON at all (naming ``what`` it was).
    """
    try:
        return _loads(data)
    except _JSONDecodeError as exc:
        try:
            return json.loads(bytes(data) if isinstance(data, memoryview) else data)
        except (ValueError, RecursionError):
            where = f"{what} " if what else ""
            raise RemoteProtocolError(f"{where}is not valid JSON: {exc}") from None
