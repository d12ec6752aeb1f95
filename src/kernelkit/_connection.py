"""Connection information for a kernel, and the files that carry it.

Three things live here:

- :class:`ConnectionInfo` and connection files (``kernel-<id>.json`` in Jupyter's runtime
  directory): written atomically, created with mode 0600 from the first byte, in a runtime
  directory created with mode 0700; read back with strict validation.
- :class:`RegistrationInfo` and the JEP 66 registration file that a kernel which chooses its
  own ports is given instead of a connection file.
- :func:`allocate_ports`, the last-resort way to pick ports for a kernel (see its docstring for
  why it is racy and why the kernel-chosen paths exist).
"""

from __future__ import annotations

import logging
import os
import secrets
import stat
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

import orjson

from kernelkit._errors import ConnectionFileError
from kernelkit._files import atomic_write, ensure_private_dir
from kernelkit._jupyterpaths import jupyter_runtime_dir
from kernelkit._ports import allocate_ports
from kernelkit.protocol import signature_scheme_problem

__all__ = [
    "CHANNELS",
    "NANNY_KEY",
    "NANNY_PUBLICKEY_KEY",
    "ConnectionInfo",
    "RegistrationInfo",
    "allocate_ports",
    "connection_file_path",
    "new_key",
    "read_connection_file",
    "read_registration_file",
    "registration_file_path",
    "write_connection_file",
    "write_registration_file",
]

#: The five kernel channels, in the order ports are listed in a connection file.
CHANNELS = ("shell", "iopub", "stdin", "control", "hb")

#: The connection-file key naming the kernel's nanny (its control address).
NANNY_KEY = "kernelkit_nanny"
#: The connection-file key of the nanny's CurveZMQ public key (its control socket is
#: encrypted when it is on the network).
NANNY_PUBLICKEY_KEY = "kernelkit_nanny_publickey"

Transport = Literal["tcp", "ipc"]

_TRANSPORTS = ("tcp", "ipc")
_PORT_KEYS = tuple(f"{c}_port" for c in CHANNELS)
_MAX_TCP_PORT = 65535
# A connection file is a few hundred bytes; refuse to parse anything absurd.
_MAX_FILE_BYTES = 1 << 20

PathArg = str | os.PathLike[str]

log = logging.getLogger("kernelkit.connection")


# --------------------------------------------------------------------------- validation


def _describe_type(value: object) -> str:
    return "null" if value is None else type(value).__name__


def _port(value: object, key: str, *, transport: str) -> int:
    """A port from an int or a numeric string; the problem as text otherwise."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise _Problem(f"{key!r} must be an integer port, got {_describe_type(value)}")
    if isinstance(value, str):
        text = value.strip()
        if not text.isascii() or not text.isdigit():
            raise _Problem(f"{key!r} must be an integer port, got the string {value!r}")
        port = int(text)
    else:
        port = value
    # For ipc "ports" are file-name suffixes, so only the sign matters there.
    limit = _MAX_TCP_PORT if transport == "tcp" else None
    if port < 0 or (limit is not None and port > limit):
        raise _Problem(f"{key!r} is {port}, out of range 0-{limit or 'inf'}")
    return port


def _text(d: Mapping[str, Any], key: str, default: str | None = None) -> str:
    if key not in d:
        if default is None:
            raise _Problem(f"missing key {key!r}")
        return default
    value = d[key]
    if not isinstance(value, str):
        raise _Problem(f"{key!r} must be a string, got {_describe_type(value)}")
    return value


def _transport(d: Mapping[str, Any]) -> Transport:
    value = _text(d, "transport", "tcp")
    if value == "tcp":
        return "tcp"
    if value == "ipc":
        return "ipc"
    raise _Problem(f"'transport' is {value!r}; expected one of {', '.join(_TRANSPORTS)}")


def _signature_scheme(d: Mapping[str, Any]) -> str:
    value = _text(d, "signature_scheme", "hmac-sha256")
    # The Session's own rule: a file accepted here is one a client can sign for.
    problem = signature_scheme_problem(value)
    if problem is not None:
        raise _Problem(f"'signature_scheme' is {value!r}: {problem}")
    return value


def _key(d: Mapping[str, Any], source: str, *, allow_unsigned: bool) -> bytes:
    value = _required(d, "key")
    if isinstance(value, str):
        value = value.encode("utf-8", "surrogateescape")
    elif not isinstance(value, bytes):
        raise _Problem(f"'key' must be a string, got {_describe_type(value)}")
    if not value:
        if not allow_unsigned:
            raise _Problem(
                "'key' is empty: messages would go unsigned, and anyone who can reach the "
                "ports could run code in the kernel; write a key (e.g. 64 hex digits), or pass "
                "allow_unsigned=True to accept it"
            )
        log.warning("%s: the key is empty; messages to and from the kernel are unsigned", source)
    return value


def _required(d: Mapping[str, Any], key: str) -> Any:
    if key not in d:
        raise _Problem(f"missing key {key!r}")
    return d[key]


def _ip(d: Mapping[str, Any], key: str = "ip") -> str:
    value = _text(d, key)
    if not value:
        raise _Problem(f"{key!r} is empty")
    return value


_Z85 = frozenset(
    b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#"
)
_CURVE_KEY_LENGTH = 40  # a 32-byte CurveZMQ key, Z85-encoded


def _curve_key(d: Mapping[str, Any], key: str) -> bytes:
    """An optional CurveZMQ key (40 Z85 characters); b"" when absent. Never echoed."""
    value = d.get(key)
    if value is None:
        return b""
    if isinstance(value, str):
        value = value.encode("ascii", "replace")
    if not isinstance(value, bytes):
        raise _Problem(f"{key!r} must be a string, got {_describe_type(value)}")
    if len(value) != _CURVE_KEY_LENGTH or not _Z85.issuperset(value):
        raise _Problem(
            f"{key!r} is not a CurveZMQ key (40 Z85 characters, as zmq.curve_keypair() "
            "makes); write a fresh keypair or remove both curve_* keys"
        )
    return value


def _hidden(key: bytes) -> str:
    return f"<hidden, {len(key)} bytes>" if key else "<empty: unsigned>"


class _Problem(Exception):
    """Internal: what is wrong with a mapping, before we know which file it came from."""


def _check_object(d: object) -> Mapping[str, Any]:
    if not isinstance(d, Mapping):
        raise _Problem(f"expected a JSON object, got {_describe_type(d)}")
    return d


# --------------------------------------------------------------------------- ConnectionInfo


@dataclass(frozen=True, slots=True)
class ConnectionInfo:
    """Where a kernel listens and how its messages are signed.

    A port of 0 means "not chosen yet" (the kernel picks it and writes it back).
    For the ipc transport, ``ip`` is a path prefix and each "port" is a suffix.
    The key is bytes here and text in a connection file.
    """

    ip: str = "127.0.0.1"
    transport: Transport = "tcp"
    shell_port: int = 0
    iopub_port: int = 0
    stdin_port: int = 0
    control_port: int = 0
    hb_port: int = 0
    key: bytes = b""
    signature_scheme: str = "hmac-sha256"
    kernel_name: str = ""
    #: The control address of the kernel's nanny (``kernelkit_nanny`` in the file), if
    #: it has one: who holds this can interrupt, restart and stop the kernel through it.
    nanny: str = ""
    #: CurveZMQ keys (Z85, 40 ASCII bytes), empty when the kernel is not encrypted: the
    #: kernel's public key (clients encrypt to it and authenticate the kernel with it) and
    #: its secret key, which only the kernel needs (a client may carry the public key alone).
    curve_publickey: bytes = b""
    curve_secretkey: bytes = b""
    #: The nanny's CurveZMQ public key (``kernelkit_nanny_publickey``), empty when its
    #: control socket is plain text (on loopback). Its secret key never leaves its host.
    nanny_publickey: bytes = b""

    def __repr__(self) -> str:
        # Never the key: reprs end up in tracebacks and logs, and the key runs code.
        ports = ", ".join(f"{c}_port={self.port(c)}" for c in CHANNELS)
        return (
            f"ConnectionInfo(ip={self.ip!r}, transport={self.transport!r}, {ports}, "
            f"key={_hidden(self.key)}, signature_scheme={self.signature_scheme!r}, "
            f"kernel_name={self.kernel_name!r}{', curve=<hidden>' if self.encrypted else ''})"
        )

    @property
    def encrypted(self) -> bool:
        """True when messages to the kernel are CurveZMQ-encrypted (a public key is set)."""
        return bool(self.curve_publickey)

    @classmethod
    def from_dict(
        cls, d: Mapping[str, Any], *, source: str = "<dict>", allow_unsigned: bool = False
    ) -> ConnectionInfo:
        """Validate a connection-file object and build a ConnectionInfo from it.

        ``ip``, ``key`` and the five ``<channel>_port`` keys are required; ``transport``
        (default ``tcp``), ``signature_scheme`` (default ``hmac-sha256``), ``kernel_name``
        and the CurveZMQ keys ``curve_publickey`` and ``curve_secretkey`` (as ipykernel 7.4
        reads them; a secret key needs its public key) are optional; other keys are
        ignored. Ports may be integers or numeric strings. ``key`` may be text (as in a
        file) or bytes. An empty key (unsigned messages) is refused unless
        ``allow_unsigned`` (then it is logged as a warning).

        Raises:
            ConnectionFileError: naming ``source`` and what is wrong.
        """
        try:
            d = _check_object(d)
            transport = _transport(d)
            ports = {k: _port(_required(d, k), k, transport=transport) for k in _PORT_KEYS}
            secret = _curve_key(d, "curve_secretkey")
            if secret and "curve_publickey" not in d:
                raise _Problem("'curve_secretkey' is given without 'curve_publickey'")
            return cls(
                ip=_ip(d),
                transport=transport,
                key=_key(d, source, allow_unsigned=allow_unsigned),
                signature_scheme=_signature_scheme(d),
                kernel_name=_text(d, "kernel_name", ""),
                nanny=_text(d, NANNY_KEY, ""),
                curve_publickey=_curve_key(d, "curve_publickey"),
                curve_secretkey=secret,
                nanny_publickey=_curve_key(d, NANNY_PUBLICKEY_KEY),
                **ports,
            )
        except _Problem as exc:
            raise ConnectionFileError(source, str(exc)) from None

    def port(self, channel: str) -> int:
        """The port of a channel: one of :data:`CHANNELS`."""
        return int(getattr(self, f"{channel}_port"))

    def url(self, channel: str) -> str:
        """The ZeroMQ endpoint of a channel, e.g. ``tcp://127.0.0.1:5555``."""
        port = self.port(channel)
        if self.transport == "ipc":
            return f"ipc://{self.ip}-{port}"
        return f"tcp://{self.ip}:{port}"

    @property
    def ports_chosen(self) -> bool:
        """True when every channel has a real port."""
        return all(self.port(c) > 0 for c in CHANNELS)

    def with_ports(self, **ports: int) -> ConnectionInfo:
        """A copy with some ``<channel>_port`` values replaced."""
        return replace(self, **ports)  # type: ignore[arg-type]

    def to_dict(self) -> dict[str, Any]:
        """The JSON object of a connection file (key as text, as Jupyter writes it)."""
        d: dict[str, Any] = {
            "shell_port": self.shell_port,
            "iopub_port": self.iopub_port,
            "stdin_port": self.stdin_port,
            "control_port": self.control_port,
            "hb_port": self.hb_port,
            "ip": self.ip,
            "key": self.key.decode("utf-8", "surrogateescape"),
            "transport": self.transport,
            "signature_scheme": self.signature_scheme,
            "kernel_name": self.kernel_name,
        }
        if self.nanny:
            d[NANNY_KEY] = self.nanny
        if self.nanny_publickey:
            d[NANNY_PUBLICKEY_KEY] = self.nanny_publickey.decode("ascii")
        if self.curve_publickey:
            d["curve_publickey"] = self.curve_publickey.decode("ascii")
        if self.curve_secretkey:
            d["curve_secretkey"] = self.curve_secretkey.decode("ascii")
        return d


def new_key() -> bytes:
    """A fresh random signing key: 32 random bytes as 64 hex characters (ASCII bytes)."""
    return secrets.token_hex(32).encode("ascii")


# --------------------------------------------------------------------------- files


def _runtime_dir(runtime_dir: PathArg | None) -> Path:
    """Jupyter's runtime directory (``jupyter_runtime_dir()``), or ``runtime_dir`` if given."""
    return Path(runtime_dir) if runtime_dir is not None else Path(jupyter_runtime_dir())


def _checked_id(kernel_id: str) -> str:
    if not kernel_id or "/" in kernel_id or os.sep in kernel_id or kernel_id in (".", ".."):
        raise ConnectionFileError(
            kernel_id, "a kernel id must be a non-empty name without path separators"
        )
    return kernel_id


def connection_file_path(kernel_id: str, *, runtime_dir: PathArg | None = None) -> Path:
    """Where the connection file of ``kernel_id`` lives: ``<runtime dir>/kernel-<id>.json``.

    Nothing is created. Raises ConnectionFileError for an id containing a path separator.
    """
    return _runtime_dir(runtime_dir) / f"kernel-{_checked_id(kernel_id)}.json"


def registration_file_path(kernel_id: str, *, runtime_dir: PathArg | None = None) -> Path:
    """Where the JEP 66 registration file of ``kernel_id`` lives.

    ``<runtime dir>/registration-<id>.json``: deliberately not ``kernel-*.json``, so tools
    that pick "the latest kernel-*.json" never mistake it for a connection file.
    """
    return _runtime_dir(runtime_dir) / f"registration-{_checked_id(kernel_id)}.json"


def _atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` whole, mode 0600, in a 0700 directory (:mod:`kernelkit._files`)."""
    try:
        ensure_private_dir(path.parent)
    except OSError as exc:
        raise ConnectionFileError(
            path.parent, f"cannot create the directory: {exc.strerror or exc}"
        ) from exc
    try:
        atomic_write(path, data)
    except OSError as exc:
        raise ConnectionFileError(path, f"cannot write the file: {exc.strerror or exc}") from exc


def _dump(obj: Mapping[str, Any]) -> bytes:
    return orjson.dumps(obj, option=orjson.OPT_INDENT_2) + b"\n"


def write_connection_file(
    info: ConnectionInfo,
    path: PathArg | None = None,
    *,
    runtime_dir: PathArg | None = None,
    kernel_id: str | None = None,
    registration: RegistrationInfo | None = None,
) -> Path:
    """Write ``info`` as a connection file, atomically and with mode 0600.

    Without ``path`` the file goes to :func:`connection_file_path` of ``kernel_id`` (a
    fresh random id if not given) in the runtime directory, which is created with mode
    0700 if missing. Returns the path written.

    With ``registration``, the file is also a JEP 66 registration file (its keys are
    added), for a kernel whose behaviour decides: one that speaks the handshake registers,
    one that does not binds the ports in ``info`` (0 = write them back).
    The key, signature scheme, transport and ip must agree.

    Raises:
        ConnectionFileError: the directory or file cannot be created or written, or
            ``registration`` disagrees with ``info``.
    """
    if path is None:
        kernel_id = kernel_id if kernel_id is not None else secrets.token_hex(16)
        target = connection_file_path(kernel_id, runtime_dir=runtime_dir)
    else:
        target = Path(path)
    obj = info.to_dict()
    if registration is not None:
        for field in ("key", "signature_scheme", "transport", "ip"):
            if getattr(registration, field) != getattr(info, field):
                raise ConnectionFileError(
                    target, f"the registration's {field} differs from the connection's"
                )
        obj.update(registration.to_dict())
    _atomic_write(target, _dump(obj))
    return target


def _load(path: PathArg, *, check_mode: bool) -> Mapping[str, Any]:
    """Read and parse a JSON object from a key-bearing file, checking its mode."""
    p = Path(path)
    # O_NONBLOCK: a FIFO or device in place of the file must not hang us on open.
    flags = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        fd = os.open(p, flags)
    except FileNotFoundError as exc:
        raise ConnectionFileError(p, "no such file") from exc
    except OSError as exc:
        raise ConnectionFileError(p, f"cannot open the file: {exc.strerror or exc}") from exc
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise ConnectionFileError(p, "not a regular file")
        if check_mode and os.name != "nt" and st.st_mode & 0o077:
            raise ConnectionFileError(
                p,
                f"mode {stat.S_IMODE(st.st_mode):04o} gives group or others access to the key; "
                f"run `chmod 600 {p}` (or pass check_mode=False to accept it)",
            )
        if check_mode and os.name != "nt" and st.st_uid != os.geteuid():
            # Its owner (not us) could rewrite it to point us at a kernel of their own.
            raise ConnectionFileError(
                p,
                f"owned by uid {st.st_uid}, not by this user (uid {os.geteuid()}): whoever "
                "owns it can change where it points; pass check_mode=False to accept it",
            )
        if st.st_size > _MAX_FILE_BYTES:
            raise ConnectionFileError(p, f"file too large ({st.st_size} bytes)")
        chunks = []
        size = 0
        while chunk := os.read(fd, 65536):
            chunks.append(chunk)
            size += len(chunk)
            if size > _MAX_FILE_BYTES:
                raise ConnectionFileError(p, f"file too large (over {_MAX_FILE_BYTES} bytes)")
        data = b"".join(chunks)
    except OSError as exc:
        raise ConnectionFileError(p, f"cannot read the file: {exc.strerror or exc}") from exc
    finally:
        os.close(fd)
    if not data.strip():
        raise ConnectionFileError(p, "the file is empty")
    try:
        obj = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise ConnectionFileError(p, f"invalid JSON: {exc}") from exc
    if not isinstance(obj, dict):
        raise ConnectionFileError(p, f"expected a JSON object, got {_describe_type(obj)}")
    return obj


def read_connection_file(
    path: PathArg, *, check_mode: bool = True, allow_unsigned: bool = False
) -> ConnectionInfo:
    """Read and validate a connection file.

    Strict by default: a file whose mode gives group or others any access (its key signs
    every message, so anyone who can read it can run code in the kernel), or that another
    user owns (followed through symlinks), is an error; pass ``check_mode=False`` to
    accept it. These checks are skipped on Windows. An empty key (unsigned messages) is
    an error unless ``allow_unsigned``.

    Raises:
        ConnectionFileError: naming the file and the problem: missing or unreadable,
            not valid JSON, not an object, a missing or empty key, a wrong type, an
            unknown transport or signature scheme, a port out of range, an unsafe mode
            or another owner.
    """
    return ConnectionInfo.from_dict(
        _load(path, check_mode=check_mode), source=str(path), allow_unsigned=allow_unsigned
    )


# --------------------------------------------------------------------------- JEP 66


@dataclass(frozen=True, slots=True)
class RegistrationInfo:
    """The JEP 66 registration file: where a kernel reports the ports it chose itself.

    The kernel binds its own five ports, then connects to ``registration_ip:
    registration_port`` and sends them, signed with ``key``.
    """

    kernel_id: str
    registration_port: int
    key: bytes
    ip: str = "127.0.0.1"
    registration_ip: str = "127.0.0.1"
    transport: Transport = "tcp"
    signature_scheme: str = "hmac-sha256"

    def __repr__(self) -> str:
        return (
            f"RegistrationInfo(kernel_id={self.kernel_id!r}, "
            f"registration_port={self.registration_port}, key={_hidden(self.key)}, "
            f"ip={self.ip!r}, registration_ip={self.registration_ip!r}, "
            f"transport={self.transport!r}, signature_scheme={self.signature_scheme!r})"
        )

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], *, source: str = "<dict>") -> RegistrationInfo:
        """Validate a registration-file object; ``registration_port`` as int or string.

        Raises:
            ConnectionFileError: naming ``source`` and what is wrong.
        """
        try:
            d = _check_object(d)
            transport = _transport(d)
            port = _port(
                _required(d, "registration_port"),
                "registration_port",
                transport=transport,
            )
            if port == 0 and transport == "tcp":
                raise _Problem("'registration_port' is 0; the launcher must bind it first")
            return cls(
                kernel_id=_text(d, "kernel_id"),
                registration_port=port,
                key=_key(d, source, allow_unsigned=False),
                ip=_ip(d),
                registration_ip=_ip(d, "registration_ip"),
                transport=transport,
                signature_scheme=_signature_scheme(d),
            )
        except _Problem as exc:
            raise ConnectionFileError(source, str(exc)) from None

    def to_dict(self) -> dict[str, Any]:
        """The JSON object of a registration file.

        ``registration_port`` is a JSON string: xeus-python 0.19 crashes on an integer.
        """
        return {
            "kernel_id": self.kernel_id,
            "transport": self.transport,
            "ip": self.ip,
            "registration_ip": self.registration_ip,
            "registration_port": str(self.registration_port),
            "signature_scheme": self.signature_scheme,
            "key": self.key.decode("utf-8", "surrogateescape"),
        }

    @property
    def url(self) -> str:
        """The ZeroMQ endpoint the launcher's registration socket binds."""
        if self.transport == "ipc":
            return f"ipc://{self.registration_ip}-{self.registration_port}"
        return f"tcp://{self.registration_ip}:{self.registration_port}"


def write_registration_file(
    reg: RegistrationInfo, path: PathArg | None = None, *, runtime_dir: PathArg | None = None
) -> Path:
    """Write a JEP 66 registration file, atomically and with mode 0600.

    Without ``path`` it goes to :func:`registration_file_path` of ``reg.kernel_id``.

    Raises:
        ConnectionFileError: the directory or file cannot be created or written.
    """
    if path is None:
        target = registration_file_path(reg.kernel_id, runtime_dir=runtime_dir)
    else:
        target = Path(path)
    _atomic_write(target, _dump(reg.to_dict()))
    return target


def read_registration_file(path: PathArg, *, check_mode: bool = True) -> RegistrationInfo:
    """Read and validate a JEP 66 registration file (same strictness as connection files).

    Raises:
        ConnectionFileError: naming the file and the problem.
    """
    return RegistrationInfo.from_dict(_load(path, check_mode=check_mode), source=str(path))
