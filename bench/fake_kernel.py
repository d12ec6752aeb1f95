"""A minimal Jupyter kernel for benchmarks: raw pyzmq, correct signatures, instant replies.

It isolates a client's cost from a real kernel's own (ipykernel sleeps per execute and
batches stdout). Standalone on purpose (no kernelkit, no jupyter_client, nothing from
``bench``), so a kernelspec can run it as a plain script::

    python bench/fake_kernel.py -f /path/to/connection.json

What it does:

- ``kernel_info_request`` (shell or control): busy, reply, idle.
- ``execute_request``: busy, reply, idle. Code ``stream N`` first sends N IOPub ``stream``
  messages; all N are built before the first is sent, so a client timing from the first
  stream to the idle status measures its own receive cost, not this kernel's.
- ``shutdown_request`` (control): reply, then exit. ``interrupt_request``: reply.
- Any other ``*_request``: an ``ok`` reply of the matching type.
- New IOPub subscribers get an ``iopub_welcome`` (XPUB), as ipykernel 7 does.
- Heartbeat: echoed in C by a thread of its own, as ipykernel does.
- Ports of 0 in the connection file: binds random ports and writes them back (the port-0
  write-back ipykernel does). A port that is already taken is a collision: a line goes to
  ``$BENCH_COLLISION_LOG`` (when set) and the process exits with status 98.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import errno
import hashlib
import hmac
import json
import os
import signal
import sys
import threading
import uuid
from typing import Any

import zmq

try:
    import orjson

    dumps = orjson.dumps
    loads = orjson.loads
except ImportError:  # pragma: no cover - the bench environment has orjson

    def dumps(obj: Any) -> bytes:
        return json.dumps(obj, separators=(",", ":")).encode()

    loads = json.loads

DELIM = b"<IDS|MSG>"
CHANNELS = ("shell", "iopub", "stdin", "control", "hb")
COLLISION_EXIT = 98


class Signer:
    def __init__(self, key: bytes, scheme: str) -> None:
        self.key = key
        if key:
            algo = scheme.split("-", 1)[1] if scheme.startswith("hmac-") else "sha256"
            self.base = hmac.new(key, digestmod=getattr(hashlib, algo))

    def sign(self, parts: list[bytes]) -> bytes:
        if not self.key:
            return b""
        h = self.base.copy()
        for p in parts:
            h.update(p)
        return h.hexdigest().encode()

    def verify(self, sig: bytes, parts: list[bytes]) -> bool:
        return not self.key or hmac.compare_digest(sig, self.sign(parts))


class FakeKernel:
    def __init__(self, conn: dict[str, Any], conn_file: str) -> None:
        self.conn = conn
        self.conn_file = conn_file
        self.signer = Signer(conn.get("key", "").encode(), conn.get("signature_scheme", ""))
        self.session = uuid.uuid4().hex
        self.counter = 0
        self.ctx = zmq.Context()
        self.sockets: dict[str, zmq.Socket[bytes]] = {}
        self.running = True

    # -- binding -------------------------------------------------------------------------

    def bind(self) -> None:
        kinds = {
            "shell": zmq.ROUTER,
            "iopub": zmq.XPUB,
            "stdin": zmq.ROUTER,
            "control": zmq.ROUTER,
            "hb": zmq.ROUTER,
        }
        ip = self.conn.get("ip", "127.0.0.1")
        transport = self.conn.get("transport", "tcp")
        wrote_back = False
        for name in CHANNELS:
            sock = self.ctx.socket(kinds[name])
            sock.linger = 0
            if name == "iopub":
                sock.sndhwm = 0  # never drop output, however slow the client
            port = int(self.conn.get(f"{name}_port", 0) or 0)
            try:
                if port:
                    sock.bind(f"{transport}://{ip}:{port}")
                else:
                    port = sock.bind_to_random_port(f"{transport}://{ip}")
                    self.conn[f"{name}_port"] = port
                    wrote_back = True
            except zmq.ZMQError as exc:
                if exc.errno == errno.EADDRINUSE:
                    self.collision(name, port)
                raise
            self.sockets[name] = sock
        if wrote_back:
            tmp = f"{self.conn_file}.{os.getpid()}.tmp"
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # it holds the key
            with os.fdopen(fd, "w") as f:
                json.dump(self.conn, f)
            os.replace(tmp, self.conn_file)

    def collision(self, channel: str, port: int) -> None:
        log = os.environ.get("BENCH_COLLISION_LOG")
        line = f"{os.getpid()} {channel} {port}\n"
        if log:
            with open(log, "a") as f:
                f.write(line)
        sys.stderr.write(f"fake kernel: port collision: {line}")
        sys.exit(COLLISION_EXIT)

    # -- sending -------------------------------------------------------------------------

    def header(self, msg_type: str, date: str) -> bytes:
        self.counter += 1
        return dumps(
            {
                "msg_id": f"{self.session}_{self.counter}",
                "msg_type": msg_type,
                "username": "fake",
                "session": self.session,
                "date": date,
                "version": "5.3",
            }
        )

    def frames(
        self, msg_type: str, content: dict[str, Any], parent: bytes, date: str
    ) -> list[bytes]:
        parts = [self.header(msg_type, date), parent, b"{}", dumps(content)]
        return [DELIM, self.signer.sign(parts), *parts]

    def publish(self, msg_type: str, content: dict[str, Any], parent: bytes, date: str) -> None:
        topic = b"kernel." + self.session.encode() + b"." + msg_type.encode()
        self.sockets["iopub"].send_multipart([topic, *self.frames(msg_type, content, parent, date)])

    def status(self, state: str, parent: bytes, date: str) -> None:
        self.publish("status", {"execution_state": state}, parent, date)

    # -- handling ------------------------------------------------------------------------

    def handle(self, channel: str, msg: list[bytes]) -> None:
        try:
            i = msg.index(DELIM)
        except ValueError:
            return
        idents, sig, parts = msg[:i], msg[i + 1], msg[i + 2 : i + 6]
        if len(parts) < 4 or not self.signer.verify(sig, parts):
            sys.stderr.write("fake kernel: dropped a malformed or badly signed message\n")
            return
        header = loads(parts[0])
        msg_type = header.get("msg_type", "")
        parent = parts[0]  # the request's header, byte for byte
        date = datetime.datetime.now(datetime.timezone.utc).isoformat()
        sock = self.sockets[channel]
        self.status("busy", parent, date)
        if msg_type == "kernel_info_request":
            reply = {
                "status": "ok",
                "protocol_version": "5.3",
                "implementation": "bench-fake",
                "implementation_version": "1.0",
                "language_info": {"name": "fake", "version": "1.0", "file_extension": ".txt"},
                "banner": "bench fake kernel",
                "help_links": [],
                "supported_features": [],
            }
        elif msg_type == "execute_request":
            code = loads(parts[3]).get("code", "")
            if code.startswith("stream "):
                self.stream(int(code.split()[1]), parent, date)
            reply = {
                "status": "ok",
                "execution_count": 1,
                "user_expressions": {},
                "payload": [],
            }
        elif msg_type == "shutdown_request":
            reply = {"status": "ok", "restart": bool(loads(parts[3]).get("restart"))}
            self.running = False
        else:
            reply = {"status": "ok"}
        reply_type = msg_type.rsplit("_", 1)[0] + "_reply"
        sock.send_multipart([*idents, *self.frames(reply_type, reply, parent, date)])
        self.status("idle", parent, date)

    def stream(self, n: int, parent: bytes, date: str) -> None:
        topic = b"kernel." + self.session.encode() + b".stream"
        batch = [
            [topic, *self.frames("stream", {"name": "stdout", "text": f"{i}\n"}, parent, date)]
            for i in range(n)
        ]
        # Frame by frame: pyzmq's send_multipart costs about twice as much per message,
        # and this kernel must outpace the fastest client.
        send, more = self.sockets["iopub"].send, zmq.SNDMORE
        for frames in batch:
            for frame in frames[:-1]:
                send(frame, more)
            send(frames[-1])

    def welcome(self, sub: bytes) -> None:
        if sub[:1] == b"\x01":
            date = datetime.datetime.now(datetime.timezone.utc).isoformat()
            self.publish("iopub_welcome", {"subscription": sub[1:].decode()}, b"{}", date)

    def start_heartbeat(self) -> None:
        """Echo heartbeats from a thread of their own, in C (as ipykernel does), so a kernel
        busy building a long stream still answers them."""

        def echo() -> None:
            with contextlib.suppress(zmq.ContextTerminated):
                zmq.proxy(self.sockets["hb"], self.sockets["hb"])

        threading.Thread(target=echo, name="heartbeat", daemon=True).start()

    def serve(self) -> None:
        poller = zmq.Poller()
        for name in ("shell", "control", "iopub"):
            poller.register(self.sockets[name], zmq.POLLIN)
        by_socket = {s: n for n, s in self.sockets.items()}
        while self.running:
            for sock, _ in poller.poll():
                name = by_socket[sock]
                if name == "iopub":
                    self.welcome(sock.recv())
                else:
                    self.handle(name, sock.recv_multipart())
                if not self.running:
                    break

    def close(self) -> None:
        for name, sock in self.sockets.items():
            if name != "hb":  # owned by the heartbeat thread; ctx.destroy ends it
                sock.close(linger=0)
        self.ctx.destroy(linger=0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("-f", "--connection-file", required=True)
    args = parser.parse_args(argv)
    # SIGINT interrupts a real kernel's code but never ends it; there is no code to stop here.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    with open(args.connection_file) as f:
        conn = json.load(f)
    kernel = FakeKernel(conn, args.connection_file)
    kernel.bind()
    kernel.start_heartbeat()
    try:
        kernel.serve()
    finally:
        kernel.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
