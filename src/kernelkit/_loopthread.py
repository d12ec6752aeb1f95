"""One asyncio event loop in a thread of its own: what every blocking face drives.

A blocking object (:class:`~kernelkit.KernelClient`, :class:`~kernelkit.KernelManager`,
the blocking multi-kernel manager and pool, a launched kernel) hands its coroutines to a
:class:`LoopThread` and waits for their results in the calling thread. One loop thread
may serve several objects: :meth:`LoopThread.hold` and :meth:`LoopThread.release` count
the users besides its owner, and :meth:`LoopThread.close_when_released` stops it once the
last one has let go.

The loop is wound down on its own thread (remaining tasks cancelled, async generators
and the default executor shut down, the loop closed), so :meth:`LoopThread.close` works
from any other thread, one that runs an event loop of its own included.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable, Coroutine
from concurrent.futures import CancelledError, Future
from typing import Any, TypeVar

from kernelkit._errors import KernelError

__all__ = ["LoopThread"]

T = TypeVar("T")


class LoopThread:
    """An asyncio event loop running in one daemon thread named ``name``.

    Started by :meth:`start` (or the first :meth:`run`), stopped by :meth:`close`.
    ``owner`` names what drives it in error messages (e.g. ``"the KernelManager of
    'python3'"``); ``error`` is the class raised when it is used once closed, or
    blocked on from its own thread (which would wait forever).
    """

    __slots__ = (
        "_close_requested",
        "_closed",
        "_error",
        "_holders",
        "_lock",
        "_loop",
        "_name",
        "_owner",
        "_thread",
    )

    def __init__(
        self,
        name: str,
        *,
        owner: str | None = None,
        error: type[KernelError] = KernelError,
    ) -> None:
        self._name = name
        self._owner = owner if owner is not None else f"the loop thread {name!r}"
        self._error = error
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._closed = False
        self._holders = 0
        self._close_requested = False

    def __repr__(self) -> str:
        state = "closed" if self._closed else "running" if self._loop is not None else "new"
        return f"<LoopThread {self._name} {state}, {self._holders} holders>"

    @property
    def name(self) -> str:
        return self._name

    @property
    def loop(self) -> asyncio.AbstractEventLoop | None:
        """The event loop (None before :meth:`start`)."""
        return self._loop

    @property
    def closed(self) -> bool:
        return self._closed

    def in_thread(self) -> bool:
        """True when called on this loop's own thread."""
        thread = self._thread
        return thread is not None and thread.ident == threading.get_ident()

    # -- starting and using ----------------------------------------------------------

    def start(self) -> asyncio.AbstractEventLoop:
        """Start the thread (if not yet started) and return its loop.

        Raises:
            KernelError (``error``): it was closed.
        """
        loop = self._loop
        if loop is not None and not self._closed:
            return loop
        with self._lock:
            if self._closed:
                raise self._error(f"{self._owner} is closed")
            if self._loop is not None:
                return self._loop
            loop = asyncio.new_event_loop()
            thread = threading.Thread(target=_main, args=(loop,), name=self._name, daemon=True)
            # Callbacks scheduled before run_forever begins simply wait for it.
            thread.start()
            self._loop, self._thread = loop, thread
            return loop

    def _refuse_own_thread(self) -> None:
        if self.in_thread():
            raise self._error(
                f"a blocking method of {self._owner} was called on its own loop thread "
                "(from a callback or handler?): that would wait forever; use its asyncio "
                "twin there"
            )

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on the loop and wait in this thread for its result.

        If the wait is interrupted (KeyboardInterrupt, ...), ``coro`` is cancelled too.

        Raises:
            KernelError (``error``): the thread is closed, or this is its own thread.
            Exception: whatever ``coro`` raised.
        """
        try:
            loop = self.start()
            self._refuse_own_thread()
            try:
                future = asyncio.run_coroutine_threadsafe(coro, loop)
            except RuntimeError:  # the loop closed between start() and here
                raise self._error(f"{self._owner} was closed") from None
        except BaseException:
            coro.close()
            raise
        try:
            return future.result()
        except CancelledError:
            if self._closed:  # cancelled by the wind-down of close()
                raise self._error(f"{self._owner} was closed") from None
            raise
        except BaseException:
            future.cancel()  # e.g. KeyboardInterrupt: stop the operation on the loop too
            raise

    def call(self, fn: Callable[..., T], *args: Any) -> T:
        """Call a plain function on the loop thread and return its result.

        Called directly when nothing else can run it: on the loop thread itself, and
        before the thread starts or after it closed.
        """
        loop = self._loop
        if loop is None or self._closed or self.in_thread():
            return fn(*args)
        result: Future[T] = Future()

        def call() -> None:
            try:
                result.set_result(fn(*args))
            except BaseException as exc:
                result.set_exception(exc)

        try:
            loop.call_soon_threadsafe(call)
        except RuntimeError:  # closed meanwhile: nothing else runs it any more
            return fn(*args)
        return result.result()

    def call_soon_threadsafe(self, fn: Callable[..., object], *args: Any) -> None:
        """Schedule ``fn(*args)`` on the loop (from any thread); does not wait.

        Raises:
            KernelError (``error``): the thread is not started, or closed.
        """
        loop = self._loop
        if loop is None:
            raise self._error(f"{self._owner} is not started")
        try:
            loop.call_soon_threadsafe(fn, *args)
        except RuntimeError:  # the loop is closed
            raise self._error(f"{self._owner} was closed") from None

    # -- sharing and closing ---------------------------------------------------------

    def hold(self) -> bool:
        """Count one more user: the thread outlives :meth:`close_when_released` until
        that user calls :meth:`release`. False (and nothing counted) once closed."""
        with self._lock:
            if self._closed:
                return False
            self._holders += 1
            return True

    def release(self) -> None:
        """One user is done (see :meth:`hold`)."""
        with self._lock:
            self._holders -= 1
            done = self._close_requested and self._holders <= 0
        if done:
            self.close()

    def close_when_released(self) -> None:
        """Close now if nobody holds the thread, else when the last holder releases it."""
        with self._lock:
            self._close_requested = True
            done = self._holders <= 0
        if done:
            self.close()

    def close(self) -> None:
        """Stop the loop and wait for the thread to wind it down; does nothing twice.

        Tasks still running are cancelled. From the loop's own thread (a callback), the
        loop stops once that callback returns, and nothing waits for it.
        """
        with self._lock:
            if self._closed:
                return
            self._closed = True
            loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        if thread.ident == threading.get_ident():
            loop.stop()
            return
        with contextlib.suppress(RuntimeError):  # already closed (stopped on its own thread)
            loop.call_soon_threadsafe(loop.stop)
        thread.join()


def _main(loop: asyncio.AbstractEventLoop) -> None:
    """The thread: run the loop until stopped, then wind it down here, on this thread."""
    asyncio.set_event_loop(loop)
    try:
        loop.run_forever()
    finally:
        try:
            _cancel_all_tasks(loop)
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.run_until_complete(loop.shutdown_default_executor())
        finally:
            asyncio.set_event_loop(None)
            loop.close()


def _cancel_all_tasks(loop: asyncio.AbstractEventLoop) -> None:
    tasks = [t for t in asyncio.all_tasks(loop) if not t.done()]
    if not tasks:
        return
    for task in tasks:
        task.cancel()
    loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
    for task in tasks:
        # As asyncio.run does: a task that failed instead of ending goes to the loop's
        # exception handler (which logs it), not nowhere.
        if not task.cancelled() and task.exception() is not None:
            loop.call_exception_handler(
                {
                    "message": "a task failed while its loop thread was closing",
                    "exception": task.exception(),
                    "task": task,
                }
            )
