"""What a client makes of the messages its transport refused.

A refused message is never delivered, and its content is never trusted (not even its
parent header). What the client can still decide from the refusals alone:

- a message over the size limit (:class:`~kernelkit.MessageTooLarge`) lost whatever it
  carried: the requests whose reply may have been in it fail, naming the limit;
- several messages in a row whose signature does not match (and none that does) mean
  the kernel signs with another key: a stale or foreign connection file. Every pending
  and new request fails with :class:`~kernelkit.SignatureMismatch` until a message
  verifies again.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator

from kernelkit._errors import MessageTooLarge, RemoteProtocolError, SignatureMismatch
from kernelkit.client._waiters import Waiter
from kernelkit.protocol import TrackedRequest

__all__ = ["KEY_MISMATCH_AFTER", "Rejections"]

log = logging.getLogger("kernelkit.client")

#: Messages in a row that fail their signature check, none verifying, before the key is
#: judged wrong (a request's busy status, reply and idle status are three).
KEY_MISMATCH_AFTER = 3


class Rejections:
    """The refusals of one client's kernel, counted, and the verdict they lead to."""

    __slots__ = ("_kernel", "_scheme", "bad_signatures", "key_error", "oversized", "total")

    def __init__(self, kernel: str, signature_scheme: str) -> None:
        self._kernel = kernel
        self._scheme = signature_scheme
        self.total = 0
        #: Messages refused for their size (counted; logged once per kernel).
        self.oversized = 0
        #: Signature failures since the last message that verified.
        self.bad_signatures = 0
        #: What requests fail with while the kernel's key is judged wrong, or None.
        self.key_error: SignatureMismatch | None = None

    def verified(self) -> None:
        """A message verified: the key is right after all."""
        self.bad_signatures = 0
        if self.key_error is not None:
            self.key_error = None
            log.info("kernel %s: messages verify again", self._kernel)

    def judge(self, channel: str, error: RemoteProtocolError) -> RemoteProtocolError | None:
        """Count ``error`` (a message refused on ``channel``); return what pending
        requests must fail with (the key error, or the size error), or None."""
        self.total += 1
        if isinstance(error, MessageTooLarge):
            self.oversized += 1
            (log.warning if self.oversized == 1 else log.debug)(
                "kernel %s: refused a message on %s over the size limit (%d so far; "
                "this is logged once per kernel): %s",
                self._kernel,
                channel,
                self.oversized,
                error,
            )
            return error
        if isinstance(error, SignatureMismatch):
            self.bad_signatures += 1
            if self.bad_signatures >= KEY_MISMATCH_AFTER and self.key_error is None:
                self.key_error = SignatureMismatch(
                    f"kernel {self._kernel}: the last {self.bad_signatures} messages from "
                    "the kernel were refused because their signatures do not match the "
                    f"connection file's key ({self._scheme}); none verified. The connection "
                    "file is stale or belongs to another kernel: use the kernel's current "
                    "connection file"
                )
                log.error("%s", self.key_error)
                return self.key_error
        log.warning(
            "kernel %s: dropped a message on %s that failed verification: %s",
            self._kernel,
            channel,
            error,
        )
        return None

    @staticmethod
    def lost(
        failure: MessageTooLarge, pending: Iterable[TrackedRequest[Waiter]]
    ) -> Iterator[tuple[TrackedRequest[Waiter], MessageTooLarge]]:
        """The requests whose reply (or status, or output) may have been lost with a
        refused message, each with the error it fails with: every pending one, since the
        transport reopens the channels that carry replies (IOPub: statuses and outputs)
        together. Otherwise they would wait for their whole timeout."""
        for tracked in pending:
            error = MessageTooLarge(f"{tracked.msg_type} failed: {failure}", limit=failure.limit)
            error.__cause__ = failure
            yield tracked, error
