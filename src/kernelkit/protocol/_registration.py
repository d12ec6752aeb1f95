"""The JEP 66 registration messages, sans-IO.

A kernel that chooses its own ports (xeus-python 0.19 and other xeus-zmq kernels) is
given a registration file instead of a connection file. It binds its five ports, connects
a DEALER to the launcher's registration ROUTER and sends::

    b"<IDS|MSG>", signature, content

where ``content`` is one JSON object ``{kernel_id, shell_port, iopub_port, stdin_port,
control_port, hb_port}`` (xeus writes the ports as strings) and ``signature`` is the hex
HMAC of ``content`` alone. The ROUTER sees the DEALER's routing identity in front. The
launcher answers on the same route with one signed frame (xeus sends ``b"ACK"``); the
kernel waits five seconds for it and checks its signature.

Bytes in, values out: no sockets here. A malformed, oversized or forged registration is a
:class:`~kernelkit.RemoteProtocolError`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from hmac import compare_digest

import orjson

from kernelkit._errors import LocalProtocolError, RemoteProtocolError
from kernelkit.protocol._session import DELIMITER, Session

__all__ = [
    "REGISTRATION_ACK",
    "KernelRegistration",
    "decode_registration",
    "decode_registration_reply",
    "encode_registration",
    "encode_registration_reply",
]

#: What the launcher answers a registration with (the content xeus-zmq's own launcher sends).
REGISTRATION_ACK = b"ACK"

# A registration is about 150 bytes; anything far larger is not one.
_MAX_CONTENT_BYTES = 64 * 1024
# ROUTER prepends one identity; allow a few proxies in between, never an unbounded list.
_MAX_IDENTITIES = 8
_MAX_PORT = 65535
_PORT_KEYS = ("shell_port", "iopub_port", "stdin_port", "control_port", "hb_port")


@dataclass(frozen=True, slots=True)
class KernelRegistration:
    """The ports a kernel reports over the registration socket."""

    kernel_id: str
    shell_port: int
    iopub_port: int
    stdin_port: int
    control_port: int
    hb_port: int

    def ports(self) -> dict[str, int]:
        """The ports as ``{"<channel>_port": port}``, ready for ``ConnectionInfo.with_ports``."""
        return {key: int(getattr(self, key)) for key in _PORT_KEYS}


def _bytes(frame: bytes | memoryview) -> bytes:
    return frame.tobytes() if isinstance(frame, memoryview) else bytes(frame)


def _port(value: object, key: str) -> int:
    # xeus-zmq sends ports as JSON strings; accept integers too (PROTOCOL.md).
    if isinstance(value, bool):
        raise RemoteProtocolError(f"registration: {key!r} must be a port number, got a boolean")
    if isinstance(value, int):
        port = value
    elif isinstance(value, str) and value.isascii() and value.isdigit():
        port = int(value)
    else:
        raise RemoteProtocolError(f"registration: {key!r} must be a port number, got {value!r}")
    if not 0 < port <= _MAX_PORT:
        raise RemoteProtocolError(f"registration: {key!r} = {port} is not a usable port")
    return port


def _verify(session: Session, signature: bytes, content: bytes, what: str) -> None:
    if not session.key:
        return  # unsigned session: nothing to check (as for ordinary messages)
    expected = session.sign([content])
    if not compare_digest(expected, signature):
        raise RemoteProtocolError(f"{what}: invalid signature (wrong key or forged message)")


def _split(frames: Sequence[bytes | memoryview], what: str) -> tuple[list[bytes], bytes, bytes]:
    """identities..., DELIMITER, signature, content -> (identities, signature, content)."""
    parts = [_bytes(f) for f in frames]
    try:
        at = parts.index(DELIMITER)
    except ValueError:
        raise RemoteProtocolError(f"{what}: no {DELIMITER!r} delimiter frame") from None
    if at > _MAX_IDENTITIES:
        raise RemoteProtocolError(f"{what}: {at} routing identities (at most {_MAX_IDENTITIES})")
    rest = parts[at + 1 :]
    if len(rest) != 2:
        raise RemoteProtocolError(
            f"{what}: expected a signature and one content frame after the delimiter, "
            f"got {len(rest)} frames"
        )
    signature, content = rest
    if len(content) > _MAX_CONTENT_BYTES:
        raise RemoteProtocolError(f"{what}: content of {len(content)} bytes is too large")
    return parts[:at], signature, content


def decode_registration(
    frames: Sequence[bytes | memoryview], session: Session
) -> tuple[list[bytes], KernelRegistration]:
    """Check and parse a registration as the launcher's ROUTER receives it.

    Returns the routing identities (to answer on) and the registration. The signature is
    checked (constant time) before the content is parsed.

    Raises:
        RemoteProtocolError: the frames are not a registration, the signature is wrong,
            or the content is not a JSON object with a kernel id and five valid ports.
    """
    identities, signature, content = _split(frames, "registration")
    _verify(session, signature, content, "registration")
    try:
        obj = orjson.loads(content)
    except orjson.JSONDecodeError as exc:
        raise RemoteProtocolError(f"registration: content is not JSON: {exc}") from exc
    if not isinstance(obj, dict):
        raise RemoteProtocolError("registration: content is not a JSON object")
    kernel_id = obj.get("kernel_id", "")
    if not isinstance(kernel_id, str):
        raise RemoteProtocolError(f"registration: 'kernel_id' must be a string, got {kernel_id!r}")
    missing = [k for k in _PORT_KEYS if k not in obj]
    if missing:
        raise RemoteProtocolError(f"registration: missing {', '.join(missing)}")
    ports = {k: _port(obj[k], k) for k in _PORT_KEYS}
    return identities, KernelRegistration(kernel_id=kernel_id, **ports)


def encode_registration_reply(
    identities: Sequence[bytes], session: Session, content: bytes = REGISTRATION_ACK
) -> list[bytes]:
    """The launcher's answer: identities..., delimiter, signature of ``content``, ``content``."""
    return [*identities, DELIMITER, session.sign([content]), content]


def encode_registration(registration: KernelRegistration, session: Session) -> list[bytes]:
    """The frames a kernel's DEALER sends (ports as strings, as xeus-zmq writes them).

    Raises:
        LocalProtocolError: a port is not in 1..65535.
    """
    for key, port in registration.ports().items():
        if not 0 < port <= _MAX_PORT:
            raise LocalProtocolError(f"registration: {key} = {port} is not a usable port")
    content = orjson.dumps(
        {"kernel_id": registration.kernel_id} | {k: str(v) for k, v in registration.ports().items()}
    )
    return [DELIMITER, session.sign([content]), content]


def decode_registration_reply(frames: Sequence[bytes | memoryview], session: Session) -> bytes:
    """Check the launcher's answer as the kernel's DEALER receives it; returns its content.

    Raises:
        RemoteProtocolError: malformed frames or a wrong signature.
    """
    _, signature, content = _split(frames, "registration reply")
    _verify(session, signature, content, "registration reply")
    return content
