"""Reaching a kernel on another host from a process that did not start it.

A kernel started by :class:`~kernelkit.nanny.SSHProvisioner` through an ssh tunnel
listens on the host's loopback; the local connection file names the tunnel's local ports,
which live only as long as the ssh connection of the process that started it. So the file
also says where the kernel is (``kernelkit_ssh``: the host, and the kernel's and the
nanny's ports there), and any process of the user can open a tunnel of its own
(:class:`SSHTunnel`) to control it (:class:`~kernelkit.nanny.AsyncAttachedKernel`).

The tunnel is ``ssh -L ... HOST 'echo READY; exec cat'``: the line says the forwards are
bound (ssh binds them before it opens the session), and the remote ``cat`` ends when this
process's pipe does, so the connection never outlives its opener.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import orjson

from kernelkit._connection import CHANNELS, ConnectionInfo, allocate_ports
from kernelkit._errors import ProvisioningError
from kernelkit.nanny._hosts import Host, parse_ssh_url

__all__ = ["SSH_KEY", "SSHRoute", "SSHTunnel", "ssh_route_of"]

#: The connection-file key that says where a tunnelled kernel really listens.
SSH_KEY = "kernelkit_ssh"

_READY = b"kernelkit-tunnel-ready"
_OPEN_TIMEOUT = 30.0
_CLOSE_TIMEOUT = 5.0
_PORT_KEYS = tuple(f"{c}_port" for c in CHANNELS)


@dataclass(frozen=True, slots=True)
class SSHRoute:
    """Where a kernel listens on its host (loopback there): ``ports`` by ``<channel>_port``,
    and its nanny's control port."""

    host: Host
    ports: Mapping[str, int]
    nanny_port: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "host": {"name": self.host.name, **self.host.to_dict()},
            "ports": dict(self.ports),
            "nanny_port": self.nanny_port,
        }

    @classmethod
    def from_dict(cls, d: object, *, source: str) -> SSHRoute:
        """Raises ProvisioningError naming ``source`` and what is wrong."""
        try:
            if not isinstance(d, Mapping):
                raise TypeError("not an object")
            h = d["host"]
            host = parse_ssh_url(
                str(h["name"]),
                str(h["url"]),
                python=str(h.get("python") or "python3"),
                ssh_config=h.get("ssh_config") if isinstance(h.get("ssh_config"), str) else None,
            )
            ports = {k: _port(d["ports"][k]) for k in _PORT_KEYS}
            return cls(host=host, ports=ports, nanny_port=_port(d["nanny_port"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise ProvisioningError(
                f"{source}: {SSH_KEY!r} is not what SSHProvisioner writes ({exc}); use the "
                "connection file it wrote"
            ) from None


def _port(value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 < value < 65536:
        raise ValueError(f"{value!r} is not a port")
    return value


def ssh_route_of(path: str | os.PathLike[str]) -> SSHRoute | None:
    """The route in a connection file that has one (None for any other file).

    Raises:
        ProvisioningError: the file has a ``kernelkit_ssh`` key that is wrong.
    """
    try:
        d = orjson.loads(Path(path).read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return None  # read_connection_file has said (or will say) what is wrong
    if not isinstance(d, dict) or SSH_KEY not in d:
        return None
    return SSHRoute.from_dict(d[SSH_KEY], source=os.fspath(path))


class SSHTunnel:
    """This process's own ssh connection to a kernel's host, forwarding local ports to
    the kernel's and its nanny's (:meth:`open`, then :meth:`aclose`)."""

    def __init__(self, route: SSHRoute) -> None:
        self.route = route
        self._proc: asyncio.subprocess.Process | None = None
        self._drain: asyncio.Task[None] | None = None
        #: The last lines ssh wrote on its stderr (refused forwarded connections, say).
        self.stderr_tail: deque[str] = deque(maxlen=20)

    @property
    def pid(self) -> int | None:
        """The ssh process's pid while open."""
        return self._proc.pid if self._proc is not None else None

    async def open(self, info: ConnectionInfo) -> ConnectionInfo:
        """Connect and forward; ``info`` with this side's addresses (127.0.0.1, the local
        ports, the nanny's local address).

        Raises:
            ProvisioningError: ssh failed (login refused, host unknown, a port taken), or
                did not connect within its time limit; the message names the host.
        """
        route, host = self.route, self.route.host
        remote = [route.ports[k] for k in _PORT_KEYS] + [route.nanny_port]
        local = allocate_ports(len(remote))
        forwards: list[str] = []
        for lp, rp in zip(local, remote, strict=True):
            forwards += ["-L", f"127.0.0.1:{lp}:127.0.0.1:{rp}"]
        proc = await asyncio.create_subprocess_exec(
            "ssh",
            *host.ssh_args(),
            "-o",
            "ConnectTimeout=15",
            "-o",
            "ExitOnForwardFailure=yes",
            *forwards,
            host.destination,
            "--",
            f"echo {_READY.decode()}; exec cat >/dev/null",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        self._proc = proc
        try:
            await asyncio.wait_for(self._ready(proc), _OPEN_TIMEOUT)
        except asyncio.TimeoutError:
            await self.aclose()
            raise ProvisioningError(
                f"host {host.name!r} ({host.url}): ssh did not connect within "
                f"{_OPEN_TIMEOUT:g} s to reach the kernel"
            ) from None
        except ProvisioningError:
            await self.aclose()
            raise
        # ssh keeps writing (a refused forwarded connection is a line): read it all, so a
        # full pipe never stalls the tunnel.
        self._drain = asyncio.get_running_loop().create_task(self._read_stderr(proc))
        ports = dict(zip(_PORT_KEYS, local[:-1], strict=True))
        here = replace(info, ip="127.0.0.1", nanny=f"tcp://127.0.0.1:{local[-1]}")
        return here.with_ports(**ports)

    async def _ready(self, proc: asyncio.subprocess.Process) -> None:
        assert proc.stdout is not None
        assert proc.stderr is not None
        for _ in range(100):  # a login banner on stdout is skipped, within reason
            line = await proc.stdout.readline()
            if not line:
                said = (await proc.stderr.read()).decode(errors="replace").strip()
                host = self.route.host
                raise ProvisioningError(
                    f"host {host.name!r} ({host.url}): ssh could not reach the kernel's "
                    f"ports: {said or 'it exited without a word'}"
                )
            if line.strip() == _READY:
                return
        raise ProvisioningError(f"host {self.route.host.name!r}: ssh said too much before ready")

    async def _read_stderr(self, proc: asyncio.subprocess.Process) -> None:
        assert proc.stderr is not None
        while line := await proc.stderr.readline():
            self.stderr_tail.append(line.decode(errors="replace").rstrip())

    async def aclose(self) -> None:
        """End the connection (its remote side ends with our pipe) and wait for ssh."""
        proc, self._proc = self._proc, None
        drain, self._drain = self._drain, None
        if drain is not None:
            drain.cancel()
            await asyncio.gather(drain, return_exceptions=True)
        if proc is None:
            return
        if proc.stdin is not None:
            proc.stdin.close()
        try:
            await asyncio.wait_for(proc.wait(), _CLOSE_TIMEOUT)
        except asyncio.TimeoutError:
            # Forwarded connections still open keep ssh waiting: end it.
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
