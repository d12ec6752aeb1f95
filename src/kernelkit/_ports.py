"""Free TCP ports picked by probing: the last-resort path, when a kernel cannot choose
its own (JEP 66 handshake, port-0 write-back)."""

from __future__ import annotations

import socket
import threading
import time

from kernelkit._errors import ProvisioningError

__all__ = ["allocate_ports"]

# Ports this process handed out recently: port -> monotonic time of hand-out.
_RESERVATION_SECONDS = 60.0
_reserved: dict[int, float] = {}
_reserved_lock = threading.Lock()


def allocate_ports(count: int = 5, *, ip: str = "127.0.0.1") -> list[int]:
    """Pick ``count`` distinct free TCP ports on ``ip``: the last-resort path only.

    Each port comes from binding a probe socket to port 0 (all probes are held open
    together, so the ports are distinct), then closing it. A port this process handed out
    in the last minute is never handed out again, so two launches in one process do not
    collide. This is still racy across processes: between closing the probe and the
    kernel binding the port, anything else on the machine may take it. That is why
    kernelkit prefers the kernel choosing its own ports (the JEP 66 handshake, or the
    port-0 write-back), and retries with new ports when a kernel dies on a bind error.

    Raises:
        ProvisioningError: no socket can be bound on ``ip``.
    """
    if count < 0:
        raise ValueError(f"count must be >= 0, got {count}")
    try:
        family = socket.getaddrinfo(ip, 0, type=socket.SOCK_STREAM)[0][0]
    except OSError as exc:
        raise ProvisioningError(f"cannot allocate ports on {ip!r}: {exc}") from exc
    ports: list[int] = []
    probes: list[socket.socket] = []
    # Each rejected probe stays open until the end, so the OS hands out a new port each
    # time; bound the attempts so a tiny ephemeral range cannot loop forever.
    attempts = count * 20 + 20
    try:
        with _reserved_lock:
            now = time.monotonic()
            for port, since in list(_reserved.items()):
                if now - since > _RESERVATION_SECONDS:
                    del _reserved[port]
            while len(ports) < count and attempts > 0:
                attempts -= 1
                sock = socket.socket(family, socket.SOCK_STREAM)
                probes.append(sock)
                sock.bind((ip, 0))
                port = sock.getsockname()[1]
                if port not in _reserved:
                    ports.append(port)
            if len(ports) < count:
                raise ProvisioningError(
                    f"cannot find {count} free ports on {ip!r} "
                    f"(found {len(ports)} after {count * 20 + 20} probes)"
                )
            for port in ports:
                _reserved[port] = now
    except OSError as exc:
        raise ProvisioningError(f"cannot allocate ports on {ip!r}: {exc}") from exc
    finally:
        for sock in probes:
            sock.close()
    return ports
