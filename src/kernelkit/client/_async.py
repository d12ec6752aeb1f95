"""The asyncio face of the client core, and subshells as views of it.

One :class:`AsyncKernelClient` talks to one kernel through one :class:`Transport`, by
way of its :class:`~kernelkit.client._core.ClientCore`. Many requests may be in flight at
once, and many clients may share a loop. :class:`AsyncSubshell` is the same request API
bound to one JEP 91 subshell of that kernel.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Collection
from types import TracebackType

from kernelkit._connection import ConnectionInfo, read_connection_file
from kernelkit._errors import ClientClosed, KernelError
from kernelkit.client import _requests as rq
from kernelkit.client._async_requests import AsyncRequests
from kernelkit.client._core import (
    DEFAULT_FIRST_CONTACT_TIMEOUT,
    DEFAULT_SILENCE_TIMEOUT,
    ClientCore,
    check_channels,
)
from kernelkit.client._nanny import NannyWatch
from kernelkit.client._streams import AsyncMessageStream
from kernelkit.protocol import Message, Session
from kernelkit.transport import Transport, ZMQTransport

__all__ = [
    "DEFAULT_FIRST_CONTACT_TIMEOUT",
    "DEFAULT_SILENCE_TIMEOUT",
    "AsyncKernelClient",
    "AsyncSubshell",
    "default_transport",
]


def default_transport(info: ConnectionInfo, session: Session | None = None) -> Transport:
    """The transport ``from_connection_info`` uses: ZeroMQ, with a fresh identity."""
    return ZMQTransport(info, session)


class AsyncKernelClient(AsyncRequests):
    """Talks to one kernel over ``transport`` (asyncio).

    Open with ``async with client:`` or ``await client.start()``; close with ``aclose``.

    ``heartbeat`` (on by default, when the transport supports it) pings the kernel every
    ``heartbeat_interval`` seconds. Once it has answered at least once, a ping left
    unanswered for ``heartbeat_timeout`` seconds marks it unresponsive (logged; a busy
    kernel whose heartbeat shares its thread misses beats): pending requests keep their
    own timeouts. Only when it stays silent (no echo, no message) for ``silence_timeout``
    seconds (default 30) do pending requests fail with :class:`HeartbeatTimeout`, and new
    ones fail at once until it answers again. ``silence_timeout=None`` never declares
    death by silence: a manager's clients use it, the manager reports the process's exit.

    ``nanny``: the connection info of a kernel under a nanny (``info.nanny`` set); the
    client subscribes to it when it starts, and its requests fail with
    :class:`~kernelkit.KernelDied` (exit status, last output) the moment the kernel dies.

    A kernel that has never answered (a heartbeat or any message) may still be starting,
    or may not be there at all (a stale connection file). ``first_contact_timeout``
    (seconds, default 10; None: no limit) bounds that: past it, pending and new requests
    fail with :class:`HeartbeatTimeout` saying the kernel never answered, until it does.
    While :meth:`wait_for_ready` runs, its own timeout is the limit instead. Without a
    heartbeat nothing watches the kernel's life (nor its first contact).

    Raises:
        ValueError: a heartbeat interval or timeout that is not positive.
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
    ) -> None:
        self._core = ClientCore(
            transport,
            kernel_name=kernel_name,
            heartbeat=heartbeat,
            heartbeat_interval=heartbeat_interval,
            heartbeat_timeout=heartbeat_timeout,
            first_contact_timeout=first_contact_timeout,
            silence_timeout=silence_timeout,
        )
        self._nanny = NannyWatch(nanny, self._core) if nanny is not None and nanny.nanny else None

    def _target(self, subshell_id: str | None) -> str | None:
        return subshell_id

    # -- construction ------------------------------------------------------------------

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
    ) -> AsyncKernelClient:
        """A client for the kernel ``info`` describes, over ZeroMQ (not yet started).

        ``watch_nanny``: subscribe to the kernel's nanny, when ``info`` names one (a
        manager's clients need not: the manager tells them).
        """
        return cls(
            default_transport(info, session),
            kernel_name=info.kernel_name,
            heartbeat=heartbeat,
            heartbeat_interval=heartbeat_interval,
            heartbeat_timeout=heartbeat_timeout,
            first_contact_timeout=first_contact_timeout,
            silence_timeout=silence_timeout,
            nanny=info if watch_nanny else None,
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
    ) -> AsyncKernelClient:
        """A client for a running kernel, from its connection file (not yet started).

        ``check_mode`` refuses a file that others may read (it holds the key). When the
        file names the kernel's nanny (``kernelkit_nanny``) the client subscribes to it
        (``watch_nanny``): it learns of the kernel's death the moment it happens.

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
        )

    # -- state -------------------------------------------------------------------------

    @property
    def core(self) -> ClientCore:
        """The client core this face drives (a blocking face may drive it too)."""
        return self._core

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
        return self._core.closed

    @property
    def started(self) -> bool:
        return self._core.loop is not None

    @property
    def dead_error(self) -> KernelError | None:
        """Why the kernel is gone (``notify_dead``, a lost transport), or None.

        Requests fail with this error until :meth:`notify_restarted`.
        """
        return self._core.dead_error

    @property
    def is_alive(self) -> bool:
        """True while started, not closed, not dead and its heartbeat (if any) answers."""
        core = self._core
        return core.loop is not None and not core.closed and core.unusable is None

    @property
    def kernel_info_reply(self) -> Message | None:
        """The last ``kernel_info_reply`` received (None before the first)."""
        return self._core.kernel_info_reply

    @property
    def execution_state(self) -> str | None:
        """The kernel's last reported ``execution_state`` (busy, idle, starting, ...)."""
        return self._core.execution_state

    @property
    def pending_requests(self) -> int:
        """How many requests are in flight."""
        return self._core.pending_requests

    @property
    def rejected_messages(self) -> int:
        """How many received messages failed verification and were dropped."""
        return self._core.rejected_messages

    # -- lifecycle ---------------------------------------------------------------------

    async def start(self) -> None:
        """Connect the transport and start the heartbeat. Does nothing if started.

        Raises:
            ClientClosed: the client was closed.
        """
        await self._core.start()
        if self._nanny is not None:
            self._nanny.start()

    async def aclose(self) -> None:
        """Close the transport; pending requests fail with :class:`ClientClosed`."""
        if self._nanny is not None:
            await self._nanny.aclose()
        await self._core.aclose()

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
        self._core.notify_dead(error)

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
        self._core.notify_restarted(info)

    # -- readiness ---------------------------------------------------------------------

    async def wait_for_ready(self, timeout: float | None = 60.0) -> Message:
        """Wait until the kernel answers ``kernel_info`` and IOPub delivers to this client.

        Returns the ``kernel_info_reply``. No fixed sleeps: it returns as soon as both
        the reply and a first IOPub message (welcome or status) have arrived.

        Raises:
            KernelTimeout: not ready within ``timeout`` seconds.
            KernelDied, HeartbeatTimeout: the kernel died meanwhile.
        """
        return await self._core.wait_for_ready(timeout)

    # -- stdin and control -------------------------------------------------------------

    async def input(self, value: str, *, parent: Message | None = None) -> None:
        """Send ``input_reply`` with ``value`` (for the last ``input_request`` by default)."""
        core = self._core
        core.check_usable()
        request = rq.input_reply(value, parent if parent is not None else core.last_input_request)
        core.send(request, core.build(request, None))

    async def shutdown(self, restart: bool = False, *, timeout: float | None = None) -> Message:
        """Ask the kernel to shut down (or restart) on the control channel; return the reply."""
        return await self._core.ask(rq.shutdown(restart), timeout=timeout)

    async def interrupt(self, *, timeout: float | None = None) -> Message:
        """Interrupt by message (``interrupt_request`` on control); return the reply."""
        return await self._core.ask(rq.interrupt(), timeout=timeout)

    # -- subshells (JEP 91) ------------------------------------------------------------

    async def supports(self, feature: str, *, timeout: float | None = None) -> bool:
        """True if the kernel lists ``feature`` in ``supported_features``.

        Uses the last ``kernel_info_reply``; asks for one first if there is none yet.
        """
        return await self._core.supports(feature, timeout=timeout)

    async def create_subshell(self, *, timeout: float | None = 30.0) -> AsyncSubshell:
        """Create a subshell: a handle whose requests run concurrently with the main shell.

        Raises:
            UnsupportedFeature: the kernel does not advertise ``kernel subshells``
                (nothing is sent).
            KernelError: the kernel refused.
        """
        reply = await self._core.ask(rq.create_subshell(), timeout=timeout)
        return AsyncSubshell(self, rq.subshell_id_of(reply, kernel=self._core.kernel_name))

    async def list_subshells(self, *, timeout: float | None = 30.0) -> list[str]:
        """The ids of the kernel's subshells (the main shell is not listed).

        Raises:
            UnsupportedFeature: the kernel does not advertise ``kernel subshells``.
        """
        return rq.subshell_ids_of(await self._core.ask(rq.list_subshells(), timeout=timeout))

    async def delete_subshell(self, subshell_id: str, *, timeout: float | None = 30.0) -> None:
        """Delete a subshell. Requests of this client still pending on it fail with
        :class:`KernelError` (the kernel never answers them).

        Raises:
            UnsupportedFeature: the kernel does not advertise ``kernel subshells``.
            KernelError: the kernel refused (e.g. no such subshell).
        """
        await self._core.ask(rq.delete_subshell(subshell_id), timeout=timeout)

    # -- received messages -------------------------------------------------------------

    def add_iopub_handler(self, handler: Callable[[Message], None]) -> Callable[[], None]:
        """Call ``handler`` with every IOPub message received (on the event loop).

        Returns a function that removes it. A handler that raises is logged, not removed.
        """
        return self._core.subscribe(handler)

    def iopub_messages(self, *, maxsize: int | None = None) -> AsyncMessageStream:
        """Every IOPub message from now on, as an async iterator (close it when done)."""
        return self.messages(("iopub",), maxsize=maxsize)

    def messages(
        self,
        channels: Collection[str] = ("shell", "control", "stdin"),
        *,
        maxsize: int | None = None,
    ) -> AsyncMessageStream:
        """Every message received on ``channels`` from now on (replies included, whoever
        waits for them), as an async iterator; close it when done.

        With ``maxsize`` the stream keeps at most that many unread messages, dropping
        the oldest (counted in its ``dropped``).

        Raises:
            LocalProtocolError: an unknown channel, or a bad ``maxsize``.
        """
        chosen = check_channels(channels)
        core = self._core

        def subscribe(
            handler: Callable[[Message], None], on_close: Callable[[], None]
        ) -> Callable[[], None]:
            if core.closed:
                on_close()
                return _nothing
            return core.subscribe(handler, channels=chosen, on_close=on_close)

        return AsyncMessageStream(subscribe, channels=chosen, maxsize=maxsize)

    def __repr__(self) -> str:
        return f"<AsyncKernelClient kernel={self._core.kernel_name} {self._core.describe()}>"


def _nothing() -> None:
    pass


class AsyncSubshell(AsyncRequests):
    """A subshell of a kernel (JEP 91): the client's shell requests, run beside the main
    shell.

    Made by :meth:`AsyncKernelClient.create_subshell`. Its shell messages carry
    ``header.subshell_id``; closing it (``aclose`` or ``async with``) deletes it.
    """

    def __init__(self, client: AsyncKernelClient, subshell_id: str) -> None:
        self._client = client
        self._core = client.core
        self._subshell_id = subshell_id
        self._closed = False

    def __repr__(self) -> str:
        return f"<AsyncSubshell {self._subshell_id} of {self._client!r}>"

    def _target(self, subshell_id: str | None) -> str | None:
        if self._closed:
            raise ClientClosed(f"subshell {self._subshell_id} is closed (deleted)")
        return self._subshell_id if subshell_id is None else subshell_id

    @property
    def subshell_id(self) -> str:
        return self._subshell_id

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
        if client.closed or client.dead_error is not None:
            return
        await client.delete_subshell(self._subshell_id, timeout=timeout)

    async def __aenter__(self) -> AsyncSubshell:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
