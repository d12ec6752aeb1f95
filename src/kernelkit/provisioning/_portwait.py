"""Port negotiation with a starting kernel: the files it reads (a connection file, a
JEP 66 registration file, or one that is both), then waiting for its ports: whichever of
the registration socket, the connection file written back, or the heartbeat echo tells
first, unless the process exits or the time runs out. Every wait is an event."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from kernelkit._connection import (
    ConnectionInfo,
    RegistrationInfo,
    registration_file_path,
    write_connection_file,
    write_registration_file,
)
from kernelkit.provisioning._exitwatch import ExitWatch
from kernelkit.provisioning._filewatch import FileWatch, watch_file
from kernelkit.provisioning._ports import PortMode
from kernelkit.provisioning._sockets import HeartbeatProbe, RegistrationListener

__all__ = [
    "BIND_ERROR",
    "PORT_KEYS",
    "SLOW_START_NOTICE",
    "BindFailed",
    "PortFiles",
    "await_ports",
    "no_ports_message",
    "ports_from_file",
    "write_port_files",
]

#: Seconds after which a kernel process that runs but has not told its ports is reported.
SLOW_START_NOTICE = 3.0

PORT_KEYS = ("shell_port", "iopub_port", "stdin_port", "control_port", "hb_port")
#: What a kernel prints when a parent-chosen port was taken meanwhile.
BIND_ERROR = re.compile(r"address already in use|EADDRINUSE|errno 98\b", re.IGNORECASE)


class BindFailed(Exception):
    """The kernel died on "Address already in use" (parent-chosen ports only)."""


def ports_from_file(path: Path) -> dict[str, int] | None:
    """The five ports a kernel wrote back into ``path``, or None while not (all) there.

    ipykernel unlinks and re-creates the file, then writes it in pieces: a missing,
    empty or half-written file is simply "not yet".
    """
    try:
        obj = orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return None
    if not isinstance(obj, dict):
        return None
    ports: dict[str, int] = {}
    for key in PORT_KEYS:
        value = obj.get(key)
        if isinstance(value, str) and value.isdigit():
            value = int(value)
        if not isinstance(value, int) or isinstance(value, bool) or not 0 < value <= 65535:
            return None
        ports[key] = value
    return ports


async def await_ports(
    *,
    mode: PortMode,
    prepared: ConnectionInfo,
    connection_file: Path | None,
    listener: RegistrationListener | None,
    spawn: Callable[[], ExitWatch],
    deadline: float,
    exited_error: Callable[[int], BaseException],
    no_ports_error: Callable[[], BaseException],
    slow: Callable[[float], None] | None = None,
    slow_after: float = SLOW_START_NOTICE,
) -> tuple[ConnectionInfo, str]:
    """Start the kernel with ``spawn`` and wait until it has told its ports; returns
    them (``prepared`` with the ports) and what told them: ``"registration"``,
    ``"write-back"`` or ``"heartbeat"``.

    Watches are set up before the kernel exists, so nothing it does slips by unseen.
    ``slow(seconds)`` is called once if the process still runs without ports after
    ``slow_after`` seconds (a kernel that never binds them is said early, not only at
    the deadline).

    Raises:
        BaseException: ``exited_error(status)`` when the process exits first,
            ``no_ports_error()`` at ``deadline`` (loop time).
    """
    loop = asyncio.get_running_loop()
    ports: asyncio.Future[tuple[ConnectionInfo, str]] = loop.create_future()
    file_watch: FileWatch | None = None
    probe: HeartbeatProbe | None = None

    def ports_ready(values: Mapping[str, int], source: str) -> None:
        if not ports.done():
            ports.set_result((prepared.with_ports(**values), source))

    def on_file_change() -> None:
        assert connection_file is not None
        values = ports_from_file(connection_file)
        if values is not None:
            ports_ready(values, "write-back")

    def on_registration(fut: asyncio.Future[Any]) -> None:
        if not fut.cancelled() and fut.exception() is None:
            ports_ready(fut.result().ports(), "registration")

    def on_heartbeat(fut: asyncio.Future[None]) -> None:
        # The echo means the kernel has bound its ports (the ones we gave it).
        if not fut.cancelled():
            ports_ready({}, "heartbeat")

    try:
        if mode in ("write-back", "auto"):
            assert connection_file is not None
            file_watch = watch_file(connection_file, on_file_change)
        if listener is not None:
            listener.registered.add_done_callback(on_registration)
        watch = spawn()
        if file_watch is not None:
            # A process that ran before the watch (one adopted by the nanny's provisioner)
            # may have written its ports already.
            on_file_change()
        if mode == "parent":
            probe = HeartbeatProbe(prepared.url("hb"), curve_serverkey=prepared.curve_publickey)
            probe.answered.add_done_callback(on_heartbeat)
        exited = watch.exited
        waiters: set[asyncio.Future[Any]] = {exited, ports}
        started = loop.time()
        if slow is not None and started + slow_after < deadline:
            await asyncio.wait(waiters, timeout=slow_after, return_when=asyncio.FIRST_COMPLETED)
            if not exited.done() and not ports.done():
                slow(loop.time() - started)
        await asyncio.wait(
            waiters, timeout=max(0.0, deadline - loop.time()), return_when=asyncio.FIRST_COMPLETED
        )
        if exited.done():
            raise exited_error(exited.result())
        if not ports.done():
            raise no_ports_error()
        return ports.result()
    finally:
        if file_watch is not None:
            file_watch.cancel()
        if probe is not None:
            probe.close()
        if listener is not None:
            listener.registered.remove_done_callback(on_registration)
        if not ports.done():
            ports.cancel()


def no_ports_message(
    mode: PortMode | None, *, reason: str, timeout: float, rejected: str = ""
) -> str:
    """Why a kernel that started gave no ports within ``timeout``, and what to try."""
    what = {
        "handshake": "did not register its ports on the JEP 66 registration socket",
        "write-back": "did not write its ports back into its connection file",
        "auto": "neither registered its ports (JEP 66) nor wrote them back into its "
        "connection file",
        "parent": "did not answer on its heartbeat port",
    }[mode or "parent"]
    hint = ""
    if mode in ("auto", "write-back", "handshake"):
        hint = (
            "; if this kernel binds the ports it is given, set "
            '"kernelkit": {"ports": "parent"} in its kernelspec metadata'
        )
    if rejected:
        hint += f"; rejected a registration: {rejected}"
    return (
        f"the kernel process is running but has not bound its ports: it {what} within "
        f"{timeout:g} s (port mode {mode!r}: {reason}){hint}"
    )


@dataclass(frozen=True, slots=True)
class PortFiles:
    """What :func:`write_port_files` prepared: the connection info the kernel was given,
    the file to name in its argv, and the registration listener and file (if any)."""

    prepared: ConnectionInfo
    kernel_file: Path
    listener: RegistrationListener | None = None
    registration_file: Path | None = None


def write_port_files(
    mode: PortMode,
    base: ConnectionInfo,
    *,
    kernel_id: str,
    connection_file: Path,
    runtime_dir: Path | None,
    parent_ports: Callable[[ConnectionInfo], ConnectionInfo],
) -> PortFiles:
    """Write what a kernel launched in port mode ``mode`` reads (``parent_ports`` picks the
    ports in ``parent`` mode). On failure nothing is left open.

    Raises:
        ConnectionFileError: a file cannot be written.
        ProvisioningError: no port is free, or the registration socket cannot bind.
    """
    if mode == "parent":
        info = parent_ports(base)
        write_connection_file(info, connection_file)
        return PortFiles(info, connection_file)
    if mode == "write-back":
        write_connection_file(base, connection_file)
        return PortFiles(base, connection_file)
    assert base.key is not None
    listener = RegistrationListener(
        kernel_id=kernel_id, key=base.key, signature_scheme=base.signature_scheme
    )
    try:
        registration = RegistrationInfo(
            kernel_id=kernel_id,
            registration_port=listener.port,
            key=base.key,
            ip=base.ip,
            registration_ip=listener.ip,
            signature_scheme=base.signature_scheme,
        )
        if mode == "handshake":
            path = registration_file_path(kernel_id, runtime_dir=runtime_dir)
            write_registration_file(registration, path)
            return PortFiles(base, path, listener, path)
        # auto: one file that is both, so the kernel's behaviour decides.
        write_connection_file(base, connection_file, registration=registration)
        return PortFiles(base, connection_file, listener)
    except BaseException:
        listener.close()
        raise
