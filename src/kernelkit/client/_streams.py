"""Streams of received messages, per channel, for callers that do their own matching.

:class:`AsyncMessageStream` (an async iterator, on the client's loop) and
:class:`MessageStream` (a blocking iterator, any thread) collect every message the
client receives on the chosen channels from the moment they are made until they are
closed or the client closes. With ``maxsize``, a full stream drops its oldest message
to take the new one and counts it in ``dropped``; unbounded by default, so close a
stream when you stop reading.
"""

from __future__ import annotations

import asyncio
import collections
import queue
from collections.abc import Callable, Collection
from typing import Any

from kernelkit._errors import ClientClosed, KernelTimeout, LocalProtocolError
from kernelkit.protocol import Message

__all__ = [
    "AsyncMessageStream",
    "Handler",
    "MessageStream",
    "Subscribe",
    "Subscriptions",
    "check_channels",
]

#: Called with each message received on the channels it was registered for.
Handler = Callable[[Message], None]
#: Registers (handler, on_close) with the client; returns what unregisters both.
Subscribe = Callable[[Handler, Callable[[], None]], Callable[[], None]]

_END = object()
_MESSAGE_CHANNELS = frozenset(("shell", "control", "stdin", "iopub"))


def check_channels(channels: Collection[str]) -> tuple[str, ...]:
    """The channels, checked (a lone string is one channel).

    Raises:
        LocalProtocolError: an unknown channel, or none at all.
    """
    chosen = (channels,) if isinstance(channels, str) else tuple(channels)
    if not chosen or any(c not in _MESSAGE_CHANNELS for c in chosen):
        raise LocalProtocolError(
            f"messages arrive on shell, control, stdin and iopub; got {list(chosen)!r}"
        )
    return chosen


class Subscriptions:
    """Who gets the messages a client receives, per channel, and who is told at close.

    ``handlers`` maps a channel to a tuple, replaced on change: the receive path
    iterates it without a copy, and a handler that unsubscribes while being called
    disturbs no other.
    """

    __slots__ = ("_on_close", "handlers")

    def __init__(self) -> None:
        self.handlers: dict[str, tuple[Handler, ...]] = {}
        self._on_close: list[Callable[[], None]] = []

    def count(self) -> int:
        return sum(len(h) for h in self.handlers.values()) + len(self._on_close)

    def add(
        self,
        handler: Handler,
        channels: tuple[str, ...],
        on_close: Callable[[], None] | None,
    ) -> Callable[[], None]:
        """Register ``handler`` (and ``on_close``); returns what removes both."""
        handlers = self.handlers
        for channel in channels:
            handlers[channel] = (*handlers.get(channel, ()), handler)
        if on_close is not None:
            self._on_close.append(on_close)

        def remove() -> None:
            for channel in channels:
                left = list(handlers.get(channel, ()))
                if handler in left:
                    left.remove(handler)
                    if left:
                        handlers[channel] = tuple(left)
                    else:
                        handlers.pop(channel, None)
            if on_close is not None and on_close in self._on_close:
                self._on_close.remove(on_close)

        return remove

    def close(self) -> None:
        """Tell every ``on_close`` (the streams end), once."""
        ends, self._on_close = self._on_close, []
        for end in ends:
            end()


def _check_maxsize(maxsize: int | None) -> int:
    if maxsize is None:
        return 0
    if isinstance(maxsize, bool) or not isinstance(maxsize, int) or maxsize < 1:
        raise LocalProtocolError(f"maxsize must be a positive number of messages, got {maxsize!r}")
    return maxsize


class AsyncMessageStream:
    """Messages received on ``channels`` from now on, as an async iterator.

    Use as ``async with client.messages() as stream: async for msg in stream``; it ends
    when the stream or the client closes. Made by
    :meth:`~kernelkit.AsyncKernelClient.messages` and ``iopub_messages``.
    """

    def __init__(
        self, subscribe: Subscribe, *, channels: tuple[str, ...], maxsize: int | None = None
    ) -> None:
        self._maxsize = _check_maxsize(maxsize)
        self._queue: collections.deque[Any] = collections.deque()
        self._waiter: asyncio.Future[None] | None = None
        self._channels = channels
        self._dropped = 0
        self._remove = subscribe(self._put, self._end)

    @property
    def channels(self) -> tuple[str, ...]:
        return self._channels

    @property
    def dropped(self) -> int:
        """Messages dropped because the stream was full (``maxsize``)."""
        return self._dropped

    def _put(self, item: Any) -> None:
        items = self._queue
        if self._maxsize and len(items) >= self._maxsize and item is not _END:
            items.popleft()
            self._dropped += 1
        items.append(item)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _end(self) -> None:
        self._put(_END)

    def __aiter__(self) -> AsyncMessageStream:
        return self

    async def __anext__(self) -> Message:
        items = self._queue
        while not items:
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        item = items[0]
        if item is _END:  # stays ended for later readers
            raise StopAsyncIteration
        items.popleft()
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
            raise ClientClosed("the message stream is closed") from None
        except asyncio.TimeoutError:
            raise KernelTimeout(
                f"no message on {', '.join(self._channels)} within {timeout} s"
            ) from None

    def close(self) -> None:
        """Stop collecting messages (those already collected can still be read)."""
        self._remove()
        if not self._queue or self._queue[-1] is not _END:
            self._end()

    async def __aenter__(self) -> AsyncMessageStream:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()


class MessageStream:
    """Messages received on ``channels`` from now on, as a blocking iterator.

    Iterating ends when the stream or the client closes. Safe to read from any thread
    (one reader at a time). Made by :meth:`~kernelkit.KernelClient.messages` and
    ``iopub_messages``.
    """

    def __init__(
        self, subscribe: Subscribe, *, channels: tuple[str, ...], maxsize: int | None = None
    ) -> None:
        self._maxsize = _check_maxsize(maxsize)
        self._queue: queue.Queue[Any] | queue.SimpleQueue[Any] = (
            queue.Queue(self._maxsize) if self._maxsize else queue.SimpleQueue()
        )
        self._channels = channels
        self._dropped = 0
        self._closed = False
        self._remove = subscribe(self._put, self._end)

    @property
    def channels(self) -> tuple[str, ...]:
        return self._channels

    @property
    def dropped(self) -> int:
        """Messages dropped because the stream was full (``maxsize``)."""
        return self._dropped

    def _put(self, item: Any) -> None:  # the loop thread
        q = self._queue
        if isinstance(q, queue.Queue):
            while True:
                try:
                    q.put_nowait(item)
                    return
                except queue.Full:
                    try:
                        q.get_nowait()
                        self._dropped += 1
                    except queue.Empty:  # the reader took one meanwhile
                        pass
        q.put(item)

    def _end(self) -> None:
        self._put(_END)

    def __iter__(self) -> MessageStream:
        return self

    def __next__(self) -> Message:
        item = self._queue.get()
        if item is _END:
            self._put(_END)  # stay ended for later readers
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
            raise KernelTimeout(
                f"no message on {', '.join(self._channels)} within {timeout} s"
            ) from None
        if item is _END:
            self._put(_END)
            raise ClientClosed("the message stream is closed")
        msg: Message = item
        return msg

    def close(self) -> None:
        """Stop collecting messages (those already collected can still be read)."""
        if not self._closed:
            self._closed = True
            self._remove()
            self._end()

    def __enter__(self) -> MessageStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
