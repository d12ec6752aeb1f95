"""Whether the kernel is alive: the heartbeat, first contact, death and restarts.

:class:`Liveness` holds what a client knows about its kernel's life and decides when
pending requests must fail; the client core owns one and gives it a way to fail every
pending request and to count received messages (traffic proves the kernel alive too).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import Awaitable, Callable, Iterator

from kernelkit._errors import ClientClosed, HeartbeatTimeout, KernelError, KernelTimeout
from kernelkit.protocol import Message

__all__ = ["DEFAULT_SILENCE_TIMEOUT", "Liveness", "wait_until_ready"]

log = logging.getLogger("kernelkit.client")

#: How long a kernel nobody told us about (not owned) may stay silent (no heartbeat echo,
#: no message) before it is declared gone: a busy kernel whose heartbeat shares its one
#: thread (several Node-based kernels) misses beats for as long as its code runs.
DEFAULT_SILENCE_TIMEOUT = 30.0


class Liveness:
    """A kernel's life as one client sees it.

    ``error`` is what new requests fail with at once (None: usable): the kernel died
    (:meth:`mark_dead`), it stayed silent (no heartbeat echo, no message) for
    ``silence_timeout`` seconds, or it never answered within ``first_contact_timeout``
    seconds (while :meth:`wait_for_ready` runs, its own deadline is the limit instead).

    A ping left unanswered for ``timeout`` seconds only makes the kernel *unresponsive*
    (busy or hung; logged once per episode): pending requests keep their own timeouts.
    With ``silence_timeout=None`` (an owned kernel, whose owner reports its exit through
    :meth:`mark_dead`) silence alone never fails a request.
    """

    __slots__ = (
        "_answered",
        "_contact_mark",
        "_contact_since",
        "_fail_all",
        "_first_contact_timeout",
        "_hb_error",
        "_heard",
        "_interval",
        "_kernel",
        "_never_answered",
        "_ready_deadlines",
        "_silence_timeout",
        "_silent_since",
        "_timeout",
        "_url",
        "dead",
        "error",
        "unresponsive",
    )

    def __init__(
        self,
        *,
        kernel: str,
        heartbeat_url: str,
        interval: float,
        timeout: float,
        first_contact_timeout: float | None,
        silence_timeout: float | None = DEFAULT_SILENCE_TIMEOUT,
        heard: Callable[[], int],
        fail_all: Callable[[BaseException], None],
    ) -> None:
        if interval <= 0 or timeout <= 0:
            raise ValueError("heartbeat_interval and heartbeat_timeout must be positive")
        if first_contact_timeout is not None and first_contact_timeout <= 0:
            raise ValueError("first_contact_timeout must be positive seconds (or None)")
        if silence_timeout is not None and silence_timeout <= 0:
            raise ValueError("silence_timeout must be positive seconds (or None)")
        self._silence_timeout = silence_timeout
        self._silent_since: float | None = None  # loop time the kernel fell silent
        #: True while the kernel answered once but now misses heartbeats (busy or hung).
        self.unresponsive = False
        self._kernel = kernel
        self._url = heartbeat_url
        self._interval = interval
        self._timeout = timeout
        self._first_contact_timeout = first_contact_timeout
        self._heard = heard
        self._fail_all = fail_all
        #: Why the kernel is gone (notify_dead, a lost transport), or None.
        self.dead: KernelError | None = None
        #: What new requests fail with at once: ``dead`` or a heartbeat failure.
        self.error: KernelError | None = None
        self._hb_error: HeartbeatTimeout | None = None
        self._never_answered: HeartbeatTimeout | None = None
        self._answered = False  # the kernel answered a heartbeat since its start
        self._contact_since = 0.0  # loop time the wait for first contact began
        self._contact_mark = 0  # messages heard then: any message since is contact
        self._ready_deadlines: list[float] = []  # of the wait_for_ready calls running

    def _update(self) -> None:
        self.error = self.dead if self.dead is not None else self._hb_error

    def started(self, now: float) -> None:
        self._contact_since = now

    def mark_dead(self, error: KernelError) -> None:
        if self.dead is None:
            self.dead = error
            self._update()

    def restarted(self, now: float) -> None:
        """A new kernel: forget the old one's death and give it its first contact."""
        self.dead = None
        self._hb_error = None
        self._answered = False
        self._silent_since = None
        self.unresponsive = False
        self._contact_mark = self._heard()
        self._contact_since = now
        self._update()

    def begin_ready(self, deadline: float) -> None:
        """A wait_for_ready with this deadline (loop time, inf: none) starts."""
        if self._hb_error is not None and self._hb_error is self._never_answered:
            # Its own timeout is the limit now: the kernel may be slow to start.
            self._hb_error = None
            self._update()
        self._ready_deadlines.append(deadline)

    def end_ready(self, deadline: float) -> None:
        self._ready_deadlines.remove(deadline)

    @contextlib.contextmanager
    def waiting_ready(
        self, loop: asyncio.AbstractEventLoop | None, timeout: float | None
    ) -> Iterator[None]:
        """A wait_for_ready of ``timeout`` seconds runs on ``loop`` (None: not started,
        or closed: nothing to note) within this block."""
        if loop is None:
            yield
            return
        limit = math.inf if timeout is None else loop.time() + timeout
        self.begin_ready(limit)
        try:
            yield
        finally:
            self.end_ready(limit)

    async def run(self, ping: Callable[[float], Awaitable[bool]], now: Callable[[], float]) -> None:
        """The heartbeat: one ping per interval until cancelled or the transport closes."""
        interval = self._interval
        timeout = self._timeout
        while True:
            heard = self._heard()
            try:
                alive = await ping(timeout)
            except ClientClosed:
                return
            if alive or self._heard() != heard:
                # An echo, or (no echo but) the kernel kept sending: an output flood from
                # a kernel whose heartbeat shares its one thread is alive, only late.
                self._answered = self._answered or alive
                self._hb_error = None  # a kernel that answers again is usable again
                if self.unresponsive:
                    self.unresponsive = False
                    log.info("kernel %s answers its heartbeat again", self._kernel)
                self._silent_since = None
            elif self._hb_error is None and self.dead is None:
                if self._answered:
                    self._missed(now() - timeout)
                elif self._first_contact_overdue(now()):
                    # It never answered: until the limit it may still be starting.
                    self._hb_error = self._never_answered = HeartbeatTimeout(
                        f"kernel {self._kernel} never answered at {self._url}: no heartbeat "
                        f"or message within {self._first_contact_timeout:g} s; is it "
                        "running? Its connection file may be stale (a kernel that is gone, "
                        "or ports now unused)"
                    )
                    self._update()
                    self._fail_all(self._hb_error)
            self._update()
            await asyncio.sleep(interval)  # the beat: one ping per interval

    def _missed(self, since: float) -> None:
        """A ping sent at ``since`` (loop time) went unanswered, and nothing else came."""
        if self._silent_since is None:
            self._silent_since = since
        if not self.unresponsive:
            self.unresponsive = True
            log.warning(
                "kernel %s is unresponsive: it did not answer its heartbeat within %g s "
                "(busy running code, or hung); pending requests keep their own timeouts",
                self._kernel,
                self._timeout,
            )
        limit = self._silence_timeout
        if limit is None or since - self._silent_since + self._timeout < limit:
            return
        self._hb_error = HeartbeatTimeout(
            f"kernel {self._kernel} did not answer its heartbeat nor send anything for "
            f"{limit:g} s (silence_timeout): it is dead, hung or unreachable"
        )
        self._update()
        self._fail_all(self._hb_error)

    def _first_contact_overdue(self, now: float) -> bool:
        limit = self._first_contact_timeout
        if limit is None or self._heard() != self._contact_mark:
            return False
        deadline = self._contact_since + limit
        if self._ready_deadlines:
            deadline = max(deadline, *self._ready_deadlines)
        return now >= deadline


async def wait_until_ready(
    ask: Callable[[float | None], Awaitable[Message]],
    iopub_seen: asyncio.Event,
    loop: asyncio.AbstractEventLoop,
    *,
    timeout: float | None,
    kernel: str,
) -> Message:
    """Ask ``kernel_info`` (with ``ask(timeout)``) until answered and until an IOPub
    message has arrived (``iopub_seen``); return the last reply.

    Raises:
        KernelTimeout: not both within ``timeout`` seconds (the message says which).
    """
    deadline = None if timeout is None else loop.time() + timeout

    async def ask_within(within: float | None) -> Message:
        try:
            return await ask(within)
        except KernelTimeout:
            raise KernelTimeout(
                f"kernel {kernel} not ready within {timeout} s: no kernel_info_reply"
            ) from None

    # A request sent while the kernel's socket was going away (a restart) or not yet
    # bound can be lost without a trace: ask again every 1-2 s until the deadline,
    # accepting the first answer. Expired asks' late replies are ignored.
    resend = 1.0
    while True:
        remaining = None if deadline is None else deadline - loop.time()
        if remaining is not None and remaining <= resend:
            reply = await ask_within(max(remaining, 0.001))
            break
        try:
            reply = await ask(resend)
            break
        except KernelTimeout:
            resend = min(resend * 2, 2.0)
    pause = 0.05
    while not iopub_seen.is_set():
        remaining = None if deadline is None else deadline - loop.time()
        if remaining is not None and remaining <= 0:
            raise KernelTimeout(
                f"kernel {kernel} not ready within {timeout} s: it answered kernel_info "
                "but no IOPub message reached this client"
            )
        wait = pause if remaining is None else min(pause, remaining)
        try:
            await asyncio.wait_for(iopub_seen.wait(), wait)
        except asyncio.TimeoutError:
            # Nothing signals "subscription live": the status of the first request may
            # have been published before it was. Ask again so the kernel publishes a
            # fresh status; back off up to 1 s between asks.
            pause = min(pause * 2, 1.0)
            remaining = None if deadline is None else max(deadline - loop.time(), 0.001)
            reply = await ask_within(remaining)
    return reply
