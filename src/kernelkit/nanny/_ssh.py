"""Kernels on another machine: :class:`SSHProvisioner` (entry point ``ssh-provisioner``).

The nanny runs on the host (``ssh HOST python3 -c ...``, what ``-m kernelkit.nanny``
runs), launches the host's own kernelspec there and supervises it as it does locally;
the ssh connection is its owner's link (its stdin: when the connection drops for good,
the nanny stops the kernel after its grace period). The kernel binds 127.0.0.1 on the
host and its ports (and the nanny's) are reached through the same ssh connection:
messages never cross the network in plain text.

A start is one ssh connection, and as little as possible after it:

- the kernel's launch is prepared here from the host's cached listing (its *launch
  recipe*, :mod:`kernelkit.nanny._prepare`), so the nanny there starts the kernel first
  thing, before its own imports, and checks it against the host's kernelspec while it
  boots (a stale listing costs a restart of the kernel there, and is refreshed);
- the nanny's control port is chosen here and forwarded on the command line; the
  kernel's ports, known once it has bound them, are forwarded in one ``-O forward`` on
  the connection's control master;
- at login, the owner connects to the nanny's forward (see
  :meth:`SSHProvisioner._nudge_at_login`: it saves sshd's ~40 ms wait for an ACK).

The local connection file also says where the kernel is on the host (``kernelkit_ssh``):
another process of the user re-attaches to it from that file alone
(:class:`~kernelkit.nanny.AsyncAttachedKernel` opens a tunnel of its own), after this
process's connection is gone, for a kernel started ``detached``. ``stop()`` ends the
nanny and the ssh connection with the kernel (unless a restart follows).

``network="direct"``: clients reach the kernel's ports on the host's address, encrypted
with CurveZMQ (the kernel on the host is launched with ``encryption="curve"``, so a
kernel whose spec does not declare ``supported_encryption: ["curve"]`` fails to start
with that said); ``allow_plaintext=True`` lets such a kernel talk in plain text instead.
The nanny's control socket is reached directly too, CurveZMQ-encrypted as well (its
``kernel_died`` and output messages carry the kernel's output): the nanny makes its own
keypair on the host, and only the public key comes back.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import re
import shlex
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import orjson

from kernelkit._connection import NANNY_KEY, ConnectionInfo, allocate_ports
from kernelkit._errors import KernelStartError, ProvisioningError
from kernelkit._files import atomic_write
from kernelkit.nanny._first import NANNY_CODE
from kernelkit.nanny._hosts import Host, HostRegistry
from kernelkit.nanny._prepare import prepare_from_recipe
from kernelkit.nanny._provisioner import NannyProvisioner
from kernelkit.nanny._ssh_listing import cached_recipe, refresh_hosts
from kernelkit.nanny._ssh_tunnel import SSH_KEY, SSHRoute
from kernelkit.nanny._wire import NannyConfig
from kernelkit.provisioning._filewatch import watch_file
from kernelkit.specs import KernelSpec

__all__ = ["SSHProvisioner"]

_PORTS = ("shell_port", "iopub_port", "stdin_port", "control_port", "hb_port")
_FORWARD_TIMEOUT = 20.0
# Where the nanny's control port on the host is picked: below the usual ephemeral range
# (32768-60999 on Linux), where the kernel's own ports come from.
_CONTROL_PORTS = (20000, 32768)
# When, after the login, the nanny's forward is connected to (see _nudge_at_login).
_NUDGES = (0.0, 0.002, 0.004)
# ssh's line for a forwarded connection the host refused.
_FORWARD_REFUSED = re.compile(r"channel \d+: open failed: ")

# What ssh (or the remote shell) says, and what to do about it.
_HINTS = (
    (
        "Host key verification failed",
        "the host's key is unknown or differs from known_hosts: check it, then connect "
        "once with ssh by hand to accept it",
    ),
    (
        "REMOTE HOST IDENTIFICATION HAS CHANGED",
        "the host's key differs from known_hosts (a reinstalled host, or an attack)",
    ),
    (
        "Permission denied",
        "login refused: kernelkit logs in with your ssh keys or agent only, never a "
        "password; install your key on the host (ssh-copy-id)",
    ),
    ("Connection refused", "no ssh server answers on that address and port"),
    ("Connection timed out", "the host does not answer (down, or out of the network)"),
    ("No route to host", "the host cannot be reached from here"),
    ("Could not resolve hostname", "the host name does not resolve"),
    (
        "No module named kernelkit",
        "kernelkit is not installed for the host's Python (pip install kernelkit there)",
    ),
    (
        "No module named 'kernelkit'",
        "kernelkit is not installed for the host's Python (pip install kernelkit there)",
    ),
)


class SSHProvisioner(NannyProvisioner):
    """Runs the kernel on ``host`` (a registered host's name, or a :class:`Host`) under
    a nanny there. ``remote_kernel``: the kernelspec's name on the host (default: this
    spec's name). Other options as :class:`NannyProvisioner`'s (``owner_grace`` is how
    long the kernel outlives a dropped connection).
    """

    def __init__(
        self,
        *,
        kernel_id: str,
        kernel_spec: KernelSpec,
        host: str | Host,
        remote_kernel: str | None = None,
        network: Literal["tunnel", "direct"] = "tunnel",
        allow_plaintext: bool = False,
        owner_grace: float = 10.0,
        **options: Any,
    ) -> None:
        self.host = host if isinstance(host, Host) else HostRegistry().get(host)
        if network not in ("tunnel", "direct"):
            raise ProvisioningError(f"network must be 'tunnel' or 'direct', not {network!r}")
        if network == "direct":
            # On the network: CurveZMQ, or (if allowed) plain text for a kernel without it.
            options.setdefault("encryption", "auto" if allow_plaintext else "curve")
        options.setdefault("python", self.host.python)
        options.setdefault("ip", "127.0.0.1" if network == "tunnel" else "0.0.0.0")
        super().__init__(
            kernel_id=kernel_id, kernel_spec=kernel_spec, owner_grace=owner_grace, **options
        )
        self.remote_kernel = remote_kernel or kernel_spec.name
        self.network = network
        self._ctl_sock: str | None = None  # the ssh control master's socket
        self._forwards: dict[int, int] = {}  # remote port -> local port
        # The nanny's control port on the host, chosen here and forwarded from the start
        # (tunnel), and the local end: (remote, local).
        self._control_forward: tuple[int, int] | None = None
        self._route: SSHRoute | None = None  # where the kernel is on the host (tunnel)

    # ------------------------------------------------------------------ hooks

    def _ctl_path(self) -> str:
        if self._ctl_sock is None:
            # Short (a unix socket path is limited to ~100 bytes), unguessable, and no
            # directory of ours: ssh makes the socket (mode 0600) and removes it when it
            # exits, so an owner SIGKILLed leaves nothing once its connection ends.
            self._ctl_sock = f"/tmp/kk-ssh-{os.urandom(8).hex()}"
        return self._ctl_sock

    def _nanny_command(self) -> tuple[str, ...]:
        h = self.host
        remote = " ".join(shlex.quote(a) for a in (h.python, "-c", NANNY_CODE))
        forward: list[str] = []
        if self.network == "tunnel":
            # The nanny's control port is forwarded with the connection (the nanny binds
            # it if it is free on the host): see _nudge for why that matters.
            remote_port = random.randrange(*_CONTROL_PORTS)
            (local_port,) = allocate_ports(1)
            self._control_forward = (remote_port, local_port)
            forward = ["-o", "ExitOnForwardFailure=yes"]
            forward += ["-L", f"127.0.0.1:{local_port}:127.0.0.1:{remote_port}"]
        return (
            "ssh",
            *h.ssh_args(),
            "-o",
            "ConnectTimeout=15",
            "-M",
            "-S",
            self._ctl_path(),
            "-o",
            "ControlPersist=no",
            *forward,
            h.destination,
            "--",
            remote,
        )

    def _nanny_config(
        self, env: dict[str, str], cwd: str | None, extra: tuple[str, ...]
    ) -> NannyConfig:
        config = super()._nanny_config({}, None, extra)
        options = dict(config.options)
        options.pop("runtime_dir", None)  # the host's own
        return NannyConfig(
            kernel_id=config.kernel_id,
            spec=None,
            spec_name=self.remote_kernel,
            env={},
            inherit_env=True,  # the host's environment, not ours
            extra_arguments=config.extra_arguments,
            options=options,
            owner_pid=None,  # our pid means nothing there: the ssh connection is the link
            detached=config.detached,
            owner_grace=config.owner_grace,
            control_ip=str(options.get("ip", "127.0.0.1")),
            control_port=self._control_forward[0] if self._control_forward else 0,
            control_encryption=config.control_encryption,
        )

    async def _spawn_nanny(
        self,
        cmd: Sequence[str],
        env: Mapping[str, str] | None,
        config: NannyConfig,
        *,
        early: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        stop_nudging = self._nudge_at_login()
        try:
            ready = await super()._spawn_nanny(cmd, env, config, early=early)
        finally:
            stop_nudging()
        if ready.get("error") == "NoSuchKernel" and await asyncio.to_thread(self._relist):
            # The kernel was listed from a stale listing: it is refreshed now.
            ready["message"] = (
                f"{ready.get('message')}; the host's kernel listing was out of date and is "
                "refreshed (`kernelkit list` shows what the host has now)"
            )
        elif ready.get("recipe_stale"):
            # The kernel changed on the host since it was listed (the nanny found it and
            # started it itself): the next start is quick again.
            await asyncio.to_thread(self._relist)
        return ready

    def _nudge_at_login(self) -> Callable[[], None]:
        """Once ssh has logged in (its control socket appears: ssh makes it between
        binding the forwards and opening the session), connect to the nanny's forwarded
        control port a few times; returns the function that stops it all.

        Why: right after the login, sshd sends a notice (its host keys) and then the
        answer to the session's opening. The connection is not in interactive mode, so
        sshd holds that answer until the notice is acknowledged (Nagle's algorithm), and
        our side acknowledges it only with its next packet, or after the delayed-ACK
        timer: some 40 ms on every start, before the nanny can even run. A forwarded
        connection makes ssh send sshd a packet at once (the forward's opening), which
        carries the acknowledgement. (The nanny is not listening yet: sshd refuses the
        forward, and ssh says so on its stderr, once per connection.)"""
        if self._control_forward is None:
            return lambda: None
        loop = asyncio.get_running_loop()
        path, port = self._ctl_path(), self._control_forward[1]
        nudges: list[asyncio.Task[None]] = []

        def changed() -> None:
            if not nudges and os.path.exists(path):
                watch.cancel()
                nudges.append(loop.create_task(_nudge(port)))

        watch = watch_file(path, changed)

        def stop() -> None:
            watch.cancel()
            for task in nudges:
                task.cancel()

        return stop

    def _prepare_early(self, config: NannyConfig) -> dict[str, Any] | None:
        # From the host's cached listing (`kernelkit hosts add` / `refresh` keep it): the
        # nanny there starts the kernel before its own imports. Without one, it finds the
        # kernel itself first.
        found = cached_recipe(self.host, self.remote_kernel)
        return prepare_from_recipe(config, *found) if found is not None else None

    def _forget_early(self, early: dict[str, Any] | None) -> None:
        pass  # its connection file is the host's (the nanny there removes it)

    def _relist(self) -> bool:
        """Refresh this host's cached kernel listing, if it is a registered host."""
        try:
            registered = HostRegistry().load().get(self.host.name)
        except ProvisioningError:
            return False
        if registered != self.host:
            return False
        refresh_hosts([self.host], timeout=_FORWARD_TIMEOUT)
        return True

    def _describe_failure(self, message: str) -> str:
        tail = self._stderr.tail(20) if self._stderr is not None else []
        # (Refused forwards are the login nudge's, or a port not listening yet.)
        said = " ".join(line for line in tail if not _FORWARD_REFUSED.match(line))
        hints = [hint for needle, hint in _HINTS if needle in said or needle in message]
        if not hints and ("not found" in said or "No such file" in said):
            hints.append(
                f"{self.host.python!r} is not there: set the host's Python with "
                f"`kernelkit hosts add {self.host.name} {self.host.url} --python PATH --replace`"
            )
        text = f"host {self.host.name!r} ({self.host.url}): {message}"
        return text + (f": {'; '.join(hints)}" if hints else "")

    async def _reach(
        self, connection: Mapping[str, Any], control: str | None
    ) -> tuple[dict[str, Any], str | None]:
        conn = dict(connection)
        if self.network == "direct":
            for key in ("ip",):
                conn[key] = self.host.hostname
            if control is not None:
                control = f"tcp://{self.host.hostname}:{control.rsplit(':', 1)[1]}"
        else:
            remote_ports = [int(conn[k]) for k in _PORTS]
            if control is not None:
                remote_ports.append(int(control.rsplit(":", 1)[1]))
            nanny_port = remote_ports[-1] if control is not None else None
            if nanny_port is None and self._route is not None:
                nanny_port = self._route.nanny_port  # a restart: the same nanny
            if nanny_port is not None:
                ports = {k: int(conn[k]) for k in _PORTS}
                self._route = SSHRoute(host=self.host, ports=ports, nanny_port=nanny_port)
            if self._control_forward is not None and nanny_port == self._control_forward[0]:
                # The nanny got the port forwarded with the connection.
                self._forwards.setdefault(nanny_port, self._control_forward[1])
            await self._forward(remote_ports)
            for k in _PORTS:
                conn[k] = self._forwards[int(conn[k])]
            conn["ip"] = "127.0.0.1"
            if control is not None:
                control = f"tcp://127.0.0.1:{self._forwards[int(control.rsplit(':', 1)[1])]}"
        if control is not None:
            conn[NANNY_KEY] = control
        elif self.nanny_address is not None:
            conn[NANNY_KEY] = self.nanny_address
        if self._key is not None and self._connection_file is not None:
            # A local connection file for local clients (`--existing`, AsyncAttachedKernel).
            key = self._key.decode("utf-8", "surrogateescape")
            info = ConnectionInfo.from_dict({**conn, "key": key}, source=f"host {self.host.name}")
            data = info.to_dict()
            if self._route is not None:
                # Where the kernel is, for a process with no share in our tunnel.
                data[SSH_KEY] = self._route.to_dict()
            atomic_write(self._connection_file, orjson.dumps(data))
        return conn, control

    async def _forward(self, remote_ports: list[int]) -> None:
        new = [p for p in remote_ports if p not in self._forwards]
        if not new:
            return
        local = allocate_ports(len(new))
        args: list[str] = []
        for r, lp in zip(new, local, strict=True):
            args += ["-L", f"127.0.0.1:{lp}:127.0.0.1:{r}"]
        h = self.host
        proc = await asyncio.create_subprocess_exec(
            "ssh",
            *h.ssh_args(),
            "-S",
            self._ctl_path(),
            "-O",
            "forward",
            *args,
            h.destination,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            _, err = await asyncio.wait_for(proc.communicate(), _FORWARD_TIMEOUT)
        except asyncio.TimeoutError:
            proc.kill()
            await proc.wait()
            raise KernelStartError(
                f"host {h.name!r}: ssh did not set up the port forwards within "
                f"{_FORWARD_TIMEOUT:g} s"
            ) from None
        if proc.returncode != 0:
            raise KernelStartError(
                f"host {h.name!r}: ssh could not forward the kernel's ports: "
                f"{err.decode(errors='replace').strip()}"
            )
        self._forwards.update(zip(new, local, strict=True))

    async def cleanup(self, restart: bool = False) -> None:
        local_file = self._connection_file
        await super().cleanup(restart=restart)
        if self.control is None:  # the nanny is gone (not kept for a restart)
            self._forwards.clear()
            self._control_forward = None
            ctl, self._ctl_sock = self._ctl_sock, None
            _remove_local(local_file, ctl)


async def _nudge(port: int) -> None:
    """Connect to local ``port`` (a forward of ssh's) a few times, closing at once."""
    for pause in _NUDGES:
        await asyncio.sleep(pause)
        with contextlib.suppress(OSError):
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()


def _remove_local(connection_file: Path | None, ctl_sock: str | None) -> None:
    # (ssh removes its socket as it exits: this is for an ssh that was killed.)
    for path in (connection_file, ctl_sock):
        if path is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
