"""The request methods of the asyncio face, written once for a client and its subshells.

:class:`AsyncRequests` is the base of :class:`~kernelkit.AsyncKernelClient` (bound to
the main shell) and :class:`~kernelkit.AsyncSubshell` (bound to one subshell id): each
method builds the request's description (:mod:`kernelkit.client._requests`) and sends
it through the client core. The blocking twin is
:class:`~kernelkit.client._blocking_requests.BlockingRequests`; a test keeps their
signatures equal.
"""

from __future__ import annotations

import inspect as _inspect
from collections.abc import Mapping
from typing import Any

from kernelkit.client import _requests as rq
from kernelkit.client._core import ClientCore
from kernelkit.client._hooks import (
    OutputHook,
    StdinHook,
    pick_allow_stdin,
    print_output,
    read_input_in_thread,
)
from kernelkit.client._waiters import Waiter
from kernelkit.protocol import Message, TrackedRequest, new_id

__all__ = ["AsyncRequests"]


class AsyncRequests:
    """Shell requests, comms and raw requests on one shell (main or subshell).

    ``subshell_id`` on each method targets another subshell than the one this object
    is bound to (None: its own; the main shell for a client).
    """

    _core: ClientCore

    def _target(self, subshell_id: str | None) -> str | None:
        """The subshell a request goes to (raises if this handle cannot send)."""
        raise NotImplementedError

    async def _ask(
        self,
        request: rq.Request,
        subshell_id: str | None,
        timeout: float | None,
        outputs: list[Message] | None = None,
    ) -> Message:
        core = self._core
        msg = core.build(request, self._target(subshell_id))
        return await core.wait(core.begin(request, msg, timeout=timeout, outputs=outputs))

    async def execute(
        self,
        code: str,
        *,
        silent: bool = False,
        store_history: bool = True,
        user_expressions: Mapping[str, str] | None = None,
        allow_stdin: bool = False,
        stop_on_error: bool = True,
        outputs: list[Message] | None = None,
        raise_on_error: bool = False,
        timeout: float | None = None,
        subshell_id: str | None = None,
    ) -> Message:
        """Run ``code``; return the ``execute_reply``.

        With ``outputs`` (a list), the request's IOPub messages other than ``status``
        are appended to it in order, and the call returns only once the kernel went
        idle, so none are missing. ``raise_on_error`` turns an error reply into
        :class:`ExecutionError`.

        Raises:
            KernelTimeout: no reply (or idle) within ``timeout`` seconds.
            KernelDied, HeartbeatTimeout, ClientClosed: the kernel or client is gone.
            ExecutionError: the code raised and ``raise_on_error`` is set.
        """
        request = rq.execute(
            code,
            silent=silent,
            store_history=store_history,
            user_expressions=user_expressions,
            allow_stdin=allow_stdin,
            stop_on_error=stop_on_error,
            wait_idle=outputs is not None,
            raise_on_error=raise_on_error,
        )
        return await self._ask(request, subshell_id, timeout, outputs)

    async def execute_interactive(
        self,
        code: str,
        *,
        silent: bool = False,
        store_history: bool = True,
        user_expressions: Mapping[str, str] | None = None,
        allow_stdin: bool | None = None,
        stop_on_error: bool = True,
        output_hook: OutputHook | None = None,
        stdin_hook: StdinHook | None = None,
        timeout: float | None = None,
        subshell_id: str | None = None,
    ) -> Message:
        """Run ``code``, showing its output as it comes; return the ``execute_reply``.

        ``output_hook`` gets every IOPub message of this request (default: print it
        like a terminal). ``stdin_hook`` answers ``input_request`` (default: ask at the
        terminal, in a worker thread); it may be a coroutine function. ``allow_stdin``
        defaults to True when a ``stdin_hook`` is given or stdin is a terminal. Returns
        once the reply and the idle status have both arrived.

        Raises:
            KernelTimeout: not finished within ``timeout`` seconds.
            KernelDied, HeartbeatTimeout, ClientClosed: the kernel or client is gone.
            Exception: whatever ``output_hook`` or ``stdin_hook`` raised.
        """
        request = rq.execute(
            code,
            silent=silent,
            store_history=store_history,
            user_expressions=user_expressions,
            allow_stdin=pick_allow_stdin(allow_stdin, stdin_hook),
            stop_on_error=stop_on_error,
            wait_idle=True,
        )
        answer: StdinHook = stdin_hook if stdin_hook is not None else read_input_in_thread
        core = self._core
        msg = core.build(request, self._target(subshell_id))
        holder: list[TrackedRequest[Waiter]] = []

        def on_input(input_request: Message) -> None:
            core.spawn(_answer_input(core, input_request, answer, holder[0]))

        tracked = core.begin(
            request,
            msg,
            timeout=timeout,
            hook=output_hook if output_hook is not None else print_output,
            on_input=on_input,
        )
        holder.append(tracked)
        return await core.wait(tracked)

    async def kernel_info(
        self, *, timeout: float | None = None, subshell_id: str | None = None
    ) -> Message:
        """Ask for ``kernel_info``; return the reply (also kept as ``kernel_info_reply``)."""
        return await self._ask(rq.kernel_info(), subshell_id, timeout)

    async def complete(
        self,
        code: str,
        cursor_pos: int | None = None,
        *,
        timeout: float | None = None,
        subshell_id: str | None = None,
    ) -> Message:
        """Ask for completions at ``cursor_pos`` (default: the end); return the reply."""
        return await self._ask(rq.complete(code, cursor_pos), subshell_id, timeout)

    async def inspect(
        self,
        code: str,
        cursor_pos: int | None = None,
        detail_level: int = 0,
        *,
        timeout: float | None = None,
        subshell_id: str | None = None,
    ) -> Message:
        """Ask for documentation of the object at ``cursor_pos``; return the reply."""
        return await self._ask(rq.inspect(code, cursor_pos, detail_level), subshell_id, timeout)

    async def history(
        self,
        *,
        raw: bool = True,
        output: bool = False,
        hist_access_type: str = "range",
        session: int | None = None,
        start: int | None = None,
        stop: int | None = None,
        n: int | None = None,
        pattern: str | None = None,
        unique: bool = False,
        timeout: float | None = None,
        subshell_id: str | None = None,
    ) -> Message:
        """Ask for input history (``range``, ``tail`` or ``search``); return the reply."""
        request = rq.history(
            raw=raw,
            output=output,
            hist_access_type=hist_access_type,
            session=session,
            start=start,
            stop=stop,
            n=n,
            pattern=pattern,
            unique=unique,
        )
        return await self._ask(request, subshell_id, timeout)

    async def is_complete(
        self, code: str, *, timeout: float | None = None, subshell_id: str | None = None
    ) -> Message:
        """Ask whether ``code`` is a complete statement; return the reply."""
        return await self._ask(rq.is_complete(code), subshell_id, timeout)

    async def comm_info(
        self,
        target_name: str | None = None,
        *,
        timeout: float | None = None,
        subshell_id: str | None = None,
    ) -> Message:
        """Ask which comms are open (optionally for one target); return the reply."""
        return await self._ask(rq.comm_info(target_name), subshell_id, timeout)

    # -- comms (no reply: they return the message id) ----------------------------------

    async def comm_open(
        self,
        target_name: str,
        data: Mapping[str, Any] | None = None,
        *,
        comm_id: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        buffers: tuple[bytes | memoryview, ...] = (),
        subshell_id: str | None = None,
    ) -> str:
        """Open a comm to ``target_name``; return its comm id."""
        comm_id = comm_id or new_id()
        content = {"comm_id": comm_id, "target_name": target_name, "data": dict(data or {})}
        request = rq.comm_message("comm_open", content, metadata=metadata, buffers=buffers)
        self._core.send(request, self._core.build(request, self._target(subshell_id)))
        return comm_id

    async def comm_msg(
        self,
        comm_id: str,
        data: Mapping[str, Any] | None = None,
        *,
        metadata: Mapping[str, Any] | None = None,
        buffers: tuple[bytes | memoryview, ...] = (),
        subshell_id: str | None = None,
    ) -> str:
        """Send data on an open comm; return the message id."""
        content = {"comm_id": comm_id, "data": dict(data or {})}
        request = rq.comm_message("comm_msg", content, metadata=metadata, buffers=buffers)
        return self._core.send(request, self._core.build(request, self._target(subshell_id)))

    async def comm_close(
        self,
        comm_id: str,
        data: Mapping[str, Any] | None = None,
        *,
        metadata: Mapping[str, Any] | None = None,
        buffers: tuple[bytes | memoryview, ...] = (),
        subshell_id: str | None = None,
    ) -> str:
        """Close a comm; return the message id."""
        content = {"comm_id": comm_id, "data": dict(data or {})}
        request = rq.comm_message("comm_close", content, metadata=metadata, buffers=buffers)
        return self._core.send(request, self._core.build(request, self._target(subshell_id)))

    # -- any request, reply claimed later ----------------------------------------------

    def send_request(
        self,
        msg_type: str,
        content: Mapping[str, Any] | None = None,
        *,
        channel: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        buffers: tuple[bytes | memoryview, ...] = (),
        wait_idle: bool = False,
        timeout: float | None = None,
        subshell_id: str | None = None,
    ) -> str:
        """Send a request and return its ``msg_id`` at once, without waiting.

        ``channel`` defaults to the protocol's for ``msg_type`` (control for
        shutdown, interrupt, debug and subshell requests; else shell). Claim the reply
        with :meth:`get_reply` (with ``wait_idle``, once the request's idle status came
        too), or match it yourself on a :meth:`messages` stream. ``timeout`` starts
        now. Call on the client's event loop.

        Raises:
            LocalProtocolError: not a request type, or a channel that carries none.
            KernelDied, HeartbeatTimeout, ClientClosed: the kernel or client is gone.
        """
        request = rq.custom(
            msg_type,
            content,
            channel=channel,
            metadata=metadata,
            buffers=buffers,
            wait_idle=wait_idle,
        )
        core = self._core
        msg = core.build(request, self._target(subshell_id))
        return core.detached.send(request, msg, timeout=timeout).msg_id

    async def get_reply(self, msg_id: str, *, timeout: float | None = None) -> Message:
        """The reply to a request sent with :meth:`send_request` (waits for it; each
        reply is claimed once).

        Raises:
            LocalProtocolError: no request with that ``msg_id`` awaits its reply here.
            KernelTimeout: no reply within ``timeout`` seconds (it stays claimable).
            KernelDied, HeartbeatTimeout, ClientClosed: the kernel or client is gone.
        """
        return await self._core.detached.get_reply(msg_id, timeout=timeout)


async def _answer_input(
    core: ClientCore, request: Message, hook: StdinHook, tracked: TrackedRequest[Waiter]
) -> None:
    """Answer an ``input_request`` with ``hook`` (on the loop); a failing hook still
    answers (or the kernel waits forever) and fails the call with its error."""
    reply_to = rq.input_reply
    try:
        value = hook(request)
        if _inspect.isawaitable(value):
            value = await value
    except Exception as exc:
        core.send(reply_to("", request), core.build(reply_to("", request), None))
        core.abort(tracked, exc)
        return
    if value is not None:
        answer = reply_to(str(value), request)
        core.send(answer, core.build(answer, None))
