"""The nanny process: ``python -m kernelkit.nanny`` (one per kernel, beside it).

It reads a :class:`~kernelkit.nanny._wire.NannyConfig` (one JSON line) from its stdin,
makes itself a child subreaper, launches the kernel with a
:class:`~kernelkit.provisioning.LocalProvisioner` (kernel-chosen ports, captured output,
whole-tree stop; an ipykernel-like kernel is started before this module is even
imported, by ``_first``/``_early``, and adopted by that provisioner), binds its control
socket (on the configured port if it is free), records that address in the kernel's
connection file (``kernelkit_nanny``) and answers one JSON line on its stdout: the
connection information and the control address (and ``prepared``: the kernel is the
one its owner prepared; ``recipe_stale``: the owner's listing of this host is out of
date), or the start error.

Then it serves control requests (signed with the kernel's key) and tells subscribers
``kernel_died`` the moment the kernel exits. Its owner is gone when the owner's process
exits or the nanny's stdin reaches its end (the owner's pipe, or the SSH connection
carrying it, closed); after ``owner_grace`` seconds without a re-attach the kernel and
everything it started are stopped and the nanny exits, unless the kernel was started (or
later marked) detached. A detached kernel that dies is cleaned up at once (nobody else
will). SIGTERM or SIGINT to the nanny stops the kernel too. If the nanny is SIGKILLed,
the kernel sees its parent change (``JPY_PARENT_PID``, which ipykernel watches).

As a subreaper, the nanny adopts whatever the kernel's processes orphan (a ``setsid``
child of a crashed kernel, a double-forked daemon), reaps them when they exit, and kills
every descendant that is left when it stops the kernel: none can escape its tree.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import signal
import sys
from typing import Any

import orjson
import zmq
import zmq.asyncio

from kernelkit._connection import CHANNELS, ConnectionInfo, write_connection_file
from kernelkit._errors import (
    KernelError,
    KernelStartError,
    ProvisioningError,
    RemoteProtocolError,
)
from kernelkit.nanny._early import Beginning, Resolved, begin, resolve
from kernelkit.nanny._first import EarlyKernel, first_moment
from kernelkit.nanny._kernel import KernelUnderNanny
from kernelkit.nanny._wire import (
    ACTIONS,
    EVENT_DIED,
    EVENT_RESTARTED,
    REPLY,
    REQUEST,
    NannyConfig,
    control_wants_curve,
)
from kernelkit.protocol import Message, Session
from kernelkit.provisioning import launch_provisioner
from kernelkit.provisioning._procfs import descendants
from kernelkit.provisioning._reaper import reap_orphans

__all__ = ["Nanny", "main"]

log = logging.getLogger("kernelkit.nanny")

_TAIL = 20
_STOP_GRACE = 1.0


def _public(info: ConnectionInfo) -> dict[str, Any]:
    d = _without_secret(info)
    d.pop("key", None)
    return d


def _without_secret(info: ConnectionInfo) -> dict[str, Any]:
    """The connection as clients get it: the kernel's CurveZMQ secret key stays here."""
    d = info.to_dict()
    d.pop("curve_secretkey", None)
    return d


class Nanny:
    """One kernel's supervisor (runs in the nanny process's event loop)."""

    def __init__(
        self,
        config: NannyConfig,
        *,
        launch: Resolved | None = None,
        early: EarlyKernel | None = None,
        prepared: bool = False,
        stale_recipe: bool = False,
    ) -> None:
        self.config = config
        #: ``early`` is the kernel the owner prepared; the owner's launch recipe was out
        #: of date (both said in the ready answer).
        self.prepared = prepared
        self.stale_recipe = stale_recipe
        self.session = Session()  # replaced once the kernel's key exists
        self.launch = launch if launch is not None else resolve(config)
        self.provisioner = KernelUnderNanny(
            kernel_id=config.kernel_id, kernel_spec=self.launch.spec, early=early, **config.options
        )
        self.detached = config.detached
        self.info: ConnectionInfo | None = None
        self.address = ""
        self.state = "starting"
        self.exit_status: int | None = None
        self.subscribers: dict[bytes, None] = {}  # ordered set of DEALER identities
        self.done = asyncio.Event()
        #: Set while no request is being handled (so stopping never cuts a reply off).
        self.idle = asyncio.Event()
        self._ctx = zmq.asyncio.Context()
        self._router = self._ctx.socket(zmq.ROUTER)
        self._router.linger = 1000
        #: The control socket's CurveZMQ public key (b"": plain text, on loopback).
        self.public_key = _make_curve_server(self._router, config)
        self._watcher: asyncio.Task[None] | None = None
        self._orphaned: asyncio.TimerHandle | None = None
        self._owner_fd: int | None = None
        self._expected_exit = False
        self._busy = asyncio.Lock()
        #: The owner went (or SIGTERM came) while the kernel was starting.
        self.stop_after_start = False

    # ------------------------------------------------------------------ start

    async def start(self) -> dict[str, Any]:
        """Launch the kernel and bind the control socket; the ready line's content."""
        port = self._bind_control()
        self.address = f"tcp://{self.config.control_ip}:{port}"
        await self._launch()
        assert self.info is not None
        return {
            "status": "ok",
            "connection": _without_secret(self.info),
            "connection_file": str(self.provisioner.connection_file or ""),
            "control": self.address,
            "control_publickey": self.public_key.decode("ascii"),
            "pid": self.provisioner.pid,
            "nanny_pid": os.getpid(),
            "prepared": self.prepared and self.provisioner.adopted_early,
            "recipe_stale": self.stale_recipe,
        }

    def _bind_control(self) -> int:
        """Bind the control socket: on the configured port if it is free, else on one of
        the system's choosing; the port."""
        ip, port = self.config.control_ip, self.config.control_port
        if port:
            try:
                self._router.bind(f"tcp://{ip}:{port}")
            except zmq.ZMQError as exc:
                log.info("nanny: control port %d is not free (%s); another one", port, exc)
            else:
                return port
        return self._router.bind_to_random_port(f"tcp://{ip}")

    async def _launch(self, *, restart: bool = False) -> None:
        c = self.config
        info = await launch_provisioner(
            self.provisioner,
            env=self.launch.env,
            inherit_env=self.launch.inherit_env,
            cwd=c.cwd,
            extra_arguments=c.extra_arguments,
            restart=restart,
        )
        self.info = dataclasses.replace(info, nanny=self.address, nanny_publickey=self.public_key)
        if self.session.key != info.key:
            # Control messages are signed with the kernel's key (kept across restarts).
            self.session = Session(info.key, signature_scheme=info.signature_scheme)
        if self.provisioner.connection_file is not None:
            write_connection_file(self.info, self.provisioner.connection_file)
        self.state = "running"
        self.exit_status = None
        self._expected_exit = False
        self._watcher = asyncio.get_running_loop().create_task(self._watch_kernel())

    # ------------------------------------------------------------------ the kernel's exit

    async def _watch_kernel(self) -> None:
        status = await self.provisioner.wait()
        self.exit_status = status
        restarting = self.state == "restarting"
        if not restarting:
            self.state = "dead"
        tail = self.provisioner.output_tail(_TAIL)
        self._broadcast(
            EVENT_DIED,
            {
                "exit_status": status,
                "output_tail": tail,
                "expected": self._expected_exit,
                "restarting": restarting,
            },
        )
        if self.detached and not self._expected_exit:
            # Nobody owns it: clean up now.
            asyncio.get_running_loop().create_task(self.shutdown())

    def _broadcast(self, msg_type: str, content: dict[str, Any]) -> None:
        msg = self.session.msg(msg_type, content)
        for ident in list(self.subscribers):
            try:
                self._router.send_multipart(
                    self.session.serialize(msg, [ident]), flags=zmq.NOBLOCK, copy=False
                )
            except zmq.ZMQError as exc:
                log.warning("nanny: could not tell a subscriber of %s: %s", msg_type, exc)

    def on_child_exit(self) -> None:
        """SIGCHLD: reap adopted orphans (the kernel's own status stays for its watcher)."""
        p = self.provisioner
        reap_orphans(keep=p.pid if p.pid is not None else p.early_pid)

    # ------------------------------------------------------------------ the owner

    def watch_owner(self, loop: asyncio.AbstractEventLoop) -> None:
        """Start watching the owner: its process (pidfd) and our stdin (end of file)."""
        pid = self.config.owner_pid
        if pid is not None:
            self._watch_pid(loop, pid)
        loop.create_task(self._watch_stdin())

    def _watch_pid(self, loop: asyncio.AbstractEventLoop, pid: int) -> None:
        self._unwatch_pid(loop)
        try:
            fd = os.pidfd_open(pid)
        except ProcessLookupError:
            self._owner_gone("its process is gone")
            return
        except (AttributeError, OSError) as exc:
            log.warning("nanny: cannot watch owner process %d (%s); watching stdin only", pid, exc)
            return
        self._owner_fd = fd
        loop.add_reader(fd, self._owner_gone, f"its process {pid} exited")

    def _unwatch_pid(self, loop: asyncio.AbstractEventLoop) -> None:
        fd, self._owner_fd = self._owner_fd, None
        if fd is not None:
            loop.remove_reader(fd)
            os.close(fd)

    async def _watch_stdin(self) -> None:
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader()
        transport, _ = await loop.connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(reader), sys.stdin.buffer
        )
        try:
            while await reader.read(4096):
                pass  # the owner says nothing more; only the end matters
        finally:
            transport.close()
        self._owner_gone("its connection (the nanny's stdin) closed")

    def _owner_gone(self, why: str) -> None:
        loop = asyncio.get_running_loop()
        self._unwatch_pid(loop)
        if self.detached or self._orphaned is not None or self.done.is_set():
            return
        log.info("nanny: the owner is gone (%s); stopping in %.1f s", why, self.config.owner_grace)
        self._orphaned = loop.call_later(
            self.config.owner_grace, lambda: loop.create_task(self._stop_if_orphaned())
        )

    async def _stop_if_orphaned(self) -> None:
        self._orphaned = None
        if not self.detached:
            await self.shutdown()

    def _adopted(self, owner_pid: int | None) -> None:
        loop = asyncio.get_running_loop()
        if self._orphaned is not None:
            self._orphaned.cancel()
            self._orphaned = None
        if owner_pid is not None:
            self._watch_pid(loop, owner_pid)

    # ------------------------------------------------------------------ stopping

    async def _stop_kernel(self, grace: float) -> None:
        p = self.provisioner
        self._expected_exit = True
        if p.has_process and await p.poll() is None:
            await p.shutdown_requested()
            await p.stop(grace=grace)
        if self._watcher is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._watcher
            self._watcher = None

    async def shutdown(self, grace: float = _STOP_GRACE) -> None:
        """Stop the kernel and everything below the nanny, remove files; the nanny exits."""
        if self.done.is_set():
            return
        if self.state == "starting":
            # Stopping a launch half-way could miss the kernel it is about to start:
            # stop once the launch has finished (or failed).
            self.stop_after_start = True
            return
        async with self._busy:
            try:
                await self._stop_kernel(grace)
                await self.provisioner.cleanup()
            finally:
                kill_descendants()
                self.state = "stopped"
                self.done.set()

    # ------------------------------------------------------------------ requests

    async def serve(self) -> None:
        """Answer control requests until the nanny is done."""
        while not self.done.is_set():
            self.idle.set()
            frames = await self._router.recv_multipart(copy=False)
            self.idle.clear()
            try:
                idents, msg = self.session.deserialize([f.buffer for f in frames])
            except RemoteProtocolError as exc:
                log.warning("nanny: refused a control message: %s", exc)
                continue
            if msg.msg_type != REQUEST:
                continue
            content = await self._handle(idents, msg)
            reply = self.session.msg(REPLY, content, parent=msg)
            await self._router.send_multipart(self.session.serialize(reply, idents), copy=False)

    async def _handle(self, idents: list[bytes], msg: Message) -> dict[str, Any]:
        action = msg.content.get("action")
        if action not in ACTIONS:
            return {"status": "error", "message": f"unknown action {action!r}"}
        try:
            return {"status": "ok", **await self._act(str(action), idents, msg.content)}
        except KernelError as exc:
            return {"status": "error", "message": str(exc), "error": type(exc).__name__}
        except (ValueError, TypeError, OSError) as exc:
            return {"status": "error", "message": f"{action}: {exc}"}

    async def _act(self, action: str, idents: list[bytes], c: Any) -> dict[str, Any]:
        p = self.provisioner
        if action == "status":
            return self._status()
        if action == "output":
            return {"lines": p.output_tail(int(c.get("lines", _TAIL)))}
        if action == "subscribe":
            self.subscribers[idents[0]] = None
            return self._status()
        if action in ("interrupt", "signal"):
            await p.send_signal(signal.SIGINT if action == "interrupt" else int(c["signum"]))
        elif action == "terminate":
            await p.terminate()
        elif action == "kill":
            await p.kill()
        elif action == "shutdown_requested":
            await p.shutdown_requested()
        elif action == "detach":
            self.detached = True
            self._adopted(None)
        elif action == "attach":
            owner = c.get("owner_pid")
            self.detached = bool(c.get("detached", False))
            self._adopted(int(owner) if owner is not None else None)
        elif action == "restart":
            await self._restart(float(c.get("grace", _STOP_GRACE)))
        elif action == "stop":
            asyncio.get_running_loop().create_task(self.shutdown(float(c.get("grace", 0))))
            await self.done.wait()
        return self._status()

    async def _restart(self, grace: float) -> None:
        before = self.info
        async with self._busy:
            self.state = "restarting"
            await self._stop_kernel(grace)
            await self.provisioner.cleanup(restart=True)
            try:
                await self._launch(restart=True)
            except KernelStartError:
                self.state = "dead"
                raise
        assert self.info is not None
        moved = before is None or any(before.port(c) != self.info.port(c) for c in CHANNELS)
        self._broadcast(EVENT_RESTARTED, {"connection": _public(self.info), "ports_changed": moved})

    def _status(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "pid": self.provisioner.pid,
            "exit_status": self.exit_status,
            "detached": self.detached,
            "connection": _public(self.info) if self.info is not None else None,
        }

    async def aclose(self) -> None:
        self._router.close(linger=1000)
        self._ctx.term()


def _make_curve_server(router: zmq.Socket[Any], config: NannyConfig) -> bytes:
    """Make ``router`` a CurveZMQ server when the control socket is on the network (or
    asked to be): its keypair is made here and its secret key never leaves this process.
    Clients are authenticated by the signature, as the kernel's are (no ZAP handler).

    Raises:
        ProvisioningError: an unknown ``control_encryption``, or a libzmq without CURVE
            where encryption is needed.
    """
    if not control_wants_curve(config.control_encryption, config.control_ip):
        return b""
    if not zmq.has("curve"):
        raise ProvisioningError(
            f"the nanny's control socket on {config.control_ip} must be CurveZMQ-encrypted "
            "but this pyzmq's libzmq has no CURVE support: install a pyzmq wheel, or "
            "allow plain text explicitly (control_encryption='none')"
        )
    public, secret = zmq.curve_keypair()
    router.curve_server = True
    router.curve_secretkey = secret
    return public


def kill_descendants() -> None:
    """SIGKILL every process below this one and reap them (the subreaper's last word)."""
    for st in descendants(os.getpid()):
        with contextlib.suppress(ProcessLookupError):
            os.kill(st.pid, signal.SIGKILL)
    reap_orphans()


def _answer(obj: dict[str, Any]) -> None:
    """The one line on stdout, then stdout goes nowhere (the owner may stop reading).

    An owner that is gone already cannot read it: that is not an error here (the owner
    watch stops the kernel).
    """
    try:
        os.write(1, orjson.dumps(obj) + b"\n")
    except OSError as exc:
        log.warning("could not answer the owner (%s); it is gone", exc)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.close(devnull)


async def _run(nanny: Nanny) -> int:
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGCHLD, nanny.on_child_exit)
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        loop.add_signal_handler(signum, lambda: loop.create_task(nanny.shutdown()))
    nanny.watch_owner(loop)
    try:
        ready = await nanny.start()
    except KernelError as exc:
        _answer(
            {
                "status": "error",
                "error": type(exc).__name__,
                "message": str(exc),
                "exit_code": getattr(exc, "exit_code", None),
                "output_tail": list(getattr(exc, "output_tail", ()) or ()),
            }
        )
        kill_descendants()
        await nanny.aclose()
        return 1
    if nanny.stop_after_start:
        await nanny.shutdown()
        _answer(
            {
                "status": "error",
                "error": "KernelStartError",
                "message": "the kernel was stopped while starting: its owner went away",
            }
        )
        await nanny.aclose()
        return 1
    _answer(ready)
    server = loop.create_task(nanny.serve())
    await nanny.done.wait()
    if not nanny.idle.is_set():
        # A request is being answered (the "stop" that ended it all): let the reply go.
        await asyncio.wait([server], timeout=5.0)
    server.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await server
    await nanny.aclose()
    return 0


def main(beginning: Beginning | None = None) -> int:
    """Entry point of ``python -m kernelkit.nanny``, after :func:`~._early.begin` (the
    configuration read, the subreaper set, maybe the kernel started already)."""
    logging.basicConfig(level=logging.WARNING, format="kernelkit.nanny: %(message)s")
    if beginning is None:
        beginning = begin(first_moment())
    config = beginning.config
    if config is None:
        _answer(beginning.error or {"status": "error", "message": "no configuration"})
        return 2
    try:
        nanny_loop = asyncio.new_event_loop()
        # The spec is resolved here, so a wrong name is a clear answer, not a crash.
        nanny = Nanny(
            config,
            launch=beginning.launch,
            early=beginning.early,
            prepared=beginning.prepared,
            stale_recipe=beginning.stale_recipe,
        )
    except KernelError as exc:
        if beginning.early is not None:
            beginning.early.discard()
        _answer({"status": "error", "error": type(exc).__name__, "message": str(exc)})
        return 2
    if not beginning.subreaper:
        log.warning("not a child subreaper here: orphans of the kernel go to init")
    asyncio.set_event_loop(nanny_loop)
    try:
        return nanny_loop.run_until_complete(_run(nanny))
    finally:
        nanny_loop.close()
