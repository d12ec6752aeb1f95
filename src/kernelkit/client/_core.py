"""The one client core: transport, request tracker, waiters, routing and liveness.

A :class:`ClientCore` talks to one kernel through one :class:`Transport`. Both faces
(:class:`~kernelkit.client.AsyncKernelClient` and the blocking
:class:`~kernelkit.client.KernelClient`), and subshell views of either, send their
requests through it as :class:`~kernelkit.client._requests.Request` descriptions. Every
request is registered with a :class:`~kernelkit.protocol.RequestTracker` before it is
sent; the transport pushes each received message into :meth:`message_received`, which
asks the tracker whose it is and hands it to that request's waiter (no task per message).

Everything here runs on the core's event loop, except :meth:`notify_dead`,
:meth:`notify_restarted` and :meth:`build` (safe from any thread), and the blocking
face's direct requests, which do their own I/O in the calling thread
(:mod:`kernelkit.client._direct`) and are told through :attr:`ClientCore.direct`.

Failure is prompt: a dead kernel, a kernel silent past ``silence_timeout``, a lost
transport or ``aclose`` fails every pending request at once, whatever its timeout. A
missed heartbeat alone only marks the kernel unresponsive (it may be busy).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable, Collection, Coroutine
from typing import Any

from kernelkit._connection import ConnectionInfo
from kernelkit._errors import (
    ClientClosed,
    KernelError,
    MessageTooLarge,
    RemoteProtocolError,
    UnsupportedFeature,
)
from kernelkit.client import _requests as rq
from kernelkit.client._detached import Detached
from kernelkit.client._direct import DirectSlot
from kernelkit.client._liveness import DEFAULT_SILENCE_TIMEOUT, Liveness, wait_until_ready
from kernelkit.client._rejections import Rejections
from kernelkit.client._requests import Request
from kernelkit.client._streams import Handler, Subscriptions, check_channels
from kernelkit.client._waiters import OnDone, Waiter, expired
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
from kernelkit.transport import Transport

__all__ = [
    "DEFAULT_FIRST_CONTACT_TIMEOUT",
    "DEFAULT_SILENCE_TIMEOUT",
    "ClientCore",
    "check_channels",
]

log = logging.getLogger("kernelkit.client")

#: How long a kernel that never answered may take to answer (see AsyncKernelClient).
DEFAULT_FIRST_CONTACT_TIMEOUT = 10.0


class ClientCore:
    """The state and decisions of one client; see the module docstring.

    ``heartbeat`` (when the transport supports it) pings the kernel every
    ``heartbeat_interval`` seconds; see :class:`~kernelkit.client._liveness.Liveness`
    for what a silent kernel does to requests.
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
        silence_timeout: float | None = DEFAULT_SILENCE_TIMEOUT,
    ) -> None:
        self._transport = transport
        self._session = transport.session
        self._kernel_name = kernel_name or "(unnamed)"
        self._heartbeat = heartbeat and transport.supports_heartbeat
        self._liveness = Liveness(
            kernel=self._kernel_name,
            heartbeat_url=transport.heartbeat_url,
            interval=heartbeat_interval,
            timeout=heartbeat_timeout,
            first_contact_timeout=first_contact_timeout,
            silence_timeout=silence_timeout,
            heard=lambda: self.heard,
            fail_all=self.fail_all,
        )
        self._tracker: RequestTracker[Waiter] = RequestTracker()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: int | None = None
        self._hb_task: asyncio.Task[None] | None = None
        self._iopub_seen: asyncio.Event | None = None
        self._closed = False
        self._kernel_info: Message | None = None
        self._input_request: Message | None = None
        self._subscriptions = Subscriptions()
        self._handlers = self._subscriptions.handlers  # the receive path reads it
        #: Requests whose reply is claimed later (send_request / get_reply).
        self.detached = Detached(self)
        self._tasks: set[asyncio.Task[Any]] = set()  # spawned; aclose cancels them
        self._rejections = Rejections(self._kernel_name, self._session.signature_scheme)
        #: Messages received (verified or not): traffic proves the kernel alive too.
        self.heard = 0
        #: Requests waited for in a blocking caller's thread (_direct.py), by msg_id.
        self.direct: dict[str, DirectSlot] = {}
        self.forwarding = False

    # -- state -------------------------------------------------------------------------

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
    def loop(self) -> asyncio.AbstractEventLoop | None:
        """The event loop the core runs on (None before :meth:`start`)."""
        return self._loop

    @property
    def dead_error(self) -> KernelError | None:
        """Why the kernel is known to be gone (None while it is not)."""
        return self._liveness.dead

    @property
    def unusable(self) -> KernelError | None:
        """What a new request would fail with now (dead, heartbeat), or None."""
        return self._liveness.error

    @property
    def unresponsive(self) -> bool:
        """True while the kernel misses heartbeats but is not known to be gone."""
        return self._liveness.unresponsive

    @property
    def kernel_info_reply(self) -> Message | None:
        return self._kernel_info

    @property
    def execution_state(self) -> str | None:
        return self._tracker.kernel_execution_state

    @property
    def pending_requests(self) -> int:
        return len(self._tracker) + len(self.direct)

    @property
    def rejected_messages(self) -> int:
        return self._rejections.total

    @property
    def bad_signatures(self) -> int:
        """Messages refused for their signature since the last one that verified."""
        return self._rejections.bad_signatures

    @property
    def oversized_messages(self) -> int:
        """Messages refused for their size (see the transport's ``max_message_size``)."""
        return self._rejections.oversized

    def handler_count(self) -> int:
        """How many message handlers and stream ends are registered."""
        return self._subscriptions.count()

    def in_loop_thread(self) -> bool:
        return self._loop_thread == threading.get_ident()

    # -- lifecycle ---------------------------------------------------------------------

    async def start(self) -> None:
        """Connect the transport and start the heartbeat; nothing if started.

        Raises:
            ClientClosed: the core was closed.
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
        self._liveness.started(loop.time())
        if self._heartbeat:
            self._hb_task = loop.create_task(self._liveness.run(self._transport.ping, loop.time))

    async def aclose(self) -> None:
        """Close the transport; pending requests fail with :class:`ClientClosed`."""
        if self._closed:
            return
        self._closed = True
        self.fail_all(ClientClosed(f"the client for kernel {self._kernel_name} was closed"))
        if self._hb_task is not None:
            self._hb_task.cancel()
            await asyncio.wait([self._hb_task])  # its cancellation is expected
        for task in list(self._tasks):
            task.cancel()
        self._subscriptions.close()
        await self._transport.aclose()

    def notify_dead(self, error: KernelError) -> None:
        """The kernel is gone: fail every pending and future request with ``error``.
        Safe from any thread; nothing once closed."""
        if self._closed:
            return
        loop = self._loop
        if loop is not None and not self.in_loop_thread():
            try:
                loop.call_soon_threadsafe(self._mark_dead, error)
            except RuntimeError:  # its loop is closed: nothing is pending any more
                self._liveness.mark_dead(error)
        else:
            self._mark_dead(error)

    def notify_restarted(self, info: ConnectionInfo | None = None) -> None:
        """The kernel was restarted (on ``info``'s endpoints, if given): accept requests
        again. Safe from any thread; nothing once closed."""
        if self._closed:
            return
        loop = self._loop
        if loop is not None and not self.in_loop_thread():
            with contextlib.suppress(RuntimeError):  # its loop is closed: nothing to clear
                loop.call_soon_threadsafe(self._mark_restarted, info)
        else:
            self._mark_restarted(info)

    def _mark_dead(self, error: KernelError) -> None:
        if self._closed:
            return  # scheduled before aclose: its requests failed with ClientClosed already
        self._liveness.mark_dead(error)
        self.fail_all(error)

    def _mark_restarted(self, info: ConnectionInfo | None) -> None:
        if self._closed:
            return
        self.fail_all(KernelError(f"kernel {self._kernel_name} was restarted"))
        self._liveness.restarted(self._loop.time() if self._loop is not None else 0.0)
        self._kernel_info = None
        if self._iopub_seen is not None:
            self._iopub_seen.clear()
        if info is not None:
            try:
                self._transport.reconnect(info)
            except KernelError as exc:
                self._liveness.mark_dead(exc)
                log.warning("kernel %s: %s", self._kernel_name, exc)

    def fail_all(self, error: BaseException) -> None:
        """Fail every pending request with ``error``."""
        for slot in list(self.direct.values()):
            slot.fail(error)
        for request in self._tracker.forget_all():
            waiter = request.context
            if waiter.timer is not None:
                waiter.timer.cancel()
            waiter.settle(None, error)

    def check_loop(self) -> asyncio.AbstractEventLoop:
        """The loop (closed or not, dead or not).

        Raises:
            ClientClosed: not started.
        """
        loop = self._loop
        if loop is None:
            raise ClientClosed(
                f"the client for kernel {self._kernel_name} is not started: use "
                "`async with client:` or `await client.start()` first"
            )
        return loop

    def check_usable(self) -> asyncio.AbstractEventLoop:
        """The loop, if requests may be sent now.

        Raises:
            ClientClosed: closed, or not started.
            KernelError: the kernel is dead or its heartbeat failed (that error).
        """
        loop = self._loop
        if self._closed:
            raise ClientClosed(f"the client for kernel {self._kernel_name} is closed")
        if loop is None:
            raise ClientClosed(
                f"the client for kernel {self._kernel_name} is not started: use "
                "`async with client:` or `await client.start()` first"
            )
        error = self._liveness.error
        if error is not None:
            raise error
        key_error = self._rejections.key_error
        if key_error is not None:
            raise key_error
        return loop

    # -- receiving (the transport's Receiver) ------------------------------------------

    def message_received(self, channel: str, message: Message) -> None:
        self.heard += 1
        if self._rejections.bad_signatures:
            self._rejections.verified()
        if channel == "iopub":
            seen = self._iopub_seen
            if seen is not None and not seen.is_set():
                seen.set()
        handlers = self._handlers.get(channel)
        if handlers:
            for handler in handlers:
                try:
                    handler(message)
                except Exception:
                    log.exception(
                        "a message handler (%s) of kernel %s failed",
                        "IOPub handler" if channel == "iopub" else channel,
                        self._kernel_name,
                    )
        direct = self.direct
        if direct and not self.forwarding:
            parent = message.parent_header
            slot = direct.get(parent.msg_id) if parent is not None else None
            if slot is not None:
                slot.put(channel, message)
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
            if event.complete and waiter.request.wait_idle:
                self._settle(request, request.reply)
        elif isinstance(event, ReplyReceived):
            if message.header.msg_type == "kernel_info_reply":
                self._kernel_info = message
            request = event.request
            if event.complete or not request.context.request.wait_idle:
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

    def _call_hook(self, request: TrackedRequest[Waiter], message: Message) -> None:
        waiter = request.context
        hook = waiter.hook
        assert hook is not None
        try:
            hook(message)
        except Exception as exc:
            # The caller's hook failed: the call that passed it raises the error.
            waiter.hook = None
            self.abort(request, exc)

    def _settle(self, request: TrackedRequest[Waiter], reply: Message | None) -> None:
        """The request got what it waited for: stop tracking it and resolve it."""
        self._finish(request)
        waiter = request.context
        forgets = waiter.request.forgets_subshell
        if forgets is not None and reply is not None and reply.content.get("status") == "ok":
            self._forget_subshell(forgets)
        waiter.settle(reply, None)

    def abort(self, request: TrackedRequest[Waiter], error: BaseException) -> None:
        """Fail ``request`` with ``error`` and stop tracking it."""
        self._finish(request)
        request.context.settle(None, error)

    def _finish(self, request: TrackedRequest[Waiter]) -> None:
        timer = request.context.timer
        if timer is not None:
            timer.cancel()
        self._tracker.forget(request.msg_id)

    def _forget_subshell(self, subshell_id: str) -> None:
        # The kernel drops their replies (ipykernel 7.4 does): fail them now.
        def gone(msg_type: str) -> KernelError:
            return KernelError(
                f"kernel {self._kernel_name}: subshell {subshell_id} was deleted while "
                f"its {msg_type} was pending; no reply will come"
            )

        for slot in list(self.direct.values()):
            if slot.subshell_id == subshell_id:
                slot.fail(gone(slot.msg_type))
        for request in self._tracker.forget_subshell(subshell_id):
            self.abort(request, gone(request.msg_type))

    def message_rejected(self, channel: str, error: RemoteProtocolError) -> None:
        self.heard += 1
        if channel == "iopub":
            # Even a message we cannot accept proves the subscription delivers.
            seen = self._iopub_seen
            if seen is not None:
                seen.set()
        failure = self._rejections.judge(channel, error)
        if isinstance(failure, MessageTooLarge):
            for tracked, lost in self._rejections.lost(failure, self._tracker):
                self.abort(tracked, lost)
            for slot in list(self.direct.values()):
                slot.fail(failure)
        elif failure is not None:
            self.fail_all(failure)

    def transport_lost(self, error: KernelError) -> None:
        self._mark_dead(error)

    # -- sending -----------------------------------------------------------------------

    def build(self, request: Request, subshell_id: str | None) -> Message:
        """The message for ``request`` (fresh id and date). Safe from any thread."""
        return self._session.msg(
            request.msg_type,
            request.content,
            parent=request.parent,
            subshell_id=subshell_id,
            metadata=request.metadata,
            buffers=request.buffers,
        )

    def send(self, request: Request, msg: Message) -> str:
        """Send a message nothing answers (comms, ``input_reply``); returns its msg_id."""
        self.check_usable()
        self._transport.send(request.channel, msg)
        return msg.header.msg_id

    def begin(
        self,
        request: Request,
        msg: Message,
        *,
        timeout: float | None,
        future: bool = True,
        on_done: OnDone | None = None,
        outputs: list[Message] | None = None,
        hook: Callable[[Message], None] | None = None,
        on_input: Callable[[Message], None] | None = None,
    ) -> TrackedRequest[Waiter]:
        """Track and send ``msg`` (built from ``request``). Its waiter settles with the
        reply (and, with ``wait_idle``, once idle): its future, if ``future``, and
        ``on_done`` are told.

        Raises:
            ClientClosed, KernelError: see :meth:`check_usable`.
            LocalProtocolError: the message cannot be sent.
        """
        loop = self.check_usable()
        waiter = Waiter(
            request, loop.create_future() if future else None, on_done, outputs, hook, on_input
        )
        tracked = self._tracker.track(msg, waiter, channel=request.channel)
        try:
            self._transport.send(request.channel, msg)
        except BaseException:
            self._tracker.forget(msg.header.msg_id)
            raise
        if timeout is not None:
            waiter.timer = loop.call_later(timeout, self._expire, tracked, timeout)
        return tracked

    def _expire(self, tracked: TrackedRequest[Waiter], timeout: float) -> None:
        self.abort(tracked, expired(self._kernel_name, tracked, timeout))

    async def wait(self, tracked: TrackedRequest[Waiter]) -> Message:
        """The reply of a request started with a future, its checks applied."""
        future = tracked.context.future
        assert future is not None
        try:
            reply = await future
        finally:
            self._finish(tracked)  # a no-op unless cancelled
        return rq.finish(tracked.context.request, reply, kernel=self._kernel_name)

    async def ask(
        self,
        request: Request,
        *,
        subshell_id: str | None = None,
        timeout: float | None = None,
        outputs: list[Message] | None = None,
    ) -> Message:
        """Send ``request`` and return its checked reply (asking first for the feature
        it needs, if the kernel has not said yet).

        Raises:
            UnsupportedFeature: the kernel does not list the feature (nothing is sent).
            KernelTimeout, KernelDied, HeartbeatTimeout, ClientClosed, RequestError.
        """
        if request.needs is not None:
            await self.require(request.needs, timeout=timeout)
        msg = self.build(request, subshell_id)
        return await self.wait(self.begin(request, msg, timeout=timeout, outputs=outputs))

    async def supports(self, feature: str, *, timeout: float | None = None) -> bool:
        """True if the kernel lists ``feature`` in ``supported_features`` (asks for
        ``kernel_info`` first if none has arrived yet)."""
        reply = self._kernel_info
        if reply is None:
            reply = await self.ask(rq.kernel_info(), timeout=timeout)
        return feature in (reply.content.get("supported_features") or ())

    async def require(self, feature: str, *, timeout: float | None = None) -> None:
        """Raises UnsupportedFeature unless the kernel lists ``feature``."""
        if not await self.supports(feature, timeout=timeout):
            raise UnsupportedFeature(feature, kernel=self._kernel_name)

    # -- readiness ---------------------------------------------------------------------

    async def wait_for_ready(self, timeout: float | None = 60.0) -> Message:
        """Wait until the kernel answers ``kernel_info`` and IOPub delivers; see
        :meth:`AsyncKernelClient.wait_for_ready`."""
        info = rq.kernel_info()

        async def ask(within: float | None) -> Message:
            return await self.ask(info, timeout=within)

        loop = None if self._closed else self._loop
        with self._liveness.waiting_ready(loop, timeout):
            loop = self.check_usable()
            assert self._iopub_seen is not None
            return await wait_until_ready(
                ask, self._iopub_seen, loop, timeout=timeout, kernel=self._kernel_name
            )

    def spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        """Run ``coro`` as a task of this core (cancelled by :meth:`aclose`)."""
        loop = self._loop
        assert loop is not None, "spawn() before start()"
        task = loop.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- handlers and streams ----------------------------------------------------------

    def subscribe(
        self,
        handler: Handler,
        *,
        channels: Collection[str] = ("iopub",),
        on_close: Callable[[], None] | None = None,
    ) -> Callable[[], None]:
        """Call ``handler`` with every message received on ``channels`` (and
        ``on_close`` when the core closes); returns the function that removes both.

        Raises:
            LocalProtocolError: an unknown channel name.
        """
        return self._subscriptions.add(handler, check_channels(channels), on_close)

    @property
    def last_input_request(self) -> Message | None:
        """The last ``input_request`` received (what ``input()`` answers by default)."""
        return self._input_request

    def describe(self) -> str:
        """new, started, dead or closed (for reprs)."""
        if self._closed:
            return "closed"
        if self._liveness.dead is not None:
            return "dead"
        return "started" if self._loop is not None else "new"
