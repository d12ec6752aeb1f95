"""The client jupyter_client-based tools talk to: :class:`AsyncBridgeClient`.

nbclient, nbconvert and papermill use a small part of jupyter_client's client API:
``start_channels``/``stop_channels``, ``wait_for_ready``, ``execute`` (and
``kernel_info``) returning a msg_id, ``shell_channel.get_msg(timeout=)`` raising
:class:`queue.Empty`, ``iopub_channel.get_msg``, ``is_alive`` and ``session.msg``. This
is that API over one :class:`kernelkit.AsyncKernelClient`: every shell request is sent
with ``send_request`` and its reply claimed at once, so the shell channel hands out the
replies as dicts in jupyter_client's shape, and a kernel that dies makes the shell
channel raise nbclient's :class:`~nbclient.exceptions.DeadKernelError` at once, with
kernelkit's reason (exit code, last lines the kernel wrote) in it.
"""

from __future__ import annotations

import asyncio
import logging
import queue
from collections.abc import Mapping
from typing import Any

from jupyter_client.session import Session as JupyterSession
from nbclient.exceptions import DeadKernelError

from kernelkit import (
    AsyncKernelClient,
    AsyncMessageStream,
    ClientClosed,
    KernelError,
    KernelTimeout,
    Message,
)

__all__ = ["AsyncBridgeClient", "ReplyChannel", "StreamChannel"]

log = logging.getLogger("kernelkit.jupyter")


def _dead(error: BaseException) -> DeadKernelError:
    return DeadKernelError(f"Kernel died: {error}")


class ReplyChannel:
    """The shell (or control) channel: the replies to this client's requests, in the
    order they arrive, as jupyter_client's message dicts."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._queue: asyncio.Queue[dict[str, Any] | BaseException] = asyncio.Queue()
        self._error: BaseException | None = None

    def put(self, item: dict[str, Any] | BaseException) -> None:
        self._queue.put_nowait(item)

    async def get_msg(self, timeout: float | None = None) -> dict[str, Any]:
        """The next reply.

        Raises:
            queue.Empty: none within ``timeout`` seconds (None: wait as long as it takes).
            DeadKernelError: the kernel died (the message says why).
        """
        if self._error is not None:
            raise _dead(self._error)
        try:
            item = await asyncio.wait_for(self._queue.get(), timeout)
        except asyncio.TimeoutError:
            raise queue.Empty from None
        if isinstance(item, BaseException):
            self._error = item
            raise _dead(item)
        return item

    def msg_ready(self) -> bool:
        return not self._queue.empty()

    def get_msgs(self) -> list[dict[str, Any]]:
        """Every reply already received (none waits)."""
        out: list[dict[str, Any]] = []
        while not self._queue.empty():
            item = self._queue.get_nowait()
            if isinstance(item, BaseException):
                self._error = item
                break
            out.append(item)
        return out

    def is_alive(self) -> bool:
        return self._error is None


class StreamChannel:
    """IOPub or stdin: every message the kernel sends on it, as jupyter_client's dicts."""

    def __init__(self, name: str, stream: AsyncMessageStream) -> None:
        self.name = name
        self._stream = stream

    async def get_msg(self, timeout: float | None = None) -> dict[str, Any]:
        """The next message.

        Raises:
            queue.Empty: none within ``timeout`` seconds, or the client was closed.
        """
        try:
            msg = await self._stream.get(timeout)
        except (KernelTimeout, ClientClosed):
            raise queue.Empty from None
        return msg.to_dict()

    async def get_msgs(self) -> list[dict[str, Any]]:
        out = []
        while True:
            try:
                out.append(await self.get_msg(timeout=0))
            except queue.Empty:
                return out

    def close(self) -> None:
        self._stream.close()

    def is_alive(self) -> bool:
        return True


class AsyncBridgeClient:
    """jupyter_client's ``AsyncKernelClient`` API (the part tools use) over a kernelkit
    client made by :class:`kernelkit.jupyter.AsyncKernelManager`.

    The kernelkit client is kept informed by its manager, so requests fail at once when
    the kernel dies. Use on one event loop (the one ``start_channels`` ran on).
    """

    def __init__(self, client: AsyncKernelClient, *, alive: Any = None) -> None:
        self._client = client
        self._alive = alive  # the manager's is_alive coroutine function, when it has one
        self.session = JupyterSession(
            key=client.session.key,
            signature_scheme=client.session.signature_scheme,
            username=client.session.username,
        )
        self.allow_stdin = True
        self.shell_channel = ReplyChannel("shell")
        self.control_channel = ReplyChannel("control")
        self._iopub: StreamChannel | None = None
        self._stdin: StreamChannel | None = None
        self._claims: set[asyncio.Task[None]] = set()

    @property
    def kernelkit_client(self) -> AsyncKernelClient:
        """The kernelkit client underneath."""
        return self._client

    @property
    def iopub_channel(self) -> StreamChannel:
        if self._iopub is None:
            raise ClientClosed("call start_channels() first")
        return self._iopub

    @property
    def stdin_channel(self) -> StreamChannel:
        if self._stdin is None:
            raise ClientClosed("call start_channels() first")
        return self._stdin

    @property
    def channels_running(self) -> bool:
        return self._iopub is not None and not self._client.closed

    # -- lifetime ------------------------------------------------------------------------

    async def start_channels(
        self, shell: bool = True, iopub: bool = True, stdin: bool = True, **_: object
    ) -> None:
        """Connect (all channels; the arguments are accepted and ignored)."""
        # Subscribe before connecting, so nothing the kernel sends first is missed.
        if self._iopub is None:
            self._iopub = StreamChannel("iopub", self._client.iopub_messages())
            self._stdin = StreamChannel("stdin", self._client.messages(("stdin",)))
        if not self._client.started:
            await self._client.start()

    async def stop_channels(self) -> None:
        """Disconnect (the kernel keeps running)."""
        for task in self._claims:
            task.cancel()
        self._claims.clear()
        for channel in (self._iopub, self._stdin):
            if channel is not None:
                channel.close()
        await self._client.aclose()

    async def wait_for_ready(self, timeout: float | None = None) -> None:
        """Wait until the kernel answers.

        Raises:
            RuntimeError: it did not within ``timeout`` seconds, or died (jupyter_client
                raises RuntimeError here, and nbclient expects it).
        """
        try:
            await self._client.wait_for_ready(timeout=timeout)
        except KernelError as exc:
            raise RuntimeError(f"the kernel is not ready: {exc}") from exc

    async def is_alive(self) -> bool:
        """False once the kernel died (or, for a kernel with a manager, its process
        exited)."""
        if self._client.dead_error is not None:
            return False
        if self._alive is not None:
            return bool(await self._alive())
        return self._client.is_alive

    # -- requests ------------------------------------------------------------------------

    def _send(self, msg_type: str, content: Mapping[str, Any], channel: str = "shell") -> str:
        msg_id = self._client.send_request(msg_type, content, channel=channel)
        target = self.shell_channel if channel == "shell" else self.control_channel
        # On the client's loop, which may be stopped now: papermill calls kernel_info()
        # between two runs of it; the claim then starts when the loop next runs.
        task = self._client.core.check_loop().create_task(self._claim(msg_id, target))
        self._claims.add(task)
        task.add_done_callback(self._claims.discard)
        return msg_id

    async def _claim(self, msg_id: str, target: ReplyChannel) -> None:
        try:
            reply: Message = await self._client.get_reply(msg_id)
        except KernelError as exc:
            target.put(exc)
            return
        target.put(reply.to_dict())

    def execute(
        self,
        code: str,
        silent: bool = False,
        store_history: bool = True,
        user_expressions: Mapping[str, Any] | None = None,
        allow_stdin: bool | None = None,
        stop_on_error: bool = True,
    ) -> str:
        """Send an execute_request; returns its msg_id (the reply comes on
        ``shell_channel``)."""
        content = {
            "code": code,
            "silent": silent,
            "store_history": store_history,
            "user_expressions": dict(user_expressions or {}),
            "allow_stdin": self.allow_stdin if allow_stdin is None else allow_stdin,
            "stop_on_error": stop_on_error,
        }
        return self._send("execute_request", content)

    def kernel_info(self) -> str:
        return self._send("kernel_info_request", {})

    def complete(self, code: str, cursor_pos: int | None = None) -> str:
        return self._send(
            "complete_request",
            {"code": code, "cursor_pos": len(code) if cursor_pos is None else cursor_pos},
        )

    def inspect(self, code: str, cursor_pos: int | None = None, detail_level: int = 0) -> str:
        pos = len(code) if cursor_pos is None else cursor_pos
        return self._send(
            "inspect_request", {"code": code, "cursor_pos": pos, "detail_level": detail_level}
        )

    def is_complete(self, code: str) -> str:
        return self._send("is_complete_request", {"code": code})

    def comm_info(self, target_name: str | None = None) -> str:
        content = {} if target_name is None else {"target_name": target_name}
        return self._send("comm_info_request", content)

    def shutdown(self, restart: bool = False) -> str:
        return self._send("shutdown_request", {"restart": restart}, channel="control")

    def input(self, string: str) -> None:
        """Answer the kernel's last input_request."""
        task = self._client.core.check_loop().create_task(self._client.input(string))
        self._claims.add(task)
        task.add_done_callback(self._claims.discard)

    def __repr__(self) -> str:
        return f"<AsyncBridgeClient over {self._client!r}>"
