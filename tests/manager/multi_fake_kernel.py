"""A small real kernel process for the multi-kernel manager and pool tests.

Raw pyzmq and hmac only (no kernelkit). Run as
``python multi_fake_kernel.py -f CONNECTION_FILE [options]``. It binds the five sockets
(ports of 0 are chosen here and written back into the file, as ipykernel does), publishes
busy/idle around every request, welcomes IOPub subscribers, echoes heartbeats and signs
everything with the connection key, so kernelkit's manager and client treat it as a
kernel. It starts in about a tenth of a second, which keeps these tests fast.

Execute codes (anything else just replies ``ok``):

- ``print TEXT``: one ``stream`` output with TEXT.
- ``sleep S``: blocks S seconds while busy (the kernel answers nothing meanwhile).

Options: ``--ignore-term`` (SIGTERM does nothing), ``--ignore-shutdown`` (answers
``shutdown_request`` but keeps running: a kernel stuck in its cleanup), ``--start-delay S``
(sleep before binding: a slow start), ``--exit-after S`` (exit 3 after S seconds: a crash).
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import os
import signal
import sys
import threading
import time
import uuid
from datetime import datetime, timezone
from typing import Any

import zmq

DELIM = b"<IDS|MSG>"


class Kernel:
    def __init__(self, conn: dict[str, Any], path: str, *, ignore_shutdown: bool) -> None:
        self.conn = conn
        self.path = path
        self.ignore_shutdown = ignore_shutdown
        self.key = str(conn.get("key", "")).encode()
        self.session = uuid.uuid4().hex
        self.count = 0
        self.ctx = zmq.Context()
        self.socks: dict[str, zmq.Socket[bytes]] = {}
        self.running = True

    def sign(self, parts: list[bytes]) -> bytes:
        if not self.key:
            return b""
        h = hmac.new(self.key, digestmod=hashlib.sha256)
        for p in parts:
            h.update(p)
        return h.hexdigest().encode()

    def bind(self) -> None:
        kinds = {
            "shell": zmq.ROUTER,
            "control": zmq.ROUTER,
            "stdin": zmq.ROUTER,
            "iopub": zmq.XPUB,
            "hb": zmq.REP,
        }
        ip = self.conn.get("ip", "127.0.0.1")
        chosen = False
        for name, kind in kinds.items():
            sock = self.ctx.socket(kind)
            sock.linger = 0
            port = int(self.conn.get(f"{name}_port") or 0)
            if port:
                sock.bind(f"tcp://{ip}:{port}")
            else:
                self.conn[f"{name}_port"] = sock.bind_to_random_port(f"tcp://{ip}")
                chosen = True
            self.socks[name] = sock
        if chosen:
            tmp = f"{self.path}.{os.getpid()}.tmp"
            with open(tmp, "w") as f:
                json.dump(self.conn, f)
            os.replace(tmp, self.path)

    def frames(self, msg_type: str, content: dict[str, Any], parent: bytes) -> list[bytes]:
        self.count += 1
        header = {
            "msg_id": f"{self.session}_{self.count}",
            "msg_type": msg_type,
            "username": "fake",
            "session": self.session,
            "date": datetime.now(timezone.utc).isoformat(),
            "version": "5.3",
        }
        parts = [json.dumps(header).encode(), parent, b"{}", json.dumps(content).encode()]
        return [DELIM, self.sign(parts), *parts]

    def publish(self, msg_type: str, content: dict[str, Any], parent: bytes) -> None:
        topic = f"kernel.{self.session}.{msg_type}".encode()
        self.socks["iopub"].send_multipart([topic, *self.frames(msg_type, content, parent)])

    def handle(self, channel: str, msg: list[bytes]) -> None:
        i = msg.index(DELIM)
        idents, sig, parts = msg[:i], msg[i + 1], msg[i + 2 : i + 6]
        if not hmac.compare_digest(sig, self.sign(parts)):
            return
        header = json.loads(parts[0])
        content = json.loads(parts[3])
        msg_type = header["msg_type"]
        parent = parts[0]
        self.publish("status", {"execution_state": "busy"}, parent)
        reply: dict[str, Any] = {"status": "ok"}
        if msg_type == "kernel_info_request":
            reply.update(
                protocol_version="5.3",
                implementation="fake",
                implementation_version="1",
                language_info={"name": "fake", "version": "1", "file_extension": ".txt"},
                banner="fake kernel",
                help_links=[],
                supported_features=[],
            )
        elif msg_type == "execute_request":
            code = content.get("code", "")
            if code.startswith("print "):
                self.publish("stream", {"name": "stdout", "text": code[6:] + "\n"}, parent)
            elif code.startswith("sleep "):
                time.sleep(float(code[6:]))
            reply.update(execution_count=self.count, user_expressions={}, payload=[])
        elif msg_type == "shutdown_request":
            reply["restart"] = bool(content.get("restart"))
            self.running = self.ignore_shutdown
        reply_type = msg_type.rsplit("_", 1)[0] + "_reply"
        self.socks[channel].send_multipart([*idents, *self.frames(reply_type, reply, parent)])
        self.publish("status", {"execution_state": "idle"}, parent)

    def serve(self) -> None:
        poller = zmq.Poller()
        hb = self.socks["hb"]

        def echo() -> None:  # in a thread, as real kernels do: it beats while code runs
            while True:
                hb.send(hb.recv())

        threading.Thread(target=echo, daemon=True).start()
        for name in ("shell", "control", "iopub"):
            poller.register(self.socks[name], zmq.POLLIN)
        names = {s: n for n, s in self.socks.items()}
        while self.running:
            for sock, _ in poller.poll():
                name = names[sock]
                if name == "iopub":
                    if sock.recv()[:1] == b"\x01":
                        self.publish("iopub_welcome", {"subscription": ""}, b"{}")
                else:
                    self.handle(name, sock.recv_multipart())


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("-f", dest="connection_file", required=True)
    parser.add_argument("--ignore-term", action="store_true")
    parser.add_argument("--ignore-shutdown", action="store_true")
    parser.add_argument("--start-delay", type=float, default=0.0)
    parser.add_argument("--exit-after", type=float, default=0.0)
    args = parser.parse_args()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if args.ignore_term:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    if args.start_delay:
        time.sleep(args.start_delay)
    if args.exit_after:
        timer = threading.Timer(args.exit_after, os._exit, (3,))
        timer.daemon = True
        timer.start()
    with open(args.connection_file) as f:
        conn = json.load(f)
    kernel = Kernel(conn, args.connection_file, ignore_shutdown=args.ignore_shutdown)
    kernel.bind()
    kernel.serve()
    os._exit(0)  # the heartbeat thread holds its socket: skip the context's teardown


if __name__ == "__main__":
    sys.exit(main())
