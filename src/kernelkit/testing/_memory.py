"""The fake kernel in memory: a :class:`KernelCore` on the far side of a MemoryTransport."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable, Mapping
from types import TracebackType
from typing import Any

from kernelkit._errors import KernelTimeout
from kernelkit.protocol import Message
from kernelkit.testing._core import (
    DEFAULT_FEATURES,
    Action,
    Exit,
    KernelCore,
    ProtocolViolation,
    Send,
    Sleep,
)
from kernelkit.transport import MemoryTransport

__all__ = ["FakeKernel"]


class FakeKernel:
    """A strict fake kernel serving a :class:`~kernelkit.transport.MemoryTransport`.

    Use it from async code (it runs as a task on the running loop)::

        transport = MemoryTransport()
        async with AsyncKernelClient(transport) as client, FakeKernel(transport) as kernel:
            reply = await client.execute("print hello")
        # leaving the block raised AssertionError if the client broke the protocol

    Or ``kernel = FakeKernel(transport).start()`` and ``await kernel.stop()``; it may start
    before or after the client connects the transport. What the
    client does wrong (a request on the wrong channel, an unknown message type, an
    unasked ``input_reply``) is never answered and is kept in :attr:`errors`;
    :meth:`stop` and :meth:`assert_no_errors` raise ``AssertionError`` listing them.

    The keyword arguments are :class:`KernelCore`'s. ``exit N`` (or a shutdown_request)
    ends it like a dead process: nothing more is answered and the heartbeat stops
    (``transport.alive`` becomes False).
    """

    def __init__(
        self,
        transport: MemoryTransport,
        *,
        features: Iterable[str] = DEFAULT_FEATURES,
        language_info: Mapping[str, Any] | None = None,
        protocol_version: str = "5.3",
        welcome: bool = True,
        interruptible: bool = True,
        ignore_shutdown: bool = False,
    ) -> None:
        self.transport = transport
        self.core = KernelCore(
            transport.kernel_session,
            features=features,
            language_info=language_info,
            protocol_version=protocol_version,
            welcome=welcome,
            interruptible=interruptible,
            ignore_shutdown=ignore_shutdown,
        )
        self._task: asyncio.Task[None] | None = None
        self._timers: dict[int, asyncio.TimerHandle] = {}

    # -- what a test reads ---------------------------------------------------------------

    @property
    def received(self) -> list[tuple[str, Message]]:
        """Every message the client sent, as ``(channel, message)``."""
        return self.core.received

    @property
    def errors(self) -> list[ProtocolViolation]:
        """What the client did wrong, in order (a test may clear it)."""
        return self.core.errors

    @property
    def subshells(self) -> list[str]:
        """Live subshell ids."""
        return self.core.subshells

    @property
    def execution_count(self) -> int:
        return self.core.execution_count

    @property
    def exit_code(self) -> int | None:
        """Set once the kernel has exited (``exit N``, or a shutdown_request)."""
        return self.core.exit_code

    def of_type(self, msg_type: str) -> list[Message]:
        """The received messages of one type, in order."""
        return [m for _, m in self.core.received if m.msg_type == msg_type]

    def assert_no_errors(self) -> None:
        """Raise AssertionError listing every protocol violation seen so far."""
        if self.core.errors:
            lines = "\n".join(f"  {e}" for e in self.core.errors)
            raise AssertionError(f"the client broke the protocol:\n{lines}")

    # -- running ---------------------------------------------------------------------------

    def start(self) -> FakeKernel:
        """Start serving on the running event loop (welcomes IOPub first); returns self."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._serve())
        return self

    async def stop(self, *, check: bool = True) -> None:
        """Stop serving; then, with ``check``, :meth:`assert_no_errors`."""
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if check:
            self.assert_no_errors()

    def interrupt(self) -> None:
        """Interrupt as SIGINT would (``sleep`` and ``input`` end with KeyboardInterrupt)."""
        self._perform(self.core.interrupt())

    async def __aenter__(self) -> FakeKernel:
        return self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop(check=exc is None)

    async def _serve(self) -> None:
        first = await self._connected()
        if first is None and self.transport.closed:
            return
        self._perform(self.core.welcome())  # a new subscriber is welcomed first
        if first is not None:
            self._perform(self.core.receive(*first))
        while self.core.exit_code is None:
            channel, message = await self.transport.receive(timeout=None)
            self._perform(self.core.receive(channel, message))

    async def _connected(self) -> tuple[str, Message] | None:
        """Wait until a client has connected the transport (the kernel may start first);
        the first message, if one came with it."""
        if not await self.transport.wait_connected():
            return None
        try:
            return await self.transport.receive(timeout=0)
        except KernelTimeout:
            return None  # connected, nothing sent yet

    def _perform(self, actions: list[Action]) -> None:
        for action in actions:
            if isinstance(action, Send):
                self.transport.deliver(action.channel, action.message)
            elif isinstance(action, Sleep):
                loop = asyncio.get_running_loop()
                timer = loop.call_later(action.seconds, self._wake, action.token)
                self._timers[action.token] = timer
            elif isinstance(action, Exit):
                self.transport.alive = False  # a dead kernel: the heartbeat stops too

    def _wake(self, token: int) -> None:
        self._timers.pop(token, None)
        self._perform(self.core.wake(token))
