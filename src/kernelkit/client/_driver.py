"""How a blocking face hands work to its loop thread and gets results back.

A :class:`Driver` joins one :class:`~kernelkit.client._core.ClientCore` to the
:class:`~kernelkit._loopthread.LoopThread` it runs on. A request costs one wake-up of
the loop (``call_soon_threadsafe`` of a plain callback: no coroutine, no task, no
concurrent Future) and one wake-up of the caller (a lock released once by the waiter
that settles it); the message is built in the calling thread, so the loop only tracks
and sends it. Interactive requests get a :class:`Mailbox`, whose reader is woken once
per batch of output, not per message.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections import deque
from collections.abc import Callable, Coroutine, Iterator
from concurrent.futures import CancelledError
from functools import partial
from typing import Any, TypeVar

from kernelkit._errors import ClientClosed, KernelError
from kernelkit._loopthread import LoopThread
from kernelkit.client import _requests as rq
from kernelkit.client._core import ClientCore
from kernelkit.client._direct import call_direct, lane_of
from kernelkit.client._hooks import BlockingStdinHook, OutputHook
from kernelkit.client._waiters import Waiter
from kernelkit.protocol import Message, TrackedRequest

__all__ = ["Driver", "Mailbox", "Outcome"]

T = TypeVar("T")

#: IOPub messages an interactive caller need not be woken for: they wait in the mailbox
#: for the next output or the outcome (which follows them at once for a quick request).
_QUIET = frozenset(("status", "execute_input"))


class Driver:
    """A client core on a loop thread, used from other threads.

    ``started`` and ``closed`` are the blocking face's lifecycle (it sets them).
    """

    __slots__ = ("closed", "core", "direct_io", "started", "tasks", "thread")

    def __init__(self, core: ClientCore, thread: LoopThread) -> None:
        self.core = core
        self.thread = thread
        self.started = False
        self.closed = False
        #: Shell requests do their I/O in the calling thread when they can (_direct.py).
        self.direct_io = True
        #: The coroutines run on the loop for callers (closing cancels what is left).
        self.tasks: set[asyncio.Task[Any]] = set()

    # -- plumbing ----------------------------------------------------------------------

    def loop_or_raise(self) -> asyncio.AbstractEventLoop:
        """The loop, if a caller may hand it work now.

        Raises:
            ClientClosed: not started, or closed.
            KernelError: called on the loop thread itself (it would wait forever).
        """
        loop = self.thread.loop
        if loop is None or not self.started or self.closed:
            raise ClientClosed(
                f"the client for kernel {self.core.kernel_name} is "
                + ("closed" if self.closed else "not started: use `with` or start() first")
            )
        if self.thread.in_thread():
            raise KernelError(
                "a blocking KernelClient method was called from the client's own loop thread "
                "(inside an IOPub handler?): that would wait forever; use async_client there"
            )
        return loop

    def catch_up(self, waits: bool = False) -> None:
        """Have the loop take in, first, what direct requests read (in order). With
        ``waits`` (a request is handed to the loop), if this thread holds the lane (the
        request is made from a hook of its direct request), the loop takes the sockets
        back first: the answer comes on them, and this thread does not read them."""
        lane = lane_of(self.core)
        if lane is None:
            return
        if waits:
            lane.step_aside()
        if lane.pending:
            lane.wake_loop()

    def caught_up(self) -> None:
        """Wait until the loop has taken in what direct requests read and reads the
        sockets again (for reads of the core's state from this thread)."""
        lane = lane_of(self.core)
        if lane is None or not lane.lent_out or not self.started or self.closed:
            return
        if self.thread.in_thread():
            return  # a handler on the loop: the loop is taking them in already
        with contextlib.suppress(ClientClosed, RuntimeError):
            self.thread.call(lane.take_back)

    def soon(self, loop: asyncio.AbstractEventLoop, fn: Callable[..., None], *args: Any) -> None:
        """Schedule ``fn(*args)`` on the loop (one wake-up), after what direct requests
        read.

        Raises:
            ClientClosed: the loop closed under us (close() in another thread).
        """
        self.catch_up(waits=True)
        try:
            loop.call_soon_threadsafe(fn, *args)
        except RuntimeError:
            raise ClientClosed(
                f"the client for kernel {self.core.kernel_name} was closed"
            ) from None

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on the loop and wait here for its result (the slow path: steps
        that wait on the loop more than once)."""
        try:
            self.loop_or_raise()
        except BaseException:
            coro.close()
            raise
        self.catch_up(waits=True)
        try:
            return self.thread.run(self._tracked(coro))
        except CancelledError:
            if self.closed:  # cancelled by close() from another thread
                raise ClientClosed(
                    f"the client for kernel {self.core.kernel_name} was closed"
                ) from None
            raise

    async def _tracked(self, coro: Coroutine[Any, Any, T]) -> T:
        task = asyncio.current_task()
        assert task is not None
        self.tasks.add(task)
        try:
            return await coro
        finally:
            self.tasks.discard(task)

    def call(self, fn: Callable[..., T], *args: Any) -> T:
        """Run a plain function on the loop thread and return its result."""
        self.loop_or_raise()
        self.catch_up()
        return self.thread.call(fn, *args)

    def call_quietly(self, fn: Callable[[], None]) -> None:
        """Run ``fn`` on the loop thread soon, if the loop still runs (else: no need)."""
        loop = self.thread.loop
        if loop is not None:
            with contextlib.suppress(RuntimeError):  # closed: nothing left to undo
                loop.call_soon_threadsafe(fn)

    # -- requests ----------------------------------------------------------------------

    def ask(
        self,
        request: rq.Request,
        subshell_id: str | None,
        timeout: float | None,
        outputs: list[Message] | None = None,
    ) -> Message:
        """Send ``request`` and wait here for its checked reply."""
        core = self.core
        if request.needs is not None:  # may ask kernel_info first: the slow path
            return self.run(
                core.ask(request, subshell_id=subshell_id, timeout=timeout, outputs=outputs)
            )
        loop = self.loop_or_raise()
        msg = core.build(request, subshell_id)
        if self.direct_io and request.channel == "shell" and request.replies:
            lane = lane_of(core)
            if lane is not None:
                reply = call_direct(core, lane, request, msg, timeout, outputs=outputs)
                if reply is not None:
                    return rq.finish(request, reply, kernel=core.kernel_name)
        outcome = Outcome()
        self.soon(loop, self._start, request, msg, timeout, outputs, outcome)
        try:
            reply = outcome.wait()
        except BaseException:
            if not outcome.done:  # e.g. KeyboardInterrupt while waiting
                self.call_quietly(partial(self._give_up, outcome.tracked_box))
            raise
        return rq.finish(request, reply, kernel=core.kernel_name)

    def _start(
        self,
        request: rq.Request,
        msg: Message,
        timeout: float | None,
        outputs: list[Message] | None,
        outcome: Outcome,
    ) -> None:  # the loop thread
        try:
            tracked = self.core.begin(
                request, msg, timeout=timeout, future=False, outputs=outputs, on_done=outcome.set
            )
        except BaseException as exc:
            outcome.set(None, exc)
            return
        outcome.tracked_box.append(tracked)

    def _give_up(self, box: list[TrackedRequest[Waiter]]) -> None:  # the loop thread
        for tracked in box:
            if not tracked.context.settled:
                self.core.abort(tracked, ClientClosed("the caller stopped waiting"))

    def send(self, request: rq.Request, subshell_id: str | None) -> str:
        """Send a message nothing answers; returns its msg_id once sent."""
        msg = self.core.build(request, subshell_id)
        return self.call(self.core.send, request, msg)

    def send_detached(
        self, request: rq.Request, subshell_id: str | None, timeout: float | None
    ) -> str:
        """Send ``request`` without waiting at all; ``get_reply`` claims the reply."""
        core = self.core
        loop = self.loop_or_raise()
        error = core.unusable
        if error is not None:
            raise error
        msg = core.build(request, subshell_id)
        self.soon(loop, partial(core.detached.start, request, msg, timeout=timeout))
        return msg.header.msg_id

    def interactive(
        self,
        request: rq.Request,
        subshell_id: str | None,
        timeout: float | None,
        show: OutputHook,
        answer: BlockingStdinHook,
    ) -> Message:
        """Run an execute request, calling ``show`` with its IOPub messages and
        ``answer`` with its input requests here, in order; return the reply."""
        core = self.core
        loop = self.loop_or_raise()
        msg = core.build(request, subshell_id)

        def on_input(asked: Message) -> None:
            try:
                value = answer(asked)
            except BaseException:
                self.send(rq.input_reply("", asked), None)  # never leave it waiting
                raise
            if value is not None:
                self.send(rq.input_reply(value, asked), None)

        if self.direct_io and request.channel == "shell":
            lane = lane_of(core)
            if lane is not None:
                reply = call_direct(core, lane, request, msg, timeout, show=show, answer=on_input)
                if reply is not None:
                    return rq.finish(request, reply, kernel=core.kernel_name)
        inbox = Mailbox(loop)
        box: list[TrackedRequest[Waiter]] = []
        self.soon(loop, self._start_interactive, request, msg, timeout, inbox, box)
        try:
            for item in inbox:
                if isinstance(item, Outcome):
                    return rq.finish(request, item.wait(), kernel=core.kernel_name)
                if isinstance(item, _InputRequest):
                    on_input(item.request)
                else:
                    show(item)
        except BaseException:
            self.call_quietly(partial(self._give_up, box))  # stop it if it still runs
            raise
        raise AssertionError("unreachable: the mailbox ends with the outcome")  # pragma: no cover

    def _start_interactive(
        self,
        request: rq.Request,
        msg: Message,
        timeout: float | None,
        inbox: Mailbox,
        box: list[TrackedRequest[Waiter]],
    ) -> None:  # the loop thread
        try:
            tracked = self.core.begin(
                request,
                msg,
                timeout=timeout,
                future=False,
                hook=inbox.put_output,
                on_input=inbox.put_input,
                on_done=inbox.put_outcome,
            )
        except BaseException as exc:
            inbox.put_outcome(None, exc)
            return
        box.append(tracked)


class Outcome:
    """One reply or error, handed from the loop thread to a waiting thread.

    A plain lock released once, not a concurrent.futures.Future: the waiting thread
    wakes with one futex, without a Condition's bookkeeping on either side.
    """

    __slots__ = ("_lock", "done", "error", "reply", "tracked_box")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._lock.acquire()
        self.reply: Message | None = None
        self.error: BaseException | None = None
        self.done = False
        self.tracked_box: list[TrackedRequest[Waiter]] = []

    def set(self, reply: Message | None, error: BaseException | None) -> None:  # loop thread
        if self.done:
            return
        self.reply = reply
        self.error = error
        self.done = True
        self._lock.release()

    def wait(self) -> Message:
        """The reply (raises the error); blocks until there is one."""
        if not self.done:
            self._lock.acquire()
        if self.error is not None:
            raise self.error
        assert self.reply is not None
        return self.reply


class _InputRequest:
    """An ``input_request`` for the calling thread to answer (in a mailbox)."""

    __slots__ = ("request",)

    def __init__(self, request: Message) -> None:
        self.request = request


class Mailbox:
    """From the loop thread to the calling thread, in order; ends with an Outcome.

    The reader is woken once per turn of the loop, after the transport has read
    everything that was waiting, not once per message, and not at all for ``status``
    and ``execute_input`` (they wait for the next output or the outcome): an IOPub
    flood crosses threads in batches, and a quick request with one wake-up. The wake-up
    is a lock used as a binary semaphore: held while the reader may sleep, released by
    the loop thread.
    """

    __slots__ = ("_items", "_lock", "_loop", "_scheduled", "_signalled")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._items: deque[Any] = deque()
        self._lock = threading.Lock()
        self._lock.acquire()
        self._signalled = False  # False only while the reader holds the lock
        self._loop = loop
        self._scheduled = False

    def put_output(self, msg: Message) -> None:  # loop thread
        self._items.append(msg)
        if not self._scheduled and msg.header.msg_type not in _QUIET:
            self._scheduled = True
            self._loop.call_soon(self._wake)

    def put_input(self, request: Message) -> None:  # loop thread
        self._items.append(_InputRequest(request))
        self._wake()

    def put_outcome(self, reply: Message | None, error: BaseException | None) -> None:
        outcome = Outcome()
        outcome.set(reply, error)
        self._items.append(outcome)
        self._wake()  # the last item: nothing to batch it with

    def _wake(self) -> None:  # loop thread
        self._scheduled = False
        if not self._signalled:
            self._signalled = True
            self._lock.release()

    def __iter__(self) -> Iterator[Any]:  # calling thread; ends after an Outcome
        items = self._items
        lock = self._lock
        while True:
            lock.acquire()
            self._signalled = False
            while items:
                item = items.popleft()
                yield item
                if isinstance(item, Outcome):
                    return
