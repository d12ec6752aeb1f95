"""Every error kernelkit raises, as one tree.

::

    KernelError
    ├── ProtocolError
    │   ├── LocalProtocolError        we were asked to send something the protocol forbids
    │   └── RemoteProtocolError       the peer sent something malformed, forged or replayed
    │       ├── MessageTooLarge       a message over the size limit was refused unread
    │       └── SignatureMismatch     a message's signature does not match the key
    ├── ConnectionFileError           a connection or registration file is unreadable or wrong
    ├── KernelSpecError               a kernelspec is invalid, or cannot be installed/removed
    │   └── NoSuchKernel              no kernelspec or kernel type by that name (also LookupError)
    ├── EnvironmentActivationError    an environment could not be activated
    ├── DiscoveryError                a kernel provider failed (also reported, never hiding others)
    ├── ProvisioningError             a kernel could not be launched or controlled
    │   ├── ProvisionerNotFound       no provisioner by that name is installed
    │   └── KernelStartError          the kernel process failed to start or died while starting
    ├── KernelDied                    the kernel process is gone (exit code, last output lines)
    ├── KernelTimeout                 the kernel did not answer in time (also TimeoutError)
    │   └── HeartbeatTimeout          the kernel stopped answering heartbeats
    ├── ClientClosed                  the client or its transport is closed
    ├── UnsupportedFeature            the kernel does not advertise a needed feature
    ├── RequestError                  the kernel answered a request with an error status
    │   └── ExecutionError            code raised in the kernel (only when asked to raise)
    ├── NotebookError                 a notebook file is unreadable, malformed or cannot be written
    └── ManagerError                  misuse of a manager, multi-kernel manager or pool
        ├── UnknownKernelId           no kernel with that id is managed (also LookupError)
        └── PoolExhausted             the pool's limit is reached and waiting timed out

Errors from lower libraries (zmq, OSError, json) are translated where they cross into
kernelkit, chained with ``raise ... from exc``.
"""

from __future__ import annotations

TYPE_CHECKING = False  # not typing's: this module is imported by `import kernelkit`
if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = [
    "ClientClosed",
    "ConnectionFileError",
    "DiscoveryError",
    "EnvironmentActivationError",
    "ExecutionError",
    "HeartbeatTimeout",
    "KernelDied",
    "KernelError",
    "KernelSpecError",
    "KernelStartError",
    "KernelTimeout",
    "LocalProtocolError",
    "ManagerError",
    "MessageTooLarge",
    "NoSuchKernel",
    "NotebookError",
    "PoolExhausted",
    "ProtocolError",
    "ProvisionerNotFound",
    "ProvisioningError",
    "RemoteProtocolError",
    "RequestError",
    "SignatureMismatch",
    "UnknownKernelId",
    "UnsupportedFeature",
]


class KernelError(Exception):
    """Root of every error kernelkit raises."""


class ProtocolError(KernelError):
    """A message broke the Jupyter messaging protocol."""


class LocalProtocolError(ProtocolError):
    """We were asked to send something the protocol forbids (our side's mistake)."""


class RemoteProtocolError(ProtocolError):
    """The peer sent frames that are malformed, forged, replayed or too large."""


class MessageTooLarge(RemoteProtocolError):
    """A message over the size limit (``limit`` bytes) was refused before it was read."""

    def __init__(self, message: str, *, limit: int) -> None:
        super().__init__(message)
        self.limit = limit


class SignatureMismatch(RemoteProtocolError):
    """A message's signature does not match the session's key (forged, corrupted, or
    signed with another key: a stale or foreign connection file)."""


class ConnectionFileError(KernelError):
    """A connection or registration file is missing, unreadable, incomplete or unsafe."""

    def __init__(self, path: object, problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.path = path
        self.problem = problem


class KernelSpecError(KernelError):
    """A kernelspec is invalid, or cannot be installed or removed."""


class NoSuchKernel(KernelSpecError, LookupError):
    """No kernelspec or kernel type has that name."""

    def __init__(self, name: str, *, available: Sequence[str] = ()) -> None:
        listing = ", ".join(sorted(available)) if available else "none"
        close = close_names(name, available)
        hint = f" (did you mean {' or '.join(close)}?)" if close else ""
        super().__init__(f"no kernel named {name!r}{hint}; available: {listing}")
        self.name = name
        self.available = tuple(available)
        #: Up to three of ``available`` close to ``name``.
        self.close = tuple(close)


def close_names(name: str, names: Sequence[str]) -> list[str]:
    """Up to three of ``names`` (kernel type ids or kernelspec names) close to ``name``;
    a bare name is compared with the ids' last part."""
    # Imported here for import time only (difflib pulls in re): needed on this error path.
    import difflib

    by_key: dict[str, list[str]] = {}
    for candidate in names:
        key = candidate if "/" in name else candidate.rsplit("/", 1)[-1]
        by_key.setdefault(key, []).append(candidate)
    close = difflib.get_close_matches(name, list(by_key), n=3, cutoff=0.8)
    return [candidate for key in close for candidate in by_key[key]][:3]


class EnvironmentActivationError(KernelError):
    """An environment could not be activated (its activation scripts failed or hung)."""


class DiscoveryError(KernelError):
    """A kernel provider failed to list or launch kernels."""


class ProvisioningError(KernelError):
    """A kernel could not be launched, signalled or stopped."""


class ProvisionerNotFound(ProvisioningError, LookupError):
    """No provisioner with that name is installed."""

    def __init__(self, name: str, *, installed: Sequence[str] = ()) -> None:
        listing = ", ".join(sorted(installed)) if installed else "none"
        super().__init__(f"no kernel provisioner named {name!r} is installed; installed: {listing}")
        self.name = name
        self.installed = tuple(installed)


def _describe_exit(exit_code: int | None, output_tail: Sequence[str]) -> str:
    parts = []
    if exit_code is not None:
        parts.append(
            f"killed by signal {-exit_code}" if exit_code < 0 else f"exit code {exit_code}"
        )
    if output_tail:
        parts.append("last output:\n    " + "\n    ".join(output_tail))
    return "; ".join(parts)


class KernelStartError(ProvisioningError):
    """The kernel failed to start: bad argv, exec failure, or death before it was ready."""

    def __init__(
        self,
        message: str,
        *,
        kernel_name: str | None = None,
        exit_code: int | None = None,
        output_tail: Sequence[str] = (),
    ) -> None:
        detail = _describe_exit(exit_code, output_tail)
        prefix = f"kernel {kernel_name!r}: " if kernel_name else ""
        super().__init__(prefix + message + (f" ({detail})" if detail else ""))
        self.kernel_name = kernel_name
        self.exit_code = exit_code
        self.output_tail = tuple(output_tail)


class KernelDied(KernelError):
    """The kernel process is gone. Carries its exit code and the last lines it wrote."""

    def __init__(
        self,
        message: str = "kernel died",
        *,
        kernel_name: str | None = None,
        exit_code: int | None = None,
        output_tail: Sequence[str] = (),
    ) -> None:
        detail = _describe_exit(exit_code, output_tail)
        prefix = f"kernel {kernel_name!r}: " if kernel_name else ""
        super().__init__(prefix + message + (f" ({detail})" if detail else ""))
        self.kernel_name = kernel_name
        self.exit_code = exit_code
        self.output_tail = tuple(output_tail)


class KernelTimeout(KernelError, TimeoutError):
    """The kernel did not answer within the time limit."""


class HeartbeatTimeout(KernelTimeout):
    """The kernel stopped answering heartbeats: it is hung or unreachable."""


class ClientClosed(KernelError):
    """The client, or the transport under it, is closed."""


class UnsupportedFeature(KernelError):
    """The kernel does not advertise a feature the request needs (``supported_features``)."""

    def __init__(self, feature: str, *, kernel: str | None = None) -> None:
        who = f"kernel {kernel!r}" if kernel else "the kernel"
        super().__init__(f"{who} does not support {feature!r} (not in supported_features)")
        self.feature = feature


class RequestError(KernelError):
    """The kernel answered a request with ``status: error`` (e.g. an unknown subshell)."""

    def __init__(self, message: str, *, ename: str = "", evalue: str = "") -> None:
        super().__init__(message)
        self.ename = ename
        self.evalue = evalue


class ExecutionError(RequestError):
    """Code raised an exception in the kernel (raised only when the caller asks for it)."""

    def __init__(self, ename: str, evalue: str, traceback: Sequence[str] = ()) -> None:
        super().__init__(f"{ename}: {evalue}", ename=ename, evalue=evalue)
        self.traceback = tuple(traceback)


class NotebookError(KernelError):
    """A notebook file is unreadable, not a notebook, or cannot be written."""


class ManagerError(KernelError):
    """A manager, multi-kernel manager or pool was used wrongly."""


class UnknownKernelId(ManagerError, LookupError):
    """No kernel with that id is managed here."""


class PoolExhausted(ManagerError):
    """The pool's limit is reached and no kernel became free in time."""
