"""The asyncio kernel client: requests, replies, outputs, stdin, heartbeat, subshells.

One :class:`AsyncKernelClient` talks to one kernel through one :class:`Transport`. Every
request is registered with a :class:`~kernelkit.protocol.RequestTracker` before it is
sent; the transport pushes each received message into :meth:`message_received`, which
asks the tracker whose it is and wakes that request's waiter directly (no task per
message). Many requests may be in flight at once, and many clients may share a loop.

Failure is prompt: a dead kernel (``notify_dead``, from whoever watches its process), a
heartbeat that stops answering, a lost transport or ``aclose`` fails every pending
request at once, whatever its timeout, including ``timeout=None``.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import math
import os
import sys
import threading
from collections.abc import Awaitable, Callable, Mapping
from types import TracebackType
from typing import Any

from kernelkit._connection import ConnectionInfo, read_connection_file
from kernelkit._errors import (
    ClientClosed,
    HeartbeatTimeout,
    KernelError,
    KernelTimeout,
    RemoteProtocolError,
    UnsupportedFeature,
)
from kernelkit.client._requests import (
    check_reply,
    complete_content,
    execute_content,
    history_content,
    inspect_content,
    print_output,
    raise_for_execute_error,
    read_input,
)
from kernelkit.protocol import (
    InputRequested,
    Message,
    OutputReceived,
    ReplyReceived,
    RequestTracker,
    Session,
    StatusChanged,
    TrackedRequest,
)
from kernelkit.transport import Transport, ZMQTransport

__all__ = [
    "DEFAULT_FIRST_CONTACT_TIMEOUT",
    "SUBSHELLS_FEATURE",
    "AsyncKernelClient",
    "AsyncMessageStream",
    "AsyncSubshell",
    "OutputHook",
    "StdinHook",
]

log = logging.getLogger("kernelkit.client")

#: The ``supported_features`` entry of kernels that implement JEP 91 subshells.
SUBSHELLS_FEATURE = "kernel subshells"

#: Called with each IOPub message of a request (status and execute_input included).
OutputHook = Callable[[Message], None]
#: Called with an ``input_request``; returns the text to send (or None when it has
#: answered itself with ``client.input``). May be a coroutine function.
StdinHook = Callable[[Message], "str | Awaitable[str | None] | None"]

_END = object()

#: How long a kernel that never answered may take to answer (see AsyncKernelClient).
DEFAULT_FIRST_CONTACT_TIMEOUT = 10.0


def default_transport(info: ConnectionInfo, session: Session | None = None) -> Transport:
    """The transport ``from_connection_info`` uses: ZeroMQ, with a fresh identity."""
    return ZMQTransport(info, session)


class _Waiter:
    """What one in-flight request waits for, kept as its tracker context."""

    __slots__ = ("future", "hook", "on_done", "on_input", "outputs", "timer", "wait_idle")

    def __init__(
        self,
        future: asyncio.Future[Message],
        *,
        wait_idle: bool,
        outputs: list[Message] | None,
        hook: OutputHook | None,
        on_input: Callable[[Message], None] | None,
    ) -> None:
        self.future = future
        self.wait_idle = wait_idle
        self.outputs = outputs
        self.hook = hook
        self.on_input = on_input
        self.timer: asyncio.TimerHandle | None = None
        #: Called at once when the future gets its outcome (the blocking face hands the
        #: outcome to its calling thread without waiting for the next loop turn).
        self.on_done: Callable[[asyncio.Future[Message]], None] | None = None

    def resolve(self, reply: Message) -> None:
        future = self.future
        if not future.done():
            future.set_result(reply)
            if self.on_done is not None:
                self.on_done(future)

    def fail(self, error: BaseException) -> None:
        future = self.future
        if not future.done():
            future.set_exception(error)
            if self.on_done is not None:
                self.on_done(future)


class AsyncMessageStream:
    """Every IOPub message this client receives from now on, as an async iterator.

    Use as ``async with client.iopub_messages() as stream: async for msg in stream``;
    it ends when the client closes. Unbounded: close it when you stop reading.
    """

    __slots__ = ("_queue", "_remove")

    def __init__(self, client: AsyncKernelClient) -> None:
        self._queue: asyncio.Queue[Any] = asyncio.Queue()
        self._remove = client._subscribe(self._queue.put_nowait, self._end)

    def _end(self) -> None:
        self._queue.put_nowait(_END)

    def __aiter__(self) -> AsyncMessageStream:
        return self

    async def __anext__(self) -> Message:
        item = await self._queue.get()
        if item is _END:
            self._queue.put_nowait(_END)  # stay ended for later readers
            raise StopAsyncIteration
        msg: Message = item
        return msg

    async def get(self, timeout: float | None = None) -> Message:
        """The next message.

        Raises:
            KernelTimeout: none arrived within ``timeout`` seconds.
            ClientClosed: the stream or its client is closed.
        """
        try:
            return await asyncio.wait_for(self.__anext__(), timeout)
        except StopAsyncIteration:
            raise ClientClosed("the IOPub stream is closed") from None
        except asyncio.TimeoutError:
            raise KernelTimeout(f"no IOPub message within {timeout} s") from None

    def close(self) -> None:
        """Stop collecting messages."""
        self._remove()
        self._end()

    async def __aenter__(self) -> AsyncMessageStream:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()


class AsyncKernelClient:
    """Talks to one kernel over ``transport`` (asyncio).

    Open with ``async with client:`` or ``await client.start()``; close with ``aclose``.

    ``heartbeat`` (on by default, when the transport supports it) pings the kernel every
    ``heartbeat_interval`` seconds; once it has answered at least once, a ping left
    unanswered for ``heartbeat_timeout`` seconds fails every pending request with
    :class:`HeartbeatTimeout`, and new requests fail at once until it answers again.
    With the defaults a dead or hung kernel is noticed within 1.5 s.

    A kernel that has never answered (a heartbeat or any message) may still be starting,
    or may not be there at all (a stale connection file). ``first_contact_timeout``
    (seconds, default 10; None: no limit) bounds that: past it, pending and new requests
    fail with :class:`HeartbeatTimeout` saying the kernel never answered, until it does.
    While :meth:`wait_for_ready` runs, its own timeout is the limit instead. Without a
    heartbeat nothing watches the kernel's life (nor its first contact).
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
    ) -> None:
        if heartbeat_interval <= 0 or heartbeat_timeout <= 0:
            raise ValueError("heartbeat_interval and heartbeat_timeout must be positive")
        if first_contact_timeout is not None and first_contact_timeout <= 0:
            raise ValueError("first_contact_timeout must be positive seconds (or None)")
        self._transport = transport
        self._session = transport.session
        self._kernel_name = kernel_name or "(unnamed)"
        self._heartbeat = heartbeat and transport.supports_heartbeat
        self._hb_interval = heartbeat_interval
        self._hb_timeout = heartbeat_timeout
        self._tracker: RequestTracker[_Waiter] = RequestTracker()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: int | None = None
        self._hb_task: asyncio.Task[None] | None = None
        self._iopub_seen: asyncio.Event | None = None
        self._closed = False
        self._dead: KernelError | None = None
        self._hb_error: HeartbeatTimeout | None = None
        self._hb_answered = False  # the kernel has answered a heartbeat (since its start)
        # First contact: a kernel that never answered (since start or restart).
        self._first_contact_timeout = first_contact_timeout
        self._contact_since = 0.0  # loop time the wait for first contact began
        self._contact_mark = 0  # _heard then: any message since is contact
        self._ready_deadlines: list[float] = []  # of the wait_for_ready calls running
        self._never_answered: HeartbeatTimeout | None = None
        self._kernel_info: Message | None = None
        self._input_request: Message | None = None
        # A tuple, replaced on change: the receive path iterates it without a copy, and
        # a handler that unsubscribes while being called does not disturb the others.
        self._iopub_handlers: tuple[Callable[[Message], None], ...] = ()
        self._on_close: list[Callable[[], None]] = []  # ends the IOPub streams
        self._input_tasks: set[asyncio.Task[None]] = set()
        self._rejected = 0
        self._heard = 0  # messages received: traffic proves the kernel alive too

    # -- construction ----------------------------------------------------------------

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
    ) -> AsyncKernelClient:
        """A client for the kernel ``info`` describes, over ZeroMQ (not yet started)."""
        return cls(
            default_transport(info, session),
            kernel_name=info.kernel_name,
            heartbeat=heartbeat,
            heartbeat_interval=heartbeat_interval,
            heartbeat_timeout=heartbeat_timeout,
            first_contact_timeout=first_contact_timeout,
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
    ) -> AsyncKernelClient:
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
        )

    # -- lifecycle -------------------------------------------------------------------

    @property
    def transport(self) -> Transport:
        return self._transport

    @property
    def session(self) -> Session:
        return self._session

    @property
    def kernel_name(self) -> str:
        return self._kernel_name

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def started(self) -> bool:
        return self._loop is not None

    async def start(self) -> None:
        """Connect the transport and start the heartbeat. Does nothing if started.

        Raises:
            ClientClosed: the client was closed.
        """
        if self._closed:
            raise ClientClosed(f"the client for kernel {self._kernel_name} is closed")
        if self._loop is not None:
            return
        loop = asyncio.get_running_loop()
        self._iopub_seen = asyncio.Event()
        await self._transport.connect(self)
        self._loop = loop
        self._loop_thread = threading.get_ident()
        self._contact_since = loop.time()
        if self._heartbeat:
            self._hb_task = loop.create_task(self._run_heartbeat())

    async def aclose(self) -> None:
        """Close the transport; pending requests fail with :class:`ClientClosed`."""
        if self._closed:
            return
        self._closed = True
        self._fail_all(ClientClosed(f"the client for kernel {self._kernel_name} was closed"))
        if self._hb_task is not None:
            self._hb_task.cancel()
            await asyncio.wait([self._hb_task])  # let it finish; its cancellation is expected
        for task in list(self._input_tasks):
            task.cancel()
        ends, self._on_close = self._on_close, []
        for end in ends:
            end()
        await self._transport.aclose()

    async def __aenter__(self) -> AsyncKernelClient:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def notify_dead(self, error: KernelError) -> None:
        """The kernel is gone: fail every pending and future request with ``error``.

        Called by whoever watches the kernel's process (a manager), with an error such
        as :class:`KernelDied` carrying the exit code and last output. Safe to call from
        any thread; does nothing once the client is closed.
        """
        if self._closed:
            return
        loop = self._loop
        if loop is not None and threading.get_ident() != self._loop_thread:
            try:
                loop.call_soon_threadsafe(self._mark_dead, error)
            except RuntimeError:  # its loop is closed: nothing is pending any more
                if self._dead is None:
                    self._dead = error
        else:
            self._mark_dead(error)

    def notify_restarted(self, info: ConnectionInfo | None = None) -> None:
        """The kernel was restarted: accept requests again.

        ``info`` is where the new kernel listens, when that may have changed (a restart
        that found its old ports taken): the transport then reconnects to it, keeping its
        identity. Clears what :meth:`notify_dead` and the heartbeat recorded; requests
        still pending belonged to the old kernel and fail with :class:`KernelError`. Call
        :meth:`wait_for_ready` before relying on IOPub. If the transport cannot follow
        (another key), every request fails with that error. Safe to call from any thread;
        does nothing once the client is closed.
        """
        if self._closed:
            return
        loop = self._loop
        if loop is not None and threading.get_ident() != self._loop_thread:
            with contextlib.suppress(RuntimeError):  # its loop is closed: nothing to clear
                loop.call_soon_threadsafe(self._mark_restarted, info)
        else:
            self._mark_restarted(info)

    async def _run_heartbeat(self) -> None:
        ping = self._transport.ping
        interval = self._hb_interval
        timeout = self._hb_timeout
        while not self._closed:
            heard = self._heard
            try:
                alive = await ping(timeout)
            except ClientClosed:
                return
            if self._closed:
                return
            if alive:
                self._hb_answered = True
                self._hb_error = None  # a kernel that answers again is usable again
            elif self._heard != heard:
                # No echo, but the kernel kept sending (an output flood from a kernel
                # whose heartbeat shares its one thread): alive, only late.
                self._hb_error = None
            elif self._hb_error is None and self._dead is None:
                if self._hb_answered:
                    # It answered once and then stopped: dead, hung or unreachable.
                    self._hb_error = HeartbeatTimeout(
                        f"kernel {self._kernel_name} did not answer its heartbeat within "
                        f"{timeout} s: it is dead, hung or unreachable"
                    )
                    self._fail_all(self._hb_error)
                elif self._first_contact_overdue():
                    # It never answered: until the limit it may still be starting.
                    self._hb_error = self._never_answered = HeartbeatTimeout(
                        f"kernel {self._kernel_name} never answered at "
                        f"{self._transport.heartbeat_url}: no heartbeat or message within "
                        f"{self._first_contact_timeout:g} s; is it running? Its connection "
                        "file may be stale (a kernel that is gone, or ports now unused)"
                    )
                    self._fail_all(self._hb_error)
            await asyncio.sleep(interval)  # the beat: one ping per interval

    def _first_contact_overdue(self) -> bool:
        """True once a kernel that never answered has had its time (see the class)."""
        limit = self._first_contact_timeout
        loop = self._loop
        if limit is None or loop is None or self._heard != self._contact_mark:
            return False
        deadline = self._contact_since + limit
        if self._ready_deadlines:
            deadline = max(deadline, *self._ready_deadlines)
        return loop.time() >= deadline

    def _mark_dead(self, error: KernelError) -> None:
        if self._closed:
            return  # scheduled before aclose: its requests failed with ClientClosed already
        if self._dead is None:
            self._dead = error
        self._fail_all(error)

    def _mark_restarted(self, info: ConnectionInfo | None = None) -> None:
        if self._closed:
            return
        self._fail_all(KernelError(f"kernel {self._kernel_name} was restarted"))
        self._dead = None
        self._hb_error = None
        self._hb_answered = False  # the new kernel is starting: give it its first answer
        self._contact_mark = self._heard
        if self._loop is not None:
            self._contact_since = self._loop.time()
        self._kernel_info = None
        if self._iopub_seen is not None:
            self._iopub_seen.clear()
        if info is not None:
            try:
                self._transport.reconnect(info)
            except KernelError as exc:
                self._dead = exc
                log.warning("kernel %s: %s", self._kernel_name, exc)

    def _fail_all(self, error: BaseException) -> None:
        for request in self._tracker.forget_all():
            waiter = request.context
            if waiter.timer is not None:
                waiter.timer.cancel()
            waiter.fail(error)

    def _check_usable(self) -> asyncio.AbstractEventLoop:
        loop = self._loop
        if self._closed:
            raise ClientClosed(f"the client for kernel {self._kernel_name} is closed")
        if loop is None:
            raise ClientClosed(
                f"the client for kernel {self._kernel_name} is not started: use "
                "`async with client:` or `await client.start()` first"
            )
        if self._dead is not None:
            raise self._dead
        if self._hb_error is not None:
            raise self._hb_error
        return loop

    # -- state -----------------------------------------------------------------------

    @property
    def kernel_info_reply(self) -> Message | None:
        """The last ``kernel_info_reply`` received (None before the first)."""
        return self._kernel_info

    @property
    def execution_state(self) -> str | None:
        """The kernel's last reported ``execution_state`` (busy, idle, starting, ...)."""
        return self._tracker.kernel_execution_state

    @property
    def pending_requests(self) -> int:
        """How many requests are in flight."""
        return len(self._tracker)

    @property
    def rejected_messages(self) -> int:
        """How many received messages failed verification and were dropped."""
        return self._rejected

    # -- receiving (the transport's Receiver) ----------------------------------------

    def message_received(self, channel: str, message: Message) -> None:
        self._heard += 1
        if channel == "iopub":
            seen = self._iopub_seen
            if seen is not None and not seen.is_set():
                seen.set()
            for handler in self._iopub_handlers:
                try:
                    handler(message)
                except Exception:
                    log.exception("an IOPub handler of kernel %s failed", self._kernel_name)
        event = self._tracker.receive(channel, message)
        if isinstance(event, OutputReceived):
            waiter = event.request.context
            if waiter.outputs is not None:
                waiter.outputs.append(message)
            if waiter.hook is not None:
                self._call_hook(event.request, message)
        elif isinstance(event, StatusChanged):
            request = event.request
            waiter = request.context
            if waiter.hook is not None:
                self._call_hook(request, message)
            if event.complete and waiter.wait_idle:
                reply = request.reply
                assert reply is not None  # complete: reply and idle
                self._settle(request, reply)
        elif isinstance(event, ReplyReceived):
            if message.header.msg_type == "kernel_info_reply":
                self._kernel_info = message
            request = event.request
            if event.complete or not request.context.wait_idle:
                self._settle(request, message)
        elif isinstance(event, InputRequested):
            self._input_request = message
            waiter = event.request.context
            if waiter.on_input is not None:
                waiter.on_input(message)
            else:
                log.warning(
                    "kernel %s asks for input (%r) but the request has no stdin hook; "
                    "answer with client.input()",
                    self._kernel_name,
                    message.content.get("prompt", ""),
                )
        elif channel == "stdin" and message.header.msg_type == "input_request":
            self._input_request = message
        elif message.header.msg_type == "kernel_info_reply":
            self._kernel_info = message

    def _call_hook(self, request: TrackedRequest[_Waiter], message: Message) -> None:
        waiter = request.context
        hook = waiter.hook
        assert hook is not None
        try:
            hook(message)
        except Exception as exc:
            # The caller's hook failed: the call that passed it raises the error.
            waiter.hook = None
            self._abort(request, exc)

    def _settle(self, request: TrackedRequest[_Waiter], reply: Message) -> None:
        """The request got what it waited for: resolve it and stop tracking it."""
        self._finish(request)
        request.context.resolve(reply)

    def _abort(self, request: TrackedRequest[_Waiter], error: BaseException) -> None:
        """Fail the request with ``error`` and stop tracking it."""
        self._finish(request)
        request.context.fail(error)

    def _finish(self, request: TrackedRequest[_Waiter]) -> None:
        """Stop tracking a request and its timer (later messages for it are unmatched)."""
        timer = request.context.timer
        if timer is not None:
            timer.cancel()
        self._tracker.forget(request.msg_id)

    def message_rejected(self, channel: str, error: RemoteProtocolError) -> None:
        self._rejected += 1
        self._heard += 1
        if channel == "iopub":
            # Even a message we cannot accept proves the subscription delivers.
            seen = self._iopub_seen
            if seen is not None:
                seen.set()
        log.warning(
            "kernel %s: dropped a message on %s that failed verification: %s",
            self._kernel_name,
            channel,
            error,
        )

    def transport_lost(self, error: KernelError) -> None:
        self._mark_dead(error)

    # -- the request machinery -------------------------------------------------------

    def _send(
        self,
        channel: str,
        msg_type: str,
        content: Mapping[str, Any],
        *,
        timeout: float | None,
        subshell_id: str | None = None,
        wait_idle: bool = False,
        outputs: list[Message] | None = None,
        hook: OutputHook | None = None,
        on_input: Callable[[Message], None] | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> TrackedRequest[_Waiter]:
        """Track and send a request; its waiter's future resolves with the reply.

        Not a coroutine: the blocking face starts requests with it from a plain callback.
        """
        loop = self._check_usable()
        msg = self._session.msg(msg_type, content, subshell_id=subshell_id, metadata=metadata)
        waiter = _Waiter(
            loop.create_future(), wait_idle=wait_idle, outputs=outputs, hook=hook, on_input=on_input
        )
        tracked = self._tracker.track(msg, waiter, channel=channel)
        try:
            self._transport.send(channel, msg)
        except BaseException:
            self._tracker.forget(msg.header.msg_id)
            raise
        if timeout is not None:
            waiter.timer = loop.call_later(timeout, self._expire, tracked, timeout)
        return tracked

    async def _wait(self, tracked: TrackedRequest[_Waiter]) -> Message:
        try:
            return await tracked.context.future
        finally:
            self._finish(tracked)  # a no-op unless cancelled

    def _expire(self, tracked: TrackedRequest[_Waiter], timeout: float) -> None:
        what = (
            f"idle status for {tracked.msg_type} (the reply arrived)"
            if tracked.reply is not None
            else f"reply to {tracked.msg_type}"
        )
        where = f" on subshell {tracked.subshell_id}" if tracked.subshell_id else ""
        self._abort(
            tracked,
            KernelTimeout(f"kernel {self._kernel_name}: no {what}{where} within {timeout} s"),
        )

    async def _request(
        self,
        channel: str,
        msg_type: str,
        content: Mapping[str, Any],
        *,
        timeout: float | None,
        subshell_id: str | None = None,
    ) -> Message:
        tracked = self._send(channel, msg_type, content, timeout=timeout, subshell_id=subshell_id)
        return await self._wait(tracked)

    # -- readiness -------------------------------------------------------------------

    async def wait_for_ready(self, timeout: float | None = 60.0) -> Message:
        """Wait until the kernel answers ``kernel_info`` and IOPub delivers to this client.

        Returns the ``kernel_info_reply``. No fixed sleeps: it returns as soon as both
        the reply and a first IOPub message (welcome or status) have arrived.

        Raises:
            KernelTimeout: not ready within ``timeout`` seconds.
            KernelDied, HeartbeatTimeout: the kernel died meanwhile.
        """
        if self._hb_error is not None and self._hb_error is self._never_answered:
            # Its own timeout is the limit here: the kernel may be slow to start.
            self._hb_error = None
        loop = self._check_usable()
        deadline = None if timeout is None else loop.time() + timeout
        limit = math.inf if deadline is None else deadline
        self._ready_deadlines.append(limit)
        try:
            return await self._wait_for_ready(loop, timeout, deadline)
        finally:
            self._ready_deadlines.remove(limit)

    async def _wait_for_ready(
        self, loop: asyncio.AbstractEventLoop, timeout: float | None, deadline: float | None
    ) -> Message:
        seen = self._iopub_seen
        assert seen is not None

        async def ask(within: float | None) -> Message:
            try:
                return await self._request("shell", "kernel_info_request", {}, timeout=within)
            except KernelTimeout:
                raise KernelTimeout(
                    f"kernel {self._kernel_name} not ready within {timeout} s: no kernel_info_reply"
                ) from None

        # A request sent while the kernel's socket was going away (a restart) or not yet
        # bound can be lost without a trace: ask again every 1-2 s until the deadline,
        # accepting the first answer. Expired asks' late replies are ignored.
        resend = 1.0
        while True:
            remaining = None if deadline is None else deadline - loop.time()
            if remaining is not None and remaining <= resend:
                reply = await ask(max(remaining, 0.001))
                break
            try:
                reply = await self._request("shell", "kernel_info_request", {}, timeout=resend)
                break
            except KernelTimeout:
                resend = min(resend * 2, 2.0)
        pause = 0.05
        while not seen.is_set():
            remaining = None if deadline is None else deadline - loop.time()
            if remaining is not None and remaining <= 0:
                raise KernelTimeout(
                    f"kernel {self._kernel_name} not ready within {timeout} s: it answered "
                    "kernel_info but no IOPub message reached this client"
                )
            wait = pause if remaining is None else min(pause, remaining)
            try:
                await asyncio.wait_for(seen.wait(), wait)
            except asyncio.TimeoutError:
                # Nothing signals "subscription live": the status of the first request
                # may have been published before it was. Ask again so the kernel
                # publishes a fresh status; back off up to 1 s between asks.
                pause = min(pause * 2, 1.0)
                remaining = None if deadline is None else max(deadline - loop.time(), 0.001)
                reply = await ask(remaining)
        return reply

    # -- shell requests --------------------------------------------------------------

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
        content = execute_content(
            code,
            silent=silent,
            store_history=store_history,
            user_expressions=user_expressions,
            allow_stdin=allow_stdin,
            stop_on_error=stop_on_error,
        )
        tracked = self._send(
            "shell",
            "execute_request",
            content,
            timeout=timeout,
            subshell_id=subshell_id,
            wait_idle=outputs is not None,
            outputs=outputs,
        )
        reply = await self._wait(tracked)
        if raise_on_error:
            raise_for_execute_error(reply)
        return reply

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
        terminal, in a worker thread). ``allow_stdin`` defaults to True when a
        ``stdin_hook`` is given or stdin is a terminal. Returns once the reply and the
        idle status have both arrived.

        Raises:
            KernelTimeout: not finished within ``timeout`` seconds.
            KernelDied, HeartbeatTimeout, ClientClosed: the kernel or client is gone.
            Exception: whatever ``output_hook`` or ``stdin_hook`` raised.
        """
        if allow_stdin is None:
            allow_stdin = stdin_hook is not None or _stdin_is_terminal()
        answer: StdinHook = stdin_hook if stdin_hook is not None else _read_input_in_thread
        content = execute_content(
            code,
            silent=silent,
            store_history=store_history,
            user_expressions=user_expressions,
            allow_stdin=allow_stdin,
            stop_on_error=stop_on_error,
        )
        holder: list[TrackedRequest[_Waiter]] = []

        def on_input(request: Message) -> None:
            task = asyncio.get_running_loop().create_task(
                self._answer_input(request, answer, holder[0])
            )
            self._input_tasks.add(task)
            task.add_done_callback(self._input_tasks.discard)

        tracked = self._send(
            "shell",
            "execute_request",
            content,
            timeout=timeout,
            subshell_id=subshell_id,
            wait_idle=True,
            hook=output_hook if output_hook is not None else print_output,
            on_input=on_input,
        )
        holder.append(tracked)
        return await self._wait(tracked)

    async def _answer_input(
        self, request: Message, hook: StdinHook, tracked: TrackedRequest[_Waiter]
    ) -> None:
        try:
            value = hook(request)
            if inspect.isawaitable(value):
                value = await value
        except Exception as exc:
            # Answer anyway, or the kernel waits for input forever; the caller gets exc.
            await self.input("", parent=request)
            self._abort(tracked, exc)
            return
        if value is not None:
            await self.input(str(value), parent=request)

    async def kernel_info(
        self, *, timeout: float | None = None, subshell_id: str | None = None
    ) -> Message:
        """Ask for ``kernel_info``; return the reply (also kept as ``kernel_info_reply``)."""
        return await self._request(
            "shell", "kernel_info_request", {}, timeout=timeout, subshell_id=subshell_id
        )

    async def complete(
        self,
        code: str,
        cursor_pos: int | None = None,
        *,
        timeout: float | None = None,
        subshell_id: str | None = None,
    ) -> Message:
        """Ask for completions at ``cursor_pos`` (default: the end); return the reply."""
        return await self._request(
            "shell",
            "complete_request",
            complete_content(code, cursor_pos),
            timeout=timeout,
            subshell_id=subshell_id,
        )

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
        return await self._request(
            "shell",
            "inspect_request",
            inspect_content(code, cursor_pos, detail_level),
            timeout=timeout,
            subshell_id=subshell_id,
        )

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
        return await self._request(
            "shell", "history_request", content, timeout=timeout, subshell_id=subshell_id
        )

    async def is_complete(
        self, code: str, *, timeout: float | None = None, subshell_id: str | None = None
    ) -> Message:
        """Ask whether ``code`` is a complete statement; return the reply."""
        return await self._request(
            "shell",
            "is_complete_request",
            {"code": code},
            timeout=timeout,
            subshell_id=subshell_id,
        )

    async def comm_info(
        self,
        target_name: str | None = None,
        *,
        timeout: float | None = None,
        subshell_id: str | None = None,
    ) -> Message:
        """Ask which comms are open (optionally for one target); return the reply."""
        content = {} if target_name is None else {"target_name": target_name}
        return await self._request(
            "shell", "comm_info_request", content, timeout=timeout, subshell_id=subshell_id
        )

    async def input(self, value: str, *, parent: Message | None = None) -> None:
        """Send ``input_reply`` with ``value`` (for the last ``input_request`` by default)."""
        self._check_usable()
        if parent is None:
            parent = self._input_request
        msg = self._session.msg("input_reply", {"value": value}, parent=parent)
        self._transport.send("stdin", msg)

    # -- comms (no reply: they return the message id) --------------------------------

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
        comm_id = comm_id or self._session.msg("comm_open").header.msg_id
        content = {"comm_id": comm_id, "target_name": target_name, "data": dict(data or {})}
        self._send_untracked("comm_open", content, metadata, buffers, subshell_id)
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
        return self._send_untracked("comm_msg", content, metadata, buffers, subshell_id)

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
        return self._send_untracked("comm_close", content, metadata, buffers, subshell_id)

    def _send_untracked(
        self,
        msg_type: str,
        content: Mapping[str, Any],
        metadata: Mapping[str, Any] | None,
        buffers: tuple[bytes | memoryview, ...],
        subshell_id: str | None,
    ) -> str:
        self._check_usable()
        msg = self._session.msg(
            msg_type, content, metadata=metadata, buffers=buffers, subshell_id=subshell_id
        )
        self._transport.send("shell", msg)
        return msg.header.msg_id

    # -- control requests ------------------------------------------------------------

    async def shutdown(self, restart: bool = False, *, timeout: float | None = None) -> Message:
        """Ask the kernel to shut down (or restart) on the control channel; return the reply."""
        return await self._request(
            "control", "shutdown_request", {"restart": restart}, timeout=timeout
        )

    async def interrupt(self, *, timeout: float | None = None) -> Message:
        """Interrupt by message (``interrupt_request`` on control); return the reply."""
        return await self._request("control", "interrupt_request", {}, timeout=timeout)

    # -- subshells (JEP 91) ----------------------------------------------------------

    async def supports(self, feature: str, *, timeout: float | None = None) -> bool:
        """True if the kernel lists ``feature`` in ``supported_features``.

        Uses the last ``kernel_info_reply``; asks for one first if there is none yet.
        """
        reply = self._kernel_info
        if reply is None:
            reply = await self.kernel_info(timeout=timeout)
        features = reply.content.get("supported_features") or ()
        return feature in features

    async def _require_subshells(self, timeout: float | None) -> None:
        if not await self.supports(SUBSHELLS_FEATURE, timeout=timeout):
            raise UnsupportedFeature(SUBSHELLS_FEATURE, kernel=self._kernel_name)

    async def create_subshell(self, *, timeout: float | None = 30.0) -> AsyncSubshell:
        """Create a subshell: a handle whose requests run concurrently with the main shell.

        Raises:
            UnsupportedFeature: the kernel does not advertise ``kernel subshells``
                (nothing is sent).
            KernelError: the kernel refused.
        """
        await self._require_subshells(timeout)
        reply = await self._request("control", "create_subshell_request", {}, timeout=timeout)
        check_reply(reply, "create_subshell_request", kernel=self._kernel_name)
        subshell_id = reply.content.get("subshell_id")
        if not isinstance(subshell_id, str) or not subshell_id:
            raise RemoteProtocolError(
                f"kernel {self._kernel_name}: create_subshell_reply has no subshell_id"
            )
        return AsyncSubshell(self, subshell_id)

    async def list_subshells(self, *, timeout: float | None = 30.0) -> list[str]:
        """The ids of the kernel's subshells (the main shell is not listed).

        Raises:
            UnsupportedFeature: the kernel does not advertise ``kernel subshells``.
        """
        await self._require_subshells(timeout)
        reply = await self._request("control", "list_subshell_request", {}, timeout=timeout)
        check_reply(reply, "list_subshell_request", kernel=self._kernel_name)
        ids = reply.content.get("subshell_id") or []
        return [str(i) for i in ids]

    async def delete_subshell(self, subshell_id: str, *, timeout: float | None = 30.0) -> None:
        """Delete a subshell. Requests of this client still pending on it fail with
        :class:`KernelError` (the kernel never answers them).

        Raises:
            UnsupportedFeature: the kernel does not advertise ``kernel subshells``.
            KernelError: the kernel refused (e.g. no such subshell).
        """
        await self._require_subshells(timeout)
        reply = await self._request(
            "control", "delete_subshell_request", {"subshell_id": subshell_id}, timeout=timeout
        )
        check_reply(reply, f"delete_subshell_request({subshell_id})", kernel=self._kernel_name)
        # A kernel drops the replies of requests still running in a deleted subshell
        # (ipykernel 7.4 does): fail them now rather than let them wait forever.
        for request in self._tracker.forget_subshell(subshell_id):
            self._abort(
                request,
                KernelError(
                    f"kernel {self._kernel_name}: subshell {subshell_id} was deleted while "
                    f"its {request.msg_type} was pending; no reply will come"
                ),
            )

    # -- raw IOPub -------------------------------------------------------------------

    def add_iopub_handler(self, handler: Callable[[Message], None]) -> Callable[[], None]:
        """Call ``handler`` with every IOPub message received (on the event loop).

        Returns a function that removes it. A handler that raises is logged, not removed.
        """
        return self._subscribe(handler, None)

    def _subscribe(
        self, handler: Callable[[Message], None], on_close: Callable[[], None] | None
    ) -> Callable[[], None]:
        """Add an IOPub handler (and what to call when the client closes); returns the
        function that removes both. Loop thread only."""
        self._iopub_handlers = (*self._iopub_handlers, handler)
        if on_close is not None:
            self._on_close.append(on_close)

        def remove() -> None:
            handlers = list(self._iopub_handlers)
            if handler in handlers:
                handlers.remove(handler)
                self._iopub_handlers = tuple(handlers)
            if on_close is not None and on_close in self._on_close:
                self._on_close.remove(on_close)

        return remove

    def iopub_messages(self) -> AsyncMessageStream:
        """Every IOPub message from now on, as an async iterator (close it when done)."""
        return AsyncMessageStream(self)

    def __repr__(self) -> str:
        state = (
            "closed"
            if self._closed
            else "dead"
            if self._dead
            else "started"
            if self._loop
            else "new"
        )
        return f"<AsyncKernelClient kernel={self._kernel_name} {state}>"


class AsyncSubshell:
    """A subshell of a kernel (JEP 91): shell requests that run beside the main shell.

    Made by :meth:`AsyncKernelClient.create_subshell`. Its shell messages carry
    ``header.subshell_id``; closing it (``aclose`` or ``async with``) deletes it.
    """

    __slots__ = ("_client", "_closed", "subshell_id")

    def __init__(self, client: AsyncKernelClient, subshell_id: str) -> None:
        self._client = client
        self.subshell_id = subshell_id
        self._closed = False

    def __repr__(self) -> str:
        return f"<AsyncSubshell {self.subshell_id} of {self._client!r}>"

    @property
    def client(self) -> AsyncKernelClient:
        return self._client

    @property
    def closed(self) -> bool:
        return self._closed

    async def aclose(self, *, timeout: float | None = 30.0) -> None:
        """Delete the subshell in the kernel (nothing to do if the client is gone)."""
        if self._closed:
            return
        self._closed = True
        client = self._client
        if client.closed or client._dead is not None:
            return
        await client.delete_subshell(self.subshell_id, timeout=timeout)

    async def __aenter__(self) -> AsyncSubshell:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def _id(self) -> str:
        if self._closed:
            raise ClientClosed(f"subshell {self.subshell_id} is closed (deleted)")
        return self.subshell_id

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
    ) -> Message:
        """:meth:`AsyncKernelClient.execute` on this subshell."""
        return await self._client.execute(
            code,
            silent=silent,
            store_history=store_history,
            user_expressions=user_expressions,
            allow_stdin=allow_stdin,
            stop_on_error=stop_on_error,
            outputs=outputs,
            raise_on_error=raise_on_error,
            timeout=timeout,
            subshell_id=self._id(),
        )

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
    ) -> Message:
        """:meth:`AsyncKernelClient.execute_interactive` on this subshell."""
        return await self._client.execute_interactive(
            code,
            silent=silent,
            store_history=store_history,
            user_expressions=user_expressions,
            allow_stdin=allow_stdin,
            stop_on_error=stop_on_error,
            output_hook=output_hook,
            stdin_hook=stdin_hook,
            timeout=timeout,
            subshell_id=self._id(),
        )

    async def kernel_info(self, *, timeout: float | None = None) -> Message:
        """:meth:`AsyncKernelClient.kernel_info` on this subshell."""
        return await self._client.kernel_info(timeout=timeout, subshell_id=self._id())

    async def complete(
        self, code: str, cursor_pos: int | None = None, *, timeout: float | None = None
    ) -> Message:
        """:meth:`AsyncKernelClient.complete` on this subshell."""
        return await self._client.complete(
            code, cursor_pos, timeout=timeout, subshell_id=self._id()
        )

    async def inspect(
        self,
        code: str,
        cursor_pos: int | None = None,
        detail_level: int = 0,
        *,
        timeout: float | None = None,
    ) -> Message:
        """:meth:`AsyncKernelClient.inspect` on this subshell."""
        return await self._client.inspect(
            code, cursor_pos, detail_level, timeout=timeout, subshell_id=self._id()
        )

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
    ) -> Message:
        """:meth:`AsyncKernelClient.history` on this subshell."""
        return await self._client.history(
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
            subshell_id=self._id(),
        )

    async def is_complete(self, code: str, *, timeout: float | None = None) -> Message:
        """:meth:`AsyncKernelClient.is_complete` on this subshell."""
        return await self._client.is_complete(code, timeout=timeout, subshell_id=self._id())

    async def comm_info(
        self, target_name: str | None = None, *, timeout: float | None = None
    ) -> Message:
        """:meth:`AsyncKernelClient.comm_info` on this subshell."""
        return await self._client.comm_info(target_name, timeout=timeout, subshell_id=self._id())


def _stdin_is_terminal() -> bool:
    stdin = sys.stdin
    try:
        return stdin is not None and stdin.isatty()
    except ValueError:  # closed
        return False


async def _read_input_in_thread(request: Message) -> str:
    # The terminal read blocks, so it runs in a worker thread, not on the event loop.
    return await asyncio.to_thread(read_input, request)
