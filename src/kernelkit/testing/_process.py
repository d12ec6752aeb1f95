"""The fake kernel as a process over ZeroMQ: ``python -m kernelkit.testing FILE [options]``.

One thread and one poller: the five sockets, the heartbeat (echoed in the loop, which
never blocks: ``sleep`` is a poll timeout) and a signal wakeup pipe, so SIGINT reaches
the core as an interrupt between two messages. Imports only zmq, the protocol and the
connection file code, so it starts in a fraction of ipykernel's time.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Sequence
from types import FrameType
from typing import Any

import orjson
import zmq

from kernelkit.protocol import Session
from kernelkit.testing._core import Action, Exit, KernelCore, Send, Sleep

__all__ = ["EXIT_PROTOCOL_ERRORS", "main"]

#: The exit code of a kernel shut down after clients broke the protocol.
EXIT_PROTOCOL_ERRORS = 70
_CHANNELS = ("shell", "control", "stdin", "iopub", "hb")
_KINDS = {
    "shell": zmq.ROUTER,
    "control": zmq.ROUTER,
    "stdin": zmq.ROUTER,
    "iopub": zmq.XPUB,
    "hb": zmq.REP,
}


_USAGE = """usage: python -m kernelkit.testing CONNECTION_FILE [options]

kernelkit's strict fake kernel (the kernelkit.testing docstring documents its code).
Ports of 0 in CONNECTION_FILE are bound and written back; given ports are bound.

options:
  --say TEXT             print TEXT on stdout at start
  --exit-at-start CODE   write a line to stdout and stderr, exit with CODE before binding
  --start-delay S        sleep S seconds before binding (a slow start)
  --start-when FIFO      bind only once a writer opens the named pipe FIFO (a slow
                         start that a test ends when it chooses)
  --die-after S          exit 7 S seconds after binding (a crash)
  --mute                 bind and write back, then answer nothing (not even heartbeats)
  --busy-blocks-heartbeat  no heartbeat echo while a `sleep` runs (a kernel whose
                         heartbeat shares the thread that runs its code)
  --ignore-term          SIGTERM does nothing
  --ignore-shutdown      answer shutdown_request but keep running
  --no-interrupt         SIGINT and interrupt_request do not interrupt
  --features LIST        supported_features, comma-separated ('' for none;
                         default: kernel subshells)
  --no-welcome           no iopub_welcome to new subscribers
  --protocol-version V   protocol_version in kernel_info_reply (default 5.3)
"""
_FLAGS = frozenset(
    {
        "--mute",
        "--ignore-term",
        "--ignore-shutdown",
        "--no-interrupt",
        "--no-welcome",
        "--busy-blocks-heartbeat",
    }
)
_VALUES = {
    "--say": str,
    "--exit-at-start": int,
    "--start-delay": float,
    "--start-when": str,
    "--die-after": float,
    "--features": str,
    "--protocol-version": str,
}


class _Options:
    """The command line, parsed by hand: argparse costs more than the rest of a start."""

    def __init__(self, argv: Sequence[str]) -> None:
        flags: set[str] = set()
        values: dict[str, Any] = {}
        path = ""
        args = list(argv)
        while args:
            arg = args.pop(0)
            name, eq, value = arg.partition("=")
            if arg in ("-h", "--help"):
                print(_USAGE, end="")
                raise SystemExit(0)
            if arg in _FLAGS:
                flags.add(arg)
            elif name in _VALUES:
                if not eq:
                    if not args:
                        _usage_error(f"{name} needs a value")
                    value = args.pop(0)
                try:
                    values[name] = _VALUES[name](value)
                except ValueError:
                    _usage_error(f"{name}: bad value {value!r}")
            elif arg.startswith("-") or path:
                _usage_error(f"unknown argument {arg!r}")
            else:
                path = arg
        if not path:
            _usage_error("the connection file is missing")
        self.connection_file = path
        self.say: str | None = values.get("--say")
        self.exit_at_start: int | None = values.get("--exit-at-start")
        self.start_delay: float = values.get("--start-delay", 0.0)
        self.start_when: str | None = values.get("--start-when")
        self.die_after: float | None = values.get("--die-after")
        self.features: str = values.get("--features", "kernel subshells")
        self.protocol_version: str = values.get("--protocol-version", "5.3")
        self.mute = "--mute" in flags
        self.busy_blocks_heartbeat = "--busy-blocks-heartbeat" in flags
        self.ignore_term = "--ignore-term" in flags
        self.ignore_shutdown = "--ignore-shutdown" in flags
        self.no_interrupt = "--no-interrupt" in flags
        self.no_welcome = "--no-welcome" in flags


def _usage_error(problem: str) -> None:
    print(_USAGE, file=sys.stderr, end="")
    print(f"python -m kernelkit.testing: error: {problem}", file=sys.stderr)
    raise SystemExit(2)


class _Kernel:
    def __init__(
        self,
        core: KernelCore,
        sockets: dict[str, zmq.Socket[bytes]],
        *,
        busy_blocks_heartbeat: bool = False,
    ) -> None:
        self.busy_blocks_heartbeat = busy_blocks_heartbeat
        self.core = core
        self.sockets = sockets
        self.topic_prefix = f"kernel.{core.session.session_id}.".encode()
        self.timers: dict[int, float] = {}
        self.signalled = False  # set by the SIGINT handler
        self.reported = 0

    def perform(self, actions: list[Action]) -> None:
        for action in actions:
            if isinstance(action, Send):
                msg = action.message
                idents: Sequence[bytes] = action.identities
                if action.channel == "iopub" and msg.msg_type != "iopub_welcome":
                    idents = (self.topic_prefix + msg.msg_type.encode(),)
                frames = self.core.session.serialize(msg, idents)
                self.sockets[action.channel].send_multipart(frames)
            elif isinstance(action, Sleep):
                self.timers[action.token] = time.monotonic() + action.seconds
            elif isinstance(action, Exit):
                self.exit(action.code)
        errors = self.core.errors
        for error in errors[self.reported :]:
            print(f"kernelkit.testing: protocol error: {error}", file=sys.stderr, flush=True)
        self.reported = len(errors)

    def exit(self, code: int) -> None:
        if code == 0 and self.core.errors:
            print(
                f"kernelkit.testing: {len(self.core.errors)} protocol error(s); "
                f"exiting with {EXIT_PROTOCOL_ERRORS}",
                file=sys.stderr,
                flush=True,
            )
            code = EXIT_PROTOCOL_ERRORS
        context = self.sockets["shell"].context
        for sock in self.sockets.values():
            sock.close(linger=1000)
        context.term()  # waits until what was sent (the shutdown_reply) has gone out
        sys.stdout.flush()
        os._exit(code)

    def interrupt_if_signalled(self) -> None:
        # A signal comes before any message sent after it (a manager interrupts, then
        # asks for shutdown): so it is looked at before each message.
        if self.signalled:
            self.signalled = False
            self.perform(self.core.interrupt())

    def serve(self, die_at: float | None, wakeup: int) -> None:
        poller = zmq.Poller()
        by_socket = {}
        for name, sock in self.sockets.items():
            poller.register(sock, zmq.POLLIN)
            by_socket[sock] = name
        poller.register(wakeup, zmq.POLLIN)
        hb = self.sockets["hb"]
        iopub = self.sockets["iopub"]
        hb_watched = True
        while True:
            if self.busy_blocks_heartbeat and hb_watched == bool(self.timers):
                # Busy (a sleep runs): pings wait unanswered, as behind running code.
                hb_watched = not self.timers
                if hb_watched:
                    poller.register(hb, zmq.POLLIN)
                else:
                    poller.unregister(hb)
            deadlines = list(self.timers.values())
            if die_at is not None:
                deadlines.append(die_at)
            timeout = None
            if deadlines:
                timeout = max(0, int((min(deadlines) - time.monotonic()) * 1000) + 1)
            events = poller.poll(timeout)
            now = time.monotonic()
            if die_at is not None and now >= die_at:
                _die()
            self.interrupt_if_signalled()
            for token, at in sorted(self.timers.items(), key=lambda item: item[1]):
                if at <= now:
                    del self.timers[token]
                    self.perform(self.core.wake(token))
            for sock, _ in events:
                self.interrupt_if_signalled()
                if sock == wakeup:
                    os.read(wakeup, 512)
                elif sock is hb:
                    hb.send_multipart(hb.recv_multipart())
                elif sock is iopub:
                    subscription = iopub.recv()
                    if subscription[:1] == b"\x01":
                        topic = subscription[1:].decode(errors="replace")
                        self.perform(self.core.welcome(topic))
                else:
                    frames = sock.recv_multipart()
                    self.perform(self.core.receive_frames(by_socket[sock], frames))


def _die() -> None:
    print("fake kernel: dying", flush=True)
    os._exit(7)


def _read(path: str) -> dict[str, Any]:
    """The connection file (checked just enough: the manager wrote it)."""
    try:
        with open(path, "rb") as f:
            raw = orjson.loads(f.read())
        for name in _CHANNELS:
            raw[f"{name}_port"] = int(raw.get(f"{name}_port") or 0)
        if not isinstance(raw.get("key", ""), str) or not isinstance(raw.get("ip"), str):
            raise ValueError("'key' and 'ip' must be strings")
    except (OSError, ValueError, TypeError) as exc:
        raise SystemExit(f"kernelkit.testing: cannot read {path}: {exc}") from None
    return dict(raw)


def _bind(path: str) -> tuple[dict[str, Any], dict[str, zmq.Socket[bytes]]]:
    """Bind the five sockets (ports of 0: random ones, written back into the file)."""
    info = _read(path)
    ip = info["ip"]
    ipc = info.get("transport", "tcp") == "ipc"
    ctx = zmq.Context()
    sockets: dict[str, zmq.Socket[bytes]] = {}
    chosen = False
    for name in _CHANNELS:
        sock: zmq.Socket[bytes] = ctx.socket(_KINDS[name])
        sock.linger = 0
        if name == "iopub":
            sock.setsockopt(zmq.XPUB_VERBOSE, 1)  # welcome every subscriber, as ipykernel
        port = info[f"{name}_port"]
        if ipc:
            if not port:
                raise SystemExit("kernelkit.testing: ipc needs ports in the connection file")
            sock.bind(f"ipc://{ip}-{port}")
        elif port:
            sock.bind(f"tcp://{ip}:{port}")
        else:
            info[f"{name}_port"] = sock.bind_to_random_port(f"tcp://{ip}")
            chosen = True
        sockets[name] = sock
    if chosen:
        tmp = f"{path}.{os.getpid()}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # it holds the key
        with os.fdopen(fd, "wb") as f:
            f.write(orjson.dumps(info, option=orjson.OPT_INDENT_2))
        os.replace(tmp, path)
    return info, sockets


def main(argv: Sequence[str] | None = None) -> int:
    """Run the fake kernel process; returns (or exits with) its exit code."""
    opts = _Options(sys.argv[1:] if argv is None else argv)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # until the loop listens for it
    if opts.say is not None:
        print(opts.say, flush=True)
    if opts.exit_at_start is not None:
        print("fake kernel: exiting at start", flush=True)
        print("fake kernel: stderr line", file=sys.stderr, flush=True)
        return int(opts.exit_at_start)
    if opts.ignore_term:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    if opts.start_delay > 0:
        time.sleep(opts.start_delay)
    if opts.start_when is not None:
        # Opening a FIFO for reading blocks until a writer opens it: the test's go-ahead.
        with open(opts.start_when, "rb"):
            pass
    info, sockets = _bind(opts.connection_file)
    die_at = time.monotonic() + opts.die_after if opts.die_after is not None else None
    if opts.mute:
        while die_at is None or time.monotonic() < die_at:
            time.sleep(3600 if die_at is None else max(0.0, die_at - time.monotonic()))
        _die()
    core = KernelCore(
        Session(
            info.get("key", "").encode("utf-8", "surrogateescape"),
            signature_scheme=info.get("signature_scheme") or "hmac-sha256",
            username="kernel",
        ),
        features=[f.strip() for f in opts.features.split(",") if f.strip()],
        protocol_version=opts.protocol_version,
        welcome=not opts.no_welcome,
        interruptible=not opts.no_interrupt,
        ignore_shutdown=opts.ignore_shutdown,
    )
    read_end, write_end = os.pipe()
    os.set_blocking(read_end, False)
    os.set_blocking(write_end, False)
    signal.set_wakeup_fd(write_end)
    kernel = _Kernel(core, sockets, busy_blocks_heartbeat=opts.busy_blocks_heartbeat)

    def on_sigint(signum: int, frame: FrameType | None) -> None:
        kernel.signalled = True  # the wakeup fd ends the poll; the loop interrupts

    if not opts.no_interrupt:
        signal.signal(signal.SIGINT, on_sigint)
    kernel.serve(die_at, read_end)
    return 0  # not reached: the kernel leaves through _Kernel.exit
