"""A scripted kernel on the far side of a MemoryTransport, for client tests.

It answers the way ipykernel does (busy, outputs, reply, idle), with a few code
conventions to drive it:

- ``print:<text>``: a stdout stream, then the reply.
- ``error:<name>``: an ``error`` output and an error reply.
- ``input:<prompt>``: an ``input_request`` on stdin; the answer is echoed as a stream.
- ``hold``: nothing at all (the test answers, or nothing does).
- ``idle-first``: the idle status before the reply.
- anything else: ``execute_result`` with the code as text/plain.

``features`` go into ``kernel_info_reply.supported_features``; subshell requests are
served when ``"kernel subshells"`` is among them (and only then: otherwise they are
ignored, as xeus-python does).
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from typing import Any

from kernelkit.protocol import Message
from kernelkit.protocol import reply_type as protocol_reply_type
from kernelkit.transport import MemoryTransport


class FakeKernel:
    def __init__(
        self,
        transport: MemoryTransport,
        *,
        features: tuple[str, ...] = ("kernel subshells",),
        welcome: bool = True,
    ) -> None:
        self.transport = transport
        self.features = features
        self.welcome = welcome
        self.received: list[tuple[str, Message]] = []
        self.subshells: list[str] = []
        self.count = 0
        self._task: asyncio.Task[None] | None = None

    def start(self) -> FakeKernel:
        self._task = asyncio.get_running_loop().create_task(self._serve())
        return self

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def of_type(self, msg_type: str) -> list[Message]:
        return [m for _, m in self.received if m.header.msg_type == msg_type]

    async def _serve(self) -> None:
        t = self.transport
        if self.welcome:
            t.deliver("iopub", t.message("iopub_welcome", {"subscription": ""}))
        while True:
            channel, msg = await t.receive(timeout=None)
            self.received.append((channel, msg))
            msg_type = msg.header.msg_type
            if msg_type == "input_reply":
                continue
            handler = getattr(self, "_on_" + msg_type.removesuffix("_request"), None)
            if handler is None:
                if msg_type.endswith("_request"):
                    self._answer(channel, msg, {"status": "ok"})
                continue
            await handler(channel, msg)

    def _answer(
        self, channel: str, msg: Message, content: dict[str, Any], *, idle_first: bool = False
    ) -> None:
        t = self.transport
        t.publish(msg, "status", {"execution_state": "busy"})
        reply_type = protocol_reply_type(msg.header.msg_type)
        if idle_first:
            t.publish(msg, "status", {"execution_state": "idle"})
            t.reply(msg, reply_type, content, channel=channel)
        else:
            t.reply(msg, reply_type, content, channel=channel)
            t.publish(msg, "status", {"execution_state": "idle"})

    async def _on_kernel_info(self, channel: str, msg: Message) -> None:
        self._answer(
            channel,
            msg,
            {
                "status": "ok",
                "protocol_version": "5.3",
                "implementation": "fake",
                "language_info": {"name": "fake"},
                "supported_features": list(self.features),
            },
        )

    async def _on_execute(self, channel: str, msg: Message) -> None:
        t = self.transport
        code: str = msg.content["code"]
        if code == "hold":
            return
        self.count += 1
        t.publish(msg, "status", {"execution_state": "busy"})
        t.publish(msg, "execute_input", {"code": code, "execution_count": self.count})
        content: dict[str, Any] = {"status": "ok", "execution_count": self.count}
        if code.startswith("print:"):
            t.publish(msg, "stream", {"name": "stdout", "text": code[6:] + "\n"})
        elif code.startswith("error:"):
            err = {"ename": code[6:], "evalue": "boom", "traceback": [f"{code[6:]}: boom"]}
            t.publish(msg, "error", err)
            content = {"status": "error", "execution_count": self.count, **err}
        elif code.startswith("input:"):
            t.deliver(
                "stdin",
                t.message("input_request", {"prompt": code[6:], "password": False}, parent=msg),
            )
            while True:
                channel2, answer = await t.receive(timeout=None)
                self.received.append((channel2, answer))
                if answer.header.msg_type == "input_reply":
                    break
            t.publish(msg, "stream", {"name": "stdout", "text": answer.content["value"]})
        elif code != "idle-first":
            t.publish(
                msg,
                "execute_result",
                {"data": {"text/plain": code}, "metadata": {}, "execution_count": self.count},
            )
        if code == "idle-first":
            t.publish(msg, "status", {"execution_state": "idle"})
            t.reply(msg, "execute_reply", content)
        else:
            t.reply(msg, "execute_reply", content)
            t.publish(msg, "status", {"execution_state": "idle"})

    async def _on_create_subshell(self, channel: str, msg: Message) -> None:
        if "kernel subshells" not in self.features:
            return
        sid = str(uuid.uuid4())
        self.subshells.append(sid)
        self._answer(channel, msg, {"status": "ok", "subshell_id": sid})

    async def _on_list_subshell(self, channel: str, msg: Message) -> None:
        if "kernel subshells" not in self.features:
            return
        self._answer(channel, msg, {"status": "ok", "subshell_id": list(self.subshells)})

    async def _on_delete_subshell(self, channel: str, msg: Message) -> None:
        if "kernel subshells" not in self.features:
            return
        sid = msg.content.get("subshell_id")
        if sid in self.subshells:
            self.subshells.remove(sid)
            self._answer(channel, msg, {"status": "ok"})
        else:
            self._answer(channel, msg, {"status": "error", "evalue": f"Unknown subshell_id {sid}"})
