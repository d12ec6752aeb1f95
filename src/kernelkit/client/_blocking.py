"""The blocking kernel client: the asyncio client driven from one loop thread it owns.

:class:`KernelClient` holds an :class:`AsyncKernelClient` and one event-loop thread,
started by :meth:`KernelClient.start` (or ``with``) and stopped by :meth:`close`. Each
method hands its coroutine to that loop and waits for the result; the decisions all
live in the async client. Hooks (output, stdin) run in the calling thread, in order.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import queue
import threading
from collections import deque
from collections.abc import Callable, Coroutine, Iterator, Mapping
from concurrent.futures import CancelledError
from functools import partial
from types import TracebackType
from typing import Any, TypeVar

from kernelkit._connection import ConnectionInfo, read_connection_file
from kernelkit._errors import ClientClosed, KernelError, KernelTimeout
from kernelkit._loopthread import LoopThread
from kernelkit.client._async import (
    DEFAULT_FIRST_CONTACT_TIMEOUT,
    AsyncKernelClient,
    AsyncSubshell,
    OutputHook,
    _stdin_is_terminal,
    default_transport,
)
from kernelkit.client._requests import (
    complete_content,
    execute_content,
    history_content,
    inspect_content,
    print_output,
    raise_for_execute_error,
    read_input,
)
from kernelkit.protocol import Message, Session, TrackedRequest
from kernelkit.transport._base import Transport

__all__ = [
    "BlockingStdinHook",
    "KernelClient",
    "MessageStream",
    "Subshell",
]

T = TypeVar("T")

#: Called (in the calling thread) with an ``input_request``; returns the text to send,
#: or None when it has answered itself with ``client.input``.
BlockingStdinHook = Callable[[Message], "str | None"]

_DONE = object()


class MessageStream:
    """Every IOPub message the client receives from now on (blocking iterator).

    Iterating ends when the client closes. Close it when you stop reading.
    """

    __slots__ = ("_client", "_closed", "_queue", "_remove")

    def __init__(self, client: KernelClient) -> None:
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._closed = False
        self._client = client
        self._remove = client._call(client._client._subscribe, self._queue.put, self._end)

    def _end(self) -> None:
        self._queue.put(_DONE)

    def __iter__(self) -> MessageStream:
        return self

    def __next__(self) -> Message:
        item = self._queue.get()
        if item is _DONE:
            self._queue.put(_DONE)
            raise StopIteration
        msg: Message = item
        return msg

    def get(self, timeout: float | None = None) -> Message:
        """The next message.

        Raises:
            KernelTimeout: none arrived within ``timeout`` seconds.
            ClientClosed: the stream or its client is closed.
        """
        try:
            item = self._queue.get(timeout=timeout)
        except queue.Empty:
            raise KernelTimeout(f"no IOPub message within {timeout} s") from None
        if item is _DONE:
            self._queue.put(_DONE)
            raise ClientClosed("the IOPub stream is closed")
        msg: Message = item
        return msg

    def close(self) -> None:
        """Stop collecting messages."""
        if not self._closed:
            self._closed = True
            self._client._call_quietly(self._remove)
            self._end()

    def __enter__(self) -> MessageStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class KernelClient:
    """Talks to one kernel, blocking, from one event-loop thread.

    Open with ``with KernelClient.from_connection_info(info) as kc:`` or ``start()``;
    ``close()`` ends it. Parameters as :class:`AsyncKernelClient`. Safe to use from
    several threads at once; not from inside a hook or callback on its loop thread.

    Threads: by default the client owns one loop thread, started by :meth:`start` and
    stopped by :meth:`close`. With ``loop_thread`` it runs on that (shared) thread
    instead: a :class:`~kernelkit.manager.KernelManager`'s clients share the manager's.
    A client holds a shared thread from :meth:`start` until :meth:`close`, so the thread
    outlives its owner's ``close`` until then.
    """

    def __init__(
        self,
        transport: Transport,
        *,
        kernel_name: str = "",
        heartbeat: bool = True,
        heartbeat_interval: float = 0.5,
        heartbeat_timeout: float = 1.0,
        first_contact_timeout: float | None = DEFAULT_FIRST_CONTACT_TIMEOUT,
        loop_thread: LoopThread | None = None,
    ) -> None:
        client = AsyncKernelClient(
            transport,
            kernel_name=kernel_name,
            heartbeat=heartbeat,
            heartbeat_interval=heartbeat_interval,
            heartbeat_timeout=heartbeat_timeout,
            first_contact_timeout=first_contact_timeout,
        )
        self._setup(client, loop_thread)

    def _setup(self, client: AsyncKernelClient, loop_thread: LoopThread | None) -> None:
        self._client = client
        self._owns_thread = loop_thread is None
        self._thread = (
            loop_thread
            if loop_thread is not None
            else LoopThread(
                f"kernelkit-client-{client.kernel_name}",
                owner=f"the client for kernel {client.kernel_name}",
                error=ClientClosed,
            )
        )
        self._held = False  # holds the shared loop thread (from start until close)
        self._lock = threading.Lock()
        self._started = False
        self._closed = False
        # The coroutines this client runs on the loop (close() cancels what is left).
        self._tasks: set[asyncio.Task[Any]] = set()

    @classmethod
    def from_async_client(
        cls, client: AsyncKernelClient, *, loop_thread: LoopThread
    ) -> KernelClient:
        """The blocking face of ``client``, driven on ``loop_thread`` (shared, not owned).

        ``client`` may be started already, on that thread's loop: the blocking client is
        then started too (and holds the thread). :meth:`close` closes ``client``.

        Raises:
            ClientClosed: ``client`` runs on another loop, or the thread is closed.
        """
        self = cls.__new__(cls)
        self._setup(client, loop_thread)
        if client.started:
            if client._loop is not loop_thread.loop:
                raise ClientClosed(
                    f"the client for kernel {client.kernel_name} runs on another event loop "
                    f"than {loop_thread.name}'s"
                )
            self._hold()
            self._started = True
        return self

    def _hold(self) -> None:
        if not self._thread.hold():
            raise ClientClosed(
                f"the client for kernel {self.kernel_name} cannot start: its loop thread "
                f"{self._thread.name} is closed"
            )
        self._held = True

    @classmethod
    def from_connection_info(
        cls,
        info: ConnectionInfo,
        *,
        session: Session | None = None,
        heartbeat: bool = True,
        heartbeat_interval: float = 0.5,
        heartbeat_timeout: float = 1.0,
        first_contact_timeout: float | None = DEFAULT_FIRST_CONTACT_TIMEOUT,
        loop_thread: LoopThread | None = None,
    ) -> KernelClient:
        """A client for the kernel ``info`` describes, over ZeroMQ (not yet started)."""
        return cls(
            default_transport(info, session),
            kernel_name=info.kernel_name,
            heartbeat=heartbeat,
            heartbeat_interval=heartbeat_interval,
            heartbeat_timeout=heartbeat_timeout,
            first_contact_timeout=first_contact_timeout,
            loop_thread=loop_thread,
        )

    @classmethod
    def from_connection_file(
        cls,
        path: str | os.PathLike[str],
        *,
        check_mode: bool = True,
        heartbeat: bool = True,
        heartbeat_interval: float = 0.5,
        heartbeat_timeout: float = 1.0,
        first_contact_timeout: float | None = DEFAULT_FIRST_CONTACT_TIMEOUT,
        loop_thread: LoopThread | None = None,
    ) -> KernelClient:
        """A client for a running kernel, from its connection file (not yet started).

        ``check_mode`` refuses a file that others may read (it holds the key).

        Raises:
            ConnectionFileError: the file is missing, unreadable, incomplete or (with
                ``check_mode``) readable by others.
        """
        return cls.from_connection_info(
            read_connection_file(path, check_mode=check_mode),
            heartbeat=heartbeat,
            heartbeat_interval=heartbeat_interval,
            heartbeat_timeout=heartbeat_timeout,
            first_contact_timeout=first_contact_timeout,
            loop_thread=loop_thread,
        )

    # -- lifecycle -------------------------------------------------------------------

    @property
    def async_client(self) -> AsyncKernelClient:
        """The asyncio client this one drives (use it only on :attr:`loop`)."""
        return self._client

    @property
    def loop(self) -> asyncio.AbstractEventLoop | None:
        """The event loop of this client's thread (None when not started)."""
        return self._thread.loop if self._started else None

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def kernel_name(self) -> str:
        return self._client.kernel_name

    @property
    def loop_thread(self) -> LoopThread:
        """The loop thread this client runs on (its own, or a shared one)."""
        return self._thread

    def start(self) -> None:
        """Start the loop thread (if this client owns it) and connect. Does nothing if
        started.

        Raises:
            ClientClosed: the client was closed, or its shared loop thread is.
        """
        with self._lock:
            if self._closed:
                raise ClientClosed(f"the client for kernel {self.kernel_name} is closed")
            if self._started:
                return
            if not self._owns_thread:
                self._hold()
            self._thread.start()
            self._started = True
        try:
            self._run(self._client.start())
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        """Close the client: pending calls fail with ClientClosed. Stops the loop thread if
        the client owns it, else lets go of the shared one.

        On a shared loop thread (in a manager's callback, say) it returns at once and the
        closing finishes on the loop; on a thread of the client's own it is refused.
        """
        if self._thread.in_thread():
            if self._owns_thread:
                raise KernelError("KernelClient.close() called from its own loop thread (a hook)")
            self._close_on_loop()
            return
        with self._lock:
            if self._closed:
                return
            self._closed = True
            started = self._started
        try:
            if started:
                self._thread.run(self._shut_down())
        finally:
            self._let_go()

    def _close_on_loop(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            started = self._started
        if not started:
            self._let_go()
            return
        task = asyncio.get_running_loop().create_task(self._shut_down())
        task.add_done_callback(lambda _: self._let_go())

    def _let_go(self) -> None:
        """Stop the thread this client owns, or release the shared one."""
        if self._owns_thread:
            self._thread.close()
        elif self._held:
            self._held = False
            self._thread.release()

    async def _shut_down(self) -> None:
        """Close the async client, then end what this client still runs on the loop."""
        await self._client.aclose()
        await asyncio.sleep(0)  # let the requests aclose failed take their ClientClosed
        tasks = [t for t in self._tasks if not t.done()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _tracked(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` as one of this client's tasks (close() cancels it if still running)."""
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            return await coro
        finally:
            self._tasks.discard(task)

    def __enter__(self) -> KernelClient:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def notify_dead(self, error: KernelError) -> None:
        """See :meth:`AsyncKernelClient.notify_dead` (safe from any thread; does nothing
        once the client is closed)."""
        if not self._closed:
            self._client.notify_dead(error)

    def notify_restarted(self, info: ConnectionInfo | None = None) -> None:
        """See :meth:`AsyncKernelClient.notify_restarted` (safe from any thread; does
        nothing once the client is closed)."""
        if not self._closed:
            self._client.notify_restarted(info)

    def _loop_or_raise(self) -> asyncio.AbstractEventLoop:
        loop = self._thread.loop
        if loop is None or not self._started or self._closed:
            raise ClientClosed(
                f"the client for kernel {self.kernel_name} is "
                + ("closed" if self._closed else "not started: use `with` or start() first")
            )
        if self._thread.in_thread():
            raise KernelError(
                "a blocking KernelClient method was called from the client's own loop thread "
                "(inside an IOPub handler?): that would wait forever; use async_client there"
            )
        return loop

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        try:
            self._loop_or_raise()
        except BaseException:
            coro.close()
            raise
        try:
            return self._thread.run(self._tracked(coro))
        except CancelledError:
            if self._closed:  # cancelled by close() from another thread
                raise ClientClosed(f"the client for kernel {self.kernel_name} was closed") from None
            raise

    def _request(
        self,
        channel: str,
        msg_type: str,
        content: Mapping[str, Any],
        *,
        timeout: float | None,
        subshell_id: str | None = None,
        outputs: list[Message] | None = None,
    ) -> Message:
        """Send one request from the loop thread and wait here for its reply.

        No coroutine and no task: a plain callback on the loop starts the request, and
        the reply's waiter hands its outcome straight to this thread (one lock release).
        """
        loop = self._loop_or_raise()
        client = self._client
        name = self.kernel_name
        result = _Outcome()
        started: list[TrackedRequest[Any]] = []

        def start() -> None:
            try:
                tracked = client._send(
                    channel,
                    msg_type,
                    content,
                    timeout=timeout,
                    subshell_id=subshell_id,
                    wait_idle=outputs is not None,
                    outputs=outputs,
                )
            except BaseException as exc:
                result.set(None, exc)
                return
            started.append(tracked)
            tracked.context.on_done = partial(result.copy_from, name)

        def give_up() -> None:  # runs after start(): call_soon_threadsafe keeps order
            for tracked in started:
                client._abort(tracked, ClientClosed("the caller stopped waiting"))

        _call_soon(loop, start, name)
        try:
            reply: Message = result.wait()
            return reply
        except BaseException:
            if not result.done:  # e.g. KeyboardInterrupt while waiting
                with contextlib.suppress(ClientClosed):
                    _call_soon(loop, give_up, name)
            raise

    def _call_quietly(self, fn: Callable[[], None]) -> None:
        """Run ``fn`` on the loop thread soon, if the loop still runs (else: no need)."""
        loop = self._thread.loop
        if loop is not None:
            with contextlib.suppress(RuntimeError):  # closed: nothing left to undo
                loop.call_soon_threadsafe(fn)

    def _call(self, fn: Callable[..., T], *args: Any) -> T:
        """Run a plain function on the loop thread and return its result."""
        self._loop_or_raise()
        return self._thread.call(fn, *args)

    # -- state -----------------------------------------------------------------------

    @property
    def kernel_info_reply(self) -> Message | None:
        """The last ``kernel_info_reply`` received (None before the first)."""
        return self._client.kernel_info_reply

    @property
    def execution_state(self) -> str | None:
        """The kernel's last reported ``execution_state``."""
        return self._client.execution_state

    # -- requests --------------------------------------------------------------------

    def wait_for_ready(self, timeout: float | None = 60.0) -> Message:
        """See :meth:`AsyncKernelClient.wait_for_ready`."""
        return self._run(self._client.wait_for_ready(timeout))

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
        content = execute_content(
            code,
            silent=silent,
            store_history=store_history,
            user_expressions=user_expressions,
            allow_stdin=allow_stdin,
            stop_on_error=stop_on_error,
        )
        # The loop thread fills its own list; the caller's is extended once it is done.
        collected: list[Message] | None = [] if outputs is not None else None
        reply = self._request(
            "shell",
            "execute_request",
            content,
            timeout=timeout,
            subshell_id=subshell_id,
            outputs=collected,
        )
        if outputs is not None and collected is not None:
            outputs.extend(collected)
        if raise_on_error:
            raise_for_execute_error(reply)
        return reply

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
        if allow_stdin is None:
            allow_stdin = stdin_hook is not None or _stdin_is_terminal()
        show = output_hook if output_hook is not None else print_output
        answer = stdin_hook if stdin_hook is not None else read_input
        content = execute_content(
            code,
            silent=silent,
            store_history=store_history,
            user_expressions=user_expressions,
            allow_stdin=allow_stdin,
            stop_on_error=stop_on_error,
        )
        loop = self._loop_or_raise()
        client = self._client
        name = self.kernel_name
        inbox = _Mailbox(loop)
        started: list[TrackedRequest[Any]] = []

        # As _request: a plain callback starts it on the loop, no task. The loop thread
        # puts the request's IOPub messages, its input requests and at last its outcome
        # into the mailbox; this thread shows, answers and returns them in order.
        def start() -> None:
            try:
                tracked = client._send(
                    "shell",
                    "execute_request",
                    content,
                    timeout=timeout,
                    subshell_id=subshell_id,
                    wait_idle=True,
                    hook=inbox.put,
                    on_input=partial(_ask_for_input, inbox),
                )
            except BaseException as exc:
                failed = _Outcome()
                failed.set(None, exc)
                inbox.put(failed)
                return
            started.append(tracked)
            tracked.context.on_done = partial(_post_outcome, inbox, name)

        def give_up() -> None:  # runs after start(): call_soon_threadsafe keeps order
            for tracked in started:
                client._abort(tracked, ClientClosed("the caller stopped waiting"))

        _call_soon(loop, start, name)
        try:
            for item in inbox:
                if isinstance(item, _Outcome):
                    reply: Message = item.wait()
                    return reply
                if isinstance(item, _InputRequest):
                    request = item.request
                    try:
                        value = answer(request)
                    except BaseException:
                        self.input("", parent=request)  # never leave the kernel waiting
                        raise
                    if value is not None:
                        self.input(value, parent=request)
                else:
                    show(item)
        except BaseException:
            with contextlib.suppress(ClientClosed):  # stop the request if it still runs
                _call_soon(loop, give_up, name)
            raise
        raise AssertionError("unreachable: the mailbox ends with the outcome")  # pragma: no cover

    def kernel_info(
        self, *, timeout: float | None = None, subshell_id: str | None = None
    ) -> Message:
        """See :meth:`AsyncKernelClient.kernel_info`."""
        return self._request(
            "shell", "kernel_info_request", {}, timeout=timeout, subshell_id=subshell_id
        )

    def complete(
        self,
        code: str,
        cursor_pos: int | None = None,
        *,
        timeout: float | None = None,
        subshell_id: str | None = None,
    ) -> Message:
        """See :meth:`AsyncKernelClient.complete`."""
        return self._request(
            "shell",
            "complete_request",
            complete_content(code, cursor_pos),
            timeout=timeout,
            subshell_id=subshell_id,
        )

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
        return self._request(
            "shell",
            "inspect_request",
            inspect_content(code, cursor_pos, detail_level),
            timeout=timeout,
            subshell_id=subshell_id,
        )

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
        content = history_content(
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
        return self._request(
            "shell", "history_request", content, timeout=timeout, subshell_id=subshell_id
        )

    def is_complete(
        self, code: str, *, timeout: float | None = None, subshell_id: str | None = None
    ) -> Message:
        """See :meth:`AsyncKernelClient.is_complete`."""
        return self._request(
            "shell",
            "is_complete_request",
            {"code": code},
            timeout=timeout,
            subshell_id=subshell_id,
        )

    def comm_info(
        self,
        target_name: str | None = None,
        *,
        timeout: float | None = None,
        subshell_id: str | None = None,
    ) -> Message:
        """See :meth:`AsyncKernelClient.comm_info`."""
        content = {} if target_name is None else {"target_name": target_name}
        return self._request(
            "shell", "comm_info_request", content, timeout=timeout, subshell_id=subshell_id
        )

    def input(self, value: str, *, parent: Message | None = None) -> None:
        """See :meth:`AsyncKernelClient.input`."""
        self._run(self._client.input(value, parent=parent))

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
        return self._run(
            self._client.comm_open(
                target_name,
                data,
                comm_id=comm_id,
                metadata=metadata,
                buffers=buffers,
                subshell_id=subshell_id,
            )
        )

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
        return self._run(
            self._client.comm_msg(
                comm_id, data, metadata=metadata, buffers=buffers, subshell_id=subshell_id
            )
        )

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
        return self._run(
            self._client.comm_close(
                comm_id, data, metadata=metadata, buffers=buffers, subshell_id=subshell_id
            )
        )

    def shutdown(self, restart: bool = False, *, timeout: float | None = None) -> Message:
        """See :meth:`AsyncKernelClient.shutdown`."""
        return self._request("control", "shutdown_request", {"restart": restart}, timeout=timeout)

    def interrupt(self, *, timeout: float | None = None) -> Message:
        """See :meth:`AsyncKernelClient.interrupt`."""
        return self._request("control", "interrupt_request", {}, timeout=timeout)

    def supports(self, feature: str, *, timeout: float | None = None) -> bool:
        """See :meth:`AsyncKernelClient.supports`."""
        return self._run(self._client.supports(feature, timeout=timeout))

    def create_subshell(self, *, timeout: float | None = 30.0) -> Subshell:
        """See :meth:`AsyncKernelClient.create_subshell`."""
        return Subshell(self, self._run(self._client.create_subshell(timeout=timeout)))

    def list_subshells(self, *, timeout: float | None = 30.0) -> list[str]:
        """See :meth:`AsyncKernelClient.list_subshells`."""
        return self._run(self._client.list_subshells(timeout=timeout))

    def delete_subshell(self, subshell_id: str, *, timeout: float | None = 30.0) -> None:
        """See :meth:`AsyncKernelClient.delete_subshell`."""
        self._run(self._client.delete_subshell(subshell_id, timeout=timeout))

    def add_iopub_handler(self, handler: Callable[[Message], None]) -> Callable[[], None]:
        """See :meth:`AsyncKernelClient.add_iopub_handler`; ``handler`` runs on the loop thread.

        Returns a function (callable from any thread) that removes it.
        """
        remove = self._call(self._client.add_iopub_handler, handler)
        return partial(self._call_quietly, remove)

    def iopub_messages(self) -> MessageStream:
        """Every IOPub message from now on, as a blocking iterator (close it when done)."""
        return MessageStream(self)

    def __repr__(self) -> str:
        return f"<KernelClient {self._client!r}>"


class _Outcome:
    """One result or error, handed from the loop thread to a waiting thread.

    A plain lock released once, not a concurrent.futures.Future: the waiting thread
    wakes with one futex, without a Condition's bookkeeping on either side.
    """

    __slots__ = ("_lock", "done", "error", "value")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._lock.acquire()
        self.value: Any = None
        self.error: BaseException | None = None
        self.done = False

    def set(self, value: Any, error: BaseException | None) -> None:  # loop thread, once
        if self.done:
            return
        self.value = value
        self.error = error
        self.done = True
        self._lock.release()

    def copy_from(self, kernel: str, future: asyncio.Future[Message]) -> None:
        """Take an asyncio future's outcome (a waiter's ``on_done``, on the loop thread)."""
        if future.cancelled():
            self.set(None, ClientClosed(f"the client for kernel {kernel} was closed"))
        elif (error := future.exception()) is not None:
            self.set(None, error)
        else:
            self.set(future.result(), None)

    def wait(self) -> Any:
        """The value (raises the error); blocks until there is one."""
        if not self.done:
            self._lock.acquire()
        if self.error is not None:
            raise self.error
        return self.value


class _InputRequest:
    """An ``input_request`` for the calling thread to answer (in a mailbox)."""

    __slots__ = ("request",)

    def __init__(self, request: Message) -> None:
        self.request = request


class _Mailbox:
    """From the loop thread to the calling thread, in order; ends with an _Outcome.

    The reader is woken once per turn of the loop, after the transport has read
    everything that was waiting, not once per message: an IOPub flood crosses threads
    in batches, with one wake-up (and one GIL hand-over) per batch. The wake-up is a
    lock used as a binary semaphore: held while the reader may sleep, released by the
    loop thread once per batch.
    """

    __slots__ = ("_items", "_lock", "_loop", "_scheduled", "_signalled")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._items: deque[Any] = deque()
        self._lock = threading.Lock()
        self._lock.acquire()
        self._signalled = False  # False only while the reader holds the lock
        self._loop = loop
        self._scheduled = False

    def put(self, item: Any) -> None:  # loop thread
        self._items.append(item)
        if not self._scheduled:
            self._scheduled = True
            self._loop.call_soon(self._wake)

    def _wake(self) -> None:  # loop thread, after the current batch
        self._scheduled = False
        if not self._signalled:
            self._signalled = True
            self._lock.release()

    def __iter__(self) -> Iterator[Any]:  # calling thread; ends after an _Outcome
        items = self._items
        lock = self._lock
        while True:
            lock.acquire()
            self._signalled = False
            while items:
                item = items.popleft()
                yield item
                if isinstance(item, _Outcome):
                    return


def _call_soon(loop: asyncio.AbstractEventLoop, fn: Callable[[], None], kernel: str) -> None:
    try:
        loop.call_soon_threadsafe(fn)
    except RuntimeError:  # the loop closed under us (close() in another thread)
        raise ClientClosed(f"the client for kernel {kernel} was closed") from None


def _post_outcome(inbox: _Mailbox, kernel: str, future: asyncio.Future[Message]) -> None:
    """A request's waiter is done: its outcome goes last into the mailbox."""
    outcome = _Outcome()
    outcome.copy_from(kernel, future)
    inbox.put(outcome)


def _ask_for_input(inbox: _Mailbox, request: Message) -> None:
    # The async client calls this on the loop; the calling thread answers the request.
    inbox.put(_InputRequest(request))


class Subshell:
    """A subshell (JEP 91), blocking: see :class:`AsyncSubshell`. ``close()`` deletes it."""

    __slots__ = ("_async", "_client")

    def __init__(self, client: KernelClient, subshell: AsyncSubshell) -> None:
        self._client = client
        self._async = subshell

    def __repr__(self) -> str:
        return f"<Subshell {self._async.subshell_id} of {self._client!r}>"

    @property
    def subshell_id(self) -> str:
        return self._async.subshell_id

    @property
    def closed(self) -> bool:
        return self._async.closed

    def close(self, *, timeout: float | None = 30.0) -> None:
        """Delete the subshell in the kernel."""
        if self._async.closed:
            return
        if self._client.closed:
            self._async._closed = True
            return
        self._client._run(self._async.aclose(timeout=timeout))

    def __enter__(self) -> Subshell:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

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
    ) -> Message:
        """:meth:`KernelClient.execute` on this subshell."""
        return self._client.execute(
            code,
            silent=silent,
            store_history=store_history,
            user_expressions=user_expressions,
            allow_stdin=allow_stdin,
            stop_on_error=stop_on_error,
            outputs=outputs,
            raise_on_error=raise_on_error,
            timeout=timeout,
            subshell_id=self._async._id(),
        )

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
    ) -> Message:
        """:meth:`KernelClient.execute_interactive` on this subshell."""
        return self._client.execute_interactive(
            code,
            silent=silent,
            store_history=store_history,
            user_expressions=user_expressions,
            allow_stdin=allow_stdin,
            stop_on_error=stop_on_error,
            output_hook=output_hook,
            stdin_hook=stdin_hook,
            timeout=timeout,
            subshell_id=self._async._id(),
        )

    def kernel_info(self, *, timeout: float | None = None) -> Message:
        """:meth:`KernelClient.kernel_info` on this subshell."""
        return self._client.kernel_info(timeout=timeout, subshell_id=self._async._id())

    def complete(
        self, code: str, cursor_pos: int | None = None, *, timeout: float | None = None
    ) -> Message:
        """:meth:`KernelClient.complete` on this subshell."""
        return self._client.complete(
            code, cursor_pos, timeout=timeout, subshell_id=self._async._id()
        )

    def inspect(
        self,
        code: str,
        cursor_pos: int | None = None,
        detail_level: int = 0,
        *,
        timeout: float | None = None,
    ) -> Message:
        """:meth:`KernelClient.inspect` on this subshell."""
        return self._client.inspect(
            code, cursor_pos, detail_level, timeout=timeout, subshell_id=self._async._id()
        )

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
    ) -> Message:
        """:meth:`KernelClient.history` on this subshell."""
        return self._client.history(
            raw=raw,
            output=output,
            hist_access_type=hist_access_type,
            session=session,
            start=start,
            stop=stop,
            n=n,
            pattern=pattern,
            unique=unique,
            timeout=timeout,
            subshell_id=self._async._id(),
        )

    def is_complete(self, code: str, *, timeout: float | None = None) -> Message:
        """:meth:`KernelClient.is_complete` on this subshell."""
        return self._client.is_complete(code, timeout=timeout, subshell_id=self._async._id())

    def comm_info(self, target_name: str | None = None, *, timeout: float | None = None) -> Message:
        """:meth:`KernelClient.comm_info` on this subshell."""
        return self._client.comm_info(target_name, timeout=timeout, subshell_id=self._async._id())
