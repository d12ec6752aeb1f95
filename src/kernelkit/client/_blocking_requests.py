"""The request methods of the blocking face, written once for a client and its subshells.

:class:`BlockingRequests` is the base of :class:`~kernelkit.KernelClient` and
:class:`~kernelkit.Subshell`: each method builds the request's description
(:mod:`kernelkit.client._requests`) and hands it to the loop thread through a
:class:`~kernelkit.client._driver.Driver`. Its twin is
:class:`~kernelkit.client._async_requests.AsyncRequests`; a test keeps their signatures
equal.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kernelkit.client import _requests as rq
from kernelkit.client._driver import Driver
from kernelkit.client._hooks import BlockingStdinHook, OutputHook, pick_allow_stdin, print_output
from kernelkit.client._hooks import read_input as _read_input
from kernelkit.protocol import Message, new_id

__all__ = ["BlockingRequests"]


class BlockingRequests:
    """Shell requests, comms and raw requests on one shell (main or subshell), blocking.

    ``subshell_id`` on each method targets another subshell than the one this object
    is bound to (None: its own; the main shell for a client).
    """

    _driver: Driver

    def _target(self, subshell_id: str | None) -> str | None:
        """The subshell a request goes to (raises if this handle cannot send)."""
        raise NotImplementedError

    def execute(
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
        """See :meth:`AsyncKernelClient.execute`."""
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
        if outputs is None:
            return self._driver.ask(request, self._target(subshell_id), timeout)
        # The loop thread fills its own list; the caller's is extended once it is done.
        collected: list[Message] = []
        try:
            return self._driver.ask(request, self._target(subshell_id), timeout, collected)
        finally:
            outputs.extend(collected)

    def execute_interactive(
        self,
        code: str,
        *,
        silent: bool = False,
        store_history: bool = True,
        user_expressions: Mapping[str, str] | None = None,
        allow_stdin: bool | None = None,
        stop_on_error: bool = True,
        output_hook: OutputHook | None = None,
        stdin_hook: BlockingStdinHook | None = None,
        timeout: float | None = None,
        subshell_id: str | None = None,
    ) -> Message:
        """See :meth:`AsyncKernelClient.execute_interactive`; hooks run in this thread."""
        request = rq.execute(
            code,
            silent=silent,
            store_history=store_history,
            user_expressions=user_expressions,
            allow_stdin=pick_allow_stdin(allow_stdin, stdin_hook),
            stop_on_error=stop_on_error,
            wait_idle=True,
        )
        return self._driver.interactive(
            request,
            self._target(subshell_id),
            timeout,
            output_hook if output_hook is not None else print_output,
            stdin_hook if stdin_hook is not None else _read_input,
        )

    def kernel_info(
        self, *, timeout: float | None = None, subshell_id: str | None = None
    ) -> Message:
        """See :meth:`AsyncKernelClient.kernel_info`."""
        return self._driver.ask(rq.kernel_info(), self._target(subshell_id), timeout)

    def complete(
        self,
        code: str,
        cursor_pos: int | None = None,
        *,
        timeout: float | None = None,
        subshell_id: str | None = None,
    ) -> Message:
        """See :meth:`AsyncKernelClient.complete`."""
        return self._driver.ask(rq.complete(code, cursor_pos), self._target(subshell_id), timeout)

    def inspect(
        self,
        code: str,
        cursor_pos: int | None = None,
        detail_level: int = 0,
        *,
        timeout: float | None = None,
        subshell_id: str | None = None,
    ) -> Message:
        """See :meth:`AsyncKernelClient.inspect`."""
        request = rq.inspect(code, cursor_pos, detail_level)
        return self._driver.ask(request, self._target(subshell_id), timeout)

    def history(
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
        """See :meth:`AsyncKernelClient.history`."""
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
        return self._driver.ask(request, self._target(subshell_id), timeout)

    def is_complete(
        self, code: str, *, timeout: float | None = None, subshell_id: str | None = None
    ) -> Message:
        """See :meth:`AsyncKernelClient.is_complete`."""
        return self._driver.ask(rq.is_complete(code), self._target(subshell_id), timeout)

    def comm_info(
        self,
        target_name: str | None = None,
        *,
        timeout: float | None = None,
        subshell_id: str | None = None,
    ) -> Message:
        """See :meth:`AsyncKernelClient.comm_info`."""
        return self._driver.ask(rq.comm_info(target_name), self._target(subshell_id), timeout)

    # -- comms (no reply: they return the message id) ----------------------------------

    def comm_open(
        self,
        target_name: str,
        data: Mapping[str, Any] | None = None,
        *,
        comm_id: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        buffers: tuple[bytes | memoryview, ...] = (),
        subshell_id: str | None = None,
    ) -> str:
        """See :meth:`AsyncKernelClient.comm_open`."""
        comm_id = comm_id or new_id()
        content = {"comm_id": comm_id, "target_name": target_name, "data": dict(data or {})}
        request = rq.comm_message("comm_open", content, metadata=metadata, buffers=buffers)
        self._driver.send(request, self._target(subshell_id))
        return comm_id

    def comm_msg(
        self,
        comm_id: str,
        data: Mapping[str, Any] | None = None,
        *,
        metadata: Mapping[str, Any] | None = None,
        buffers: tuple[bytes | memoryview, ...] = (),
        subshell_id: str | None = None,
    ) -> str:
        """See :meth:`AsyncKernelClient.comm_msg`."""
        content = {"comm_id": comm_id, "data": dict(data or {})}
        request = rq.comm_message("comm_msg", content, metadata=metadata, buffers=buffers)
        return self._driver.send(request, self._target(subshell_id))

    def comm_close(
        self,
        comm_id: str,
        data: Mapping[str, Any] | None = None,
        *,
        metadata: Mapping[str, Any] | None = None,
        buffers: tuple[bytes | memoryview, ...] = (),
        subshell_id: str | None = None,
    ) -> str:
        """See :meth:`AsyncKernelClient.comm_close`."""
        content = {"comm_id": comm_id, "data": dict(data or {})}
        request = rq.comm_message("comm_close", content, metadata=metadata, buffers=buffers)
        return self._driver.send(request, self._target(subshell_id))

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
        """See :meth:`AsyncKernelClient.send_request`; returns without waiting for the
        loop thread (a failure to send is raised by :meth:`get_reply`)."""
        request = rq.custom(
            msg_type,
            content,
            channel=channel,
            metadata=metadata,
            buffers=buffers,
            wait_idle=wait_idle,
        )
        return self._driver.send_detached(request, self._target(subshell_id), timeout)

    def get_reply(self, msg_id: str, *, timeout: float | None = None) -> Message:
        """See :meth:`AsyncKernelClient.get_reply`."""
        driver = self._driver
        return driver.run(driver.core.detached.get_reply(msg_id, timeout=timeout))
