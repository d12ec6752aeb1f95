"""The blocking face of the client core, and its subshell views.

:class:`KernelClient` drives an :class:`AsyncKernelClient`'s core from one event-loop
thread, started by :meth:`KernelClient.start` (or ``with``) and stopped by
:meth:`KernelClient.close`. It decides nothing: requests are described once
(:mod:`kernelkit.client._requests`) and handed to the loop thread by a
:class:`~kernelkit.client._driver.Driver`; hooks (output, stdin) run in the calling
thread, in order.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Callable, Collection
from functools import partial
from types import TracebackType

from kernelkit._connection import ConnectionInfo, read_connection_file
from kernelkit._errors import ClientClosed, KernelError
from kernelkit._loopthread import LoopThread
from kernelkit.client import _requests as rq
from kernelkit.client._async import (
    DEFAULT_FIRST_CONTACT_TIMEOUT,
    DEFAULT_SILENCE_TIMEOUT,
    AsyncKernelClient,
)
from kernelkit.client._async import default_transport as _default_transport
from kernelkit.client._blocking_requests import BlockingRequests
from kernelkit.client._core import ClientCore, check_channels
from kernelkit.client._driver import Driver
from kernelkit.client._streams import MessageStream
from kernelkit.protocol import Message, Session
from kernelkit.transport import Transport

__all__ = ["KernelClient", "Subshell"]


class KernelClient(BlockingRequests):
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
        silence_timeout: float | None = DEFAULT_SILENCE_TIMEOUT,
        nanny: ConnectionInfo | None = None,
        loop_thread: LoopThread | None = None,
    ) -> None:
        client = AsyncKernelClient(
            transport,
            kernel_name=kernel_name,
            heartbeat=heartbeat,
            heartbeat_interval=heartbeat_interval,
            heartbeat_timeout=heartbeat_timeout,
            first_contact_timeout=first_contact_timeout,
            silence_timeout=silence_timeout,
            nanny=nanny,
        )
        self._setup(client, loop_thread)

    def _setup(self, client: AsyncKernelClient, loop_thread: LoopThread | None) -> None:
        self._client = client
        self._core: ClientCore = client.core
        self._owns_thread = loop_thread is None
        thread = (
            loop_thread
            if loop_thread is not None
            else LoopThread(
                f"kernelkit-client-{client.kernel_name}",
                owner=f"the client for kernel {client.kernel_name}",
                error=ClientClosed,
            )
        )
        self._driver = Driver(self._core, thread)
        self._held = False  # holds the shared loop thread (from start until close)
        self._lock = threading.Lock()

    def _target(self, subshell_id: str | None) -> str | None:
        return subshell_id

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
            if client.core.loop is not loop_thread.loop:
                raise ClientClosed(
                    f"the client for kernel {client.kernel_name} runs on another event loop "
                    f"than {loop_thread.name}'s"
                )
            self._hold()
            self._driver.started = True
        return self

    def _hold(self) -> None:
        thread = self._driver.thread
        if not thread.hold():
            raise ClientClosed(
                f"the client for kernel {self.kernel_name} cannot start: its loop thread "
                f"{thread.name} is closed"
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
        silence_timeout: float | None = DEFAULT_SILENCE_TIMEOUT,
        watch_nanny: bool = False,
        loop_thread: LoopThread | None = None,
    ) -> KernelClient:
        """A client for the kernel ``info`` describes, over ZeroMQ (not yet started).
        ``watch_nanny``: as :meth:`AsyncKernelClient.from_connection_info`'s."""
        return cls(
            _default_transport(info, session),
            kernel_name=info.kernel_name,
            heartbeat=heartbeat,
            heartbeat_interval=heartbeat_interval,
            heartbeat_timeout=heartbeat_timeout,
            first_contact_timeout=first_contact_timeout,
            silence_timeout=silence_timeout,
            nanny=info if watch_nanny else None,
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
        silence_timeout: float | None = DEFAULT_SILENCE_TIMEOUT,
        watch_nanny: bool = True,
        loop_thread: LoopThread | None = None,
    ) -> KernelClient:
        """A client for a running kernel, from its connection file (not yet started).

        ``check_mode`` refuses a file that others may read (it holds the key);
        ``watch_nanny``: as :meth:`AsyncKernelClient.from_connection_file`'s (the
        kernel's death is told the moment it happens, when the file names its nanny).

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
            silence_timeout=silence_timeout,
            watch_nanny=watch_nanny,
            loop_thread=loop_thread,
        )

    # -- state -------------------------------------------------------------------------

    @property
    def async_client(self) -> AsyncKernelClient:
        """The asyncio client this one drives (use it only on :attr:`loop`)."""
        return self._client

    @property
    def core(self) -> ClientCore:
        """The client core this face drives (shared with :attr:`async_client`)."""
        return self._core

    @property
    def loop(self) -> asyncio.AbstractEventLoop | None:
        """The event loop of this client's thread (None when not started)."""
        return self._driver.thread.loop if self._driver.started else None

    @property
    def loop_thread(self) -> LoopThread:
        """The loop thread this client runs on (its own, or a shared one)."""
        return self._driver.thread

    @property
    def transport(self) -> Transport:
        return self._core.transport

    @property
    def session(self) -> Session:
        return self._core.session

    @property
    def kernel_name(self) -> str:
        return self._core.kernel_name

    @property
    def closed(self) -> bool:
        return self._driver.closed

    @property
    def started(self) -> bool:
        return self._driver.started

    @property
    def dead_error(self) -> KernelError | None:
        """See :attr:`AsyncKernelClient.dead_error`."""
        return self._core.dead_error

    @property
    def is_alive(self) -> bool:
        """See :attr:`AsyncKernelClient.is_alive`."""
        return self._driver.started and not self._driver.closed and self._client.is_alive

    @property
    def kernel_info_reply(self) -> Message | None:
        """The last ``kernel_info_reply`` received (None before the first)."""
        self._driver.caught_up()
        return self._core.kernel_info_reply

    @property
    def execution_state(self) -> str | None:
        """The kernel's last reported ``execution_state``."""
        self._driver.caught_up()
        return self._core.execution_state

    @property
    def pending_requests(self) -> int:
        """How many requests are in flight."""
        return self._core.pending_requests

    @property
    def rejected_messages(self) -> int:
        """How many received messages failed verification and were dropped."""
        return self._core.rejected_messages

    @property
    def direct_io(self) -> bool:
        """Shell requests do their socket I/O in the calling thread (default True).

        Over ZeroMQ, one thread at a time sends its request and reads the answer itself,
        instead of handing both to the loop thread: two thread wake-ups less per request.
        Other threads, and other transports, use the loop thread. Set False to always
        use the loop thread.
        """
        return self._driver.direct_io

    @direct_io.setter
    def direct_io(self, value: bool) -> None:
        self._driver.direct_io = bool(value)

    # -- lifecycle ---------------------------------------------------------------------

    def start(self) -> None:
        """Start the loop thread (if this client owns it) and connect. Does nothing if
        started.

        Raises:
            ClientClosed: the client was closed, or its shared loop thread is.
        """
        driver = self._driver
        with self._lock:
            if driver.closed:
                raise ClientClosed(f"the client for kernel {self.kernel_name} is closed")
            if driver.started:
                return
            if not self._owns_thread:
                self._hold()
            driver.thread.start()
            driver.started = True
        try:
            driver.run(self._client.start())
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        """Close the client: pending calls fail with ClientClosed. Stops the loop thread if
        the client owns it, else lets go of the shared one.

        On a shared loop thread (in a manager's callback, say) it returns at once and the
        closing finishes on the loop; on a thread of the client's own it is refused.
        """
        driver = self._driver
        if driver.thread.in_thread():
            if self._owns_thread:
                raise KernelError("KernelClient.close() called from its own loop thread (a hook)")
            self._close_on_loop()
            return
        with self._lock:
            if driver.closed:
                return
            driver.closed = True
            started = driver.started
        try:
            if started:
                driver.thread.run(self._shut_down())
        finally:
            self._let_go()

    def _close_on_loop(self) -> None:
        driver = self._driver
        with self._lock:
            if driver.closed:
                return
            driver.closed = True
            started = driver.started
        if not started:
            self._let_go()
            return
        task = asyncio.get_running_loop().create_task(self._shut_down())
        task.add_done_callback(lambda _: self._let_go())

    def _let_go(self) -> None:
        """Stop the thread this client owns, or release the shared one."""
        if self._owns_thread:
            self._driver.thread.close()
        elif self._held:
            self._held = False
            self._driver.thread.release()

    async def _shut_down(self) -> None:
        """Close the async client, then end what this client still runs on the loop."""
        await self._client.aclose()
        await asyncio.sleep(0)  # let the requests aclose failed take their ClientClosed
        tasks = [t for t in self._driver.tasks if not t.done()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

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
        if not self._driver.closed:
            self._core.notify_dead(error)

    def notify_restarted(self, info: ConnectionInfo | None = None) -> None:
        """See :meth:`AsyncKernelClient.notify_restarted` (safe from any thread; does
        nothing once the client is closed)."""
        if not self._driver.closed:
            self._core.notify_restarted(info)

    # -- requests ----------------------------------------------------------------------

    def wait_for_ready(self, timeout: float | None = 60.0) -> Message:
        """See :meth:`AsyncKernelClient.wait_for_ready`."""
        return self._driver.run(self._core.wait_for_ready(timeout))

    def input(self, value: str, *, parent: Message | None = None) -> None:
        """See :meth:`AsyncKernelClient.input`."""
        self._driver.call(self._send_input, value, parent)

    def _send_input(self, value: str, parent: Message | None) -> None:  # the loop thread
        core = self._core
        core.check_usable()
        request = rq.input_reply(value, parent if parent is not None else core.last_input_request)
        core.send(request, core.build(request, None))

    def shutdown(self, restart: bool = False, *, timeout: float | None = None) -> Message:
        """See :meth:`AsyncKernelClient.shutdown`."""
        return self._driver.ask(rq.shutdown(restart), None, timeout)

    def interrupt(self, *, timeout: float | None = None) -> Message:
        """See :meth:`AsyncKernelClient.interrupt`."""
        return self._driver.ask(rq.interrupt(), None, timeout)

    def supports(self, feature: str, *, timeout: float | None = None) -> bool:
        """See :meth:`AsyncKernelClient.supports`."""
        return self._driver.run(self._core.supports(feature, timeout=timeout))

    def create_subshell(self, *, timeout: float | None = 30.0) -> Subshell:
        """See :meth:`AsyncKernelClient.create_subshell`."""
        reply = self._driver.ask(rq.create_subshell(), None, timeout)
        return Subshell(self, rq.subshell_id_of(reply, kernel=self.kernel_name), self._driver)

    def list_subshells(self, *, timeout: float | None = 30.0) -> list[str]:
        """See :meth:`AsyncKernelClient.list_subshells`."""
        return rq.subshell_ids_of(self._driver.ask(rq.list_subshells(), None, timeout))

    def delete_subshell(self, subshell_id: str, *, timeout: float | None = 30.0) -> None:
        """See :meth:`AsyncKernelClient.delete_subshell`."""
        self._driver.ask(rq.delete_subshell(subshell_id), None, timeout)

    # -- received messages -------------------------------------------------------------

    def add_iopub_handler(self, handler: Callable[[Message], None]) -> Callable[[], None]:
        """See :meth:`AsyncKernelClient.add_iopub_handler`; ``handler`` runs on the loop
        thread. Returns a function (callable from any thread) that removes it."""
        driver = self._driver
        remove = driver.call(partial(self._core.subscribe, handler))
        return partial(driver.call_quietly, remove)

    def iopub_messages(self, *, maxsize: int | None = None) -> MessageStream:
        """Every IOPub message from now on, as a blocking iterator (close it when done)."""
        return self.messages(("iopub",), maxsize=maxsize)

    def messages(
        self,
        channels: Collection[str] = ("shell", "control", "stdin"),
        *,
        maxsize: int | None = None,
    ) -> MessageStream:
        """See :meth:`AsyncKernelClient.messages`; a blocking iterator."""
        chosen = check_channels(channels)
        driver = self._driver
        core = self._core

        def subscribe(
            handler: Callable[[Message], None], on_close: Callable[[], None]
        ) -> Callable[[], None]:
            def on_loop() -> Callable[[], None]:
                if core.closed:
                    on_close()
                    return _nothing
                return core.subscribe(handler, channels=chosen, on_close=on_close)

            return partial(driver.call_quietly, driver.call(on_loop))

        return MessageStream(subscribe, channels=chosen, maxsize=maxsize)

    def __repr__(self) -> str:
        return f"<KernelClient {self._client!r}>"


def _nothing() -> None:
    pass


class Subshell(BlockingRequests):
    """A subshell (JEP 91), blocking: see :class:`AsyncSubshell`. ``close()`` deletes it."""

    def __init__(self, client: KernelClient, subshell_id: str, driver: Driver) -> None:
        self._client = client
        self._driver = driver
        self._subshell_id = subshell_id
        self._closed = False

    def __repr__(self) -> str:
        return f"<Subshell {self._subshell_id} of {self._client!r}>"

    def _target(self, subshell_id: str | None) -> str | None:
        if self._closed:
            raise ClientClosed(f"subshell {self._subshell_id} is closed (deleted)")
        return self._subshell_id if subshell_id is None else subshell_id

    @property
    def subshell_id(self) -> str:
        return self._subshell_id

    @property
    def client(self) -> KernelClient:
        return self._client

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self, *, timeout: float | None = 30.0) -> None:
        """Delete the subshell in the kernel (nothing to do if the client is gone)."""
        if self._closed:
            return
        self._closed = True
        client = self._client
        if client.closed or client.dead_error is not None:
            return
        client.delete_subshell(self._subshell_id, timeout=timeout)

    def __enter__(self) -> Subshell:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
