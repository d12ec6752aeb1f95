"""The floor: a hand-rolled Jupyter client on raw pyzmq, hmac and orjson.

It does what any correct client must (sign requests, verify every reply's HMAC, parse
the JSON, match replies and outputs to their request), and nothing else.
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
import time
import uuid
from collections.abc import Callable
from typing import Any

import orjson
import zmq
import zmq.asyncio

DELIM = b"<IDS|MSG>"

# Floor sockets retry a refused connect every 2 ms (zmq's default is 100 ms), so a start
# measured with them is the kernel's own time, not a reconnect timer's.
RECONNECT_IVL_MS = 2


class RawSession:
    """hmac-sha256 + orjson, with a set of seen signatures for replay protection."""

    def __init__(self, key: bytes) -> None:
        self.key = key
        self.base = hmac.new(key, digestmod=hashlib.sha256)
        self.session = uuid.uuid4().hex
        self.seen: set[bytes] = set()

    def sign(self, parts: list[bytes]) -> bytes:
        h = self.base.copy()
        for p in parts:
            h.update(p)
        return h.hexdigest().encode()

    def header(self, msg_type: str) -> dict[str, Any]:
        return {
            "msg_id": uuid.uuid4().hex,
            "msg_type": msg_type,
            "username": "floor",
            "session": self.session,
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(),
            "version": "5.3",
        }

    def serialize(
        self, header: dict[str, Any], content: dict[str, Any], parent: dict[str, Any] | None = None
    ) -> list[bytes]:
        parts = [
            orjson.dumps(header),
            orjson.dumps(parent or {}),
            b"{}",
            orjson.dumps(content),
        ]
        return [DELIM, self.sign(parts), *parts]

    def request(self, msg_type: str, content: dict[str, Any]) -> tuple[str, list[bytes]]:
        header = self.header(msg_type)
        return header["msg_id"], self.serialize(header, content)

    def deserialize(self, frames: list[bytes]) -> tuple[dict[str, Any], dict[str, Any], Any]:
        """(header, parent_header, content) after verifying the signature; raises on bad."""
        i = frames.index(DELIM)
        sig = frames[i + 1]
        parts = frames[i + 2 : i + 6]
        if not hmac.compare_digest(sig, self.sign(parts)):
            raise ValueError("bad signature")
        if sig in self.seen:
            raise ValueError("replayed message")
        self.seen.add(sig)
        if len(self.seen) > 100_000:
            self.seen.clear()
        return orjson.loads(parts[0]), orjson.loads(parts[1]), orjson.loads(parts[3])


def execute_content(code: str) -> dict[str, Any]:
    return {
        "code": code,
        "silent": False,
        "store_history": False,
        "user_expressions": {},
        "allow_stdin": False,
        "stop_on_error": True,
    }


def _sockets(ctx: zmq.Context[Any], conn: dict[str, Any]) -> dict[str, Any]:
    url = f"tcp://{conn['ip']}:"
    socks: dict[str, Any] = {}
    for name, kind in (("shell", zmq.DEALER), ("control", zmq.DEALER), ("iopub", zmq.SUB)):
        s = ctx.socket(kind)
        s.linger = 0
        s.reconnect_ivl = RECONNECT_IVL_MS
        if kind == zmq.SUB:
            s.subscribe(b"")
        s.connect(url + str(conn[f"{name}_port"]))
        socks[name] = s
    return socks


class RawClient:
    """Blocking floor client."""

    def __init__(self, conn: dict[str, Any], ctx: zmq.Context[Any] | None = None) -> None:
        self.info = conn
        self.session = RawSession(conn["key"].encode())
        self.own_ctx = ctx is None
        self.ctx: zmq.Context[Any] = zmq.Context() if ctx is None else ctx
        self.s = _sockets(self.ctx, conn)
        self.iopub_seen = 0

    def close(self) -> None:
        for s in self.s.values():
            s.close(linger=0)
        if self.own_ctx:
            self.ctx.term()

    def send(self, channel: str, msg_type: str, content: dict[str, Any]) -> str:
        msg_id, frames = self.session.request(msg_type, content)
        self.s[channel].send_multipart(frames)
        return msg_id

    def reply(self, channel: str, msg_id: str, timeout: float = 30.0) -> dict[str, Any]:
        sock = self.s[channel]
        deadline = time.monotonic() + timeout
        while True:
            if not sock.poll(max(0, int((deadline - time.monotonic()) * 1000))):
                raise TimeoutError(f"no {channel} reply in {timeout} s")
            _, parent, content = self.session.deserialize(sock.recv_multipart())
            if parent.get("msg_id") == msg_id:
                return content  # type: ignore[no-any-return]

    def idle(
        self,
        msg_id: str,
        timeout: float = 60.0,
        on_output: Callable[[dict[str, Any], Any], None] | None = None,
    ) -> None:
        sock = self.s["iopub"]
        deadline = time.monotonic() + timeout
        recv, noblock = sock.recv_multipart, zmq.NOBLOCK
        while True:
            try:  # poll (a system call) only when nothing is queued
                frames = recv(noblock)
            except zmq.Again:
                if not sock.poll(max(0, int((deadline - time.monotonic()) * 1000))):
                    raise TimeoutError(f"no idle status in {timeout} s") from None
                continue
            header, parent, content = self.session.deserialize(frames)
            self.iopub_seen += 1
            if parent.get("msg_id") != msg_id:
                continue
            if header["msg_type"] == "status":
                if content["execution_state"] == "idle":
                    return
            elif on_output is not None:
                on_output(header, content)

    def drain_iopub(self) -> None:
        sock = self.s["iopub"]
        while sock.poll(0):
            sock.recv_multipart()
            self.iopub_seen += 1

    def wait_ready(self, timeout: float = 60.0) -> None:
        """kernel_info_reply on shell plus one IOPub message (PROTOCOL.md's readiness)."""
        msg_id = self.send("shell", "kernel_info_request", {})
        self.reply("shell", msg_id, timeout)
        sock = self.s["iopub"]
        if not self.iopub_seen:
            if not sock.poll(int(timeout * 1000)):
                raise TimeoutError("no IOPub message")
            sock.recv_multipart()
            self.iopub_seen += 1

    def execute(self, code: str) -> dict[str, Any]:
        msg_id = self.send("shell", "execute_request", execute_content(code))
        self.idle(msg_id)
        return self.reply("shell", msg_id)

    def kernel_info(self) -> dict[str, Any]:
        return self.reply("shell", self.send("shell", "kernel_info_request", {}))

    def shutdown(self, restart: bool = False) -> dict[str, Any]:
        return self.reply("control", self.send("control", "shutdown_request", {"restart": restart}))


class AsyncRawClient:
    """Asyncio floor client (zmq.asyncio sockets)."""

    def __init__(self, conn: dict[str, Any]) -> None:
        self.session = RawSession(conn["key"].encode())
        self.ctx = zmq.asyncio.Context()
        self.s = _sockets(self.ctx, conn)
        self.sync = {name: zmq.Socket.shadow(s.underlying) for name, s in self.s.items()}
        self.iopub_seen = 0

    def close(self) -> None:
        for s in self.s.values():
            s.close(linger=0)
        self.ctx.term()

    async def send(self, channel: str, msg_type: str, content: dict[str, Any]) -> str:
        msg_id, frames = self.session.request(msg_type, content)
        await self.s[channel].send_multipart(frames)
        return msg_id

    async def recv(self, channel: str) -> list[bytes]:
        """The next message: taken at once when queued (through a blocking view of the
        socket, no future per message), awaited only when nothing is."""
        try:
            return self.sync[channel].recv_multipart(zmq.NOBLOCK)  # type: ignore[no-any-return]
        except zmq.Again:
            return await self.s[channel].recv_multipart()  # type: ignore[no-any-return]

    async def reply(self, channel: str, msg_id: str) -> dict[str, Any]:
        while True:
            _, parent, content = self.session.deserialize(await self.recv(channel))
            if parent.get("msg_id") == msg_id:
                return content  # type: ignore[no-any-return]

    async def idle(
        self, msg_id: str, on_output: Callable[[dict[str, Any], Any], None] | None = None
    ) -> None:
        while True:
            header, parent, content = self.session.deserialize(await self.recv("iopub"))
            self.iopub_seen += 1
            if parent.get("msg_id") != msg_id:
                continue
            if header["msg_type"] == "status":
                if content["execution_state"] == "idle":
                    return
            elif on_output is not None:
                on_output(header, content)

    async def drain_iopub(self) -> None:
        sock = self.s["iopub"]
        while await sock.poll(0):
            await sock.recv_multipart()
            self.iopub_seen += 1

    async def wait_ready(self) -> None:
        msg_id = await self.send("shell", "kernel_info_request", {})
        await self.reply("shell", msg_id)
        if not self.iopub_seen:
            await self.recv("iopub")
            self.iopub_seen += 1

    async def execute(self, code: str) -> dict[str, Any]:
        msg_id = await self.send("shell", "execute_request", execute_content(code))
        await self.idle(msg_id)
        return await self.reply("shell", msg_id)

    async def kernel_info(self) -> dict[str, Any]:
        return await self.reply("shell", await self.send("shell", "kernel_info_request", {}))

    async def shutdown(self, restart: bool = False) -> dict[str, Any]:
        msg_id = await self.send("control", "shutdown_request", {"restart": restart})
        return await self.reply("control", msg_id)
