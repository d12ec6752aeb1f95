"""What ``kernelkit run`` and ``kernelkit start`` share: resolving ``--kernel`` to a
kernel type (its manager prepares and launches it), reporting errors, and loop signal
handlers."""

from __future__ import annotations

import asyncio
import contextlib
import difflib
import logging
import signal
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path

from rich.console import Console
from rich.text import Text

from kernelkit._errors import (
    DiscoveryError,
    EnvironmentActivationError,
    KernelSpecError,
    NoSuchKernel,
    ProvisioningError,
)
from kernelkit.cli._list import remember_project_environments
from kernelkit.cli._running import record_kernel
from kernelkit.discovery import KernelFinder, KernelType
from kernelkit.envs import find_environments
from kernelkit.manager import AsyncKernelManager
from kernelkit.provisioning import LocalProvisioner

__all__ = [
    "START_ERRORS",
    "find_kernel",
    "quiet_library_logs",
    "record_started",
    "report_error",
    "signal_handlers",
    "suggest_ids",
]


def report_error(console: Console, what: str, error: object) -> None:
    """Print ``kernelkit: what: error`` to the console (no markup is interpreted)."""
    message = Text()
    message.append("kernelkit: ", style="bold")
    message.append(f"{what}: ", style="bold red")
    message.append(str(error))
    console.print(message, highlight=False, soft_wrap=True)


def suggest_ids(name: str, ids: Sequence[str]) -> list[str]:
    """Up to three ids close to ``name`` (a bare name is compared with the ids' ends)."""
    by_key: dict[str, list[str]] = {}
    for type_id in ids:
        by_key.setdefault(type_id if "/" in name else type_id.rsplit("/", 1)[-1], []).append(
            type_id
        )
    close = difflib.get_close_matches(name, list(by_key), n=3, cutoff=0.8)
    return [type_id for key in close for type_id in by_key[key]][:3]


def _without_kernel(name: str) -> str | None:
    """Why ``env/<env-id>[/...]`` names no kernel when its environment exists but has
    no ipykernel (and the command that fixes it); None otherwise."""
    if not name.startswith("env/"):
        return None
    env_id = name.split("/")[1]
    for env in find_environments().environments:
        if env.id == env_id and env.interpreter is not None and not env.has_ipykernel:
            return (
                f"environment {env_id} ({env.prefix}) has Python but no ipykernel; add it "
                f"with: kernelkit env add-kernel {env_id}"
            )
    return None


def _no_such_kernel(console: Console, error: NoSuchKernel) -> None:
    message = Text()
    message.append("kernelkit: ", style="bold")
    message.append(f"no kernel {error.name!r}", style="bold red")
    why = _without_kernel(error.name)
    if why is not None:
        message.append(f": {why}")
        console.print(message, highlight=False, soft_wrap=True)
        return
    close = suggest_ids(error.name, error.available)
    if close:
        message.append("; did you mean " + " or ".join(close) + "?")
    if error.available:
        message.append("\nKernels here (`kernelkit list` shows their health):")
        for type_id in sorted(error.available):
            message.append(f"\n  {type_id}")
    else:
        message.append("; no kernels are installed here (see `kernelkit list`)")
    console.print(message, highlight=False, soft_wrap=True)


#: What starting a found kernel type may raise that the user can act on: reported as
#: "cannot start kernel ...", not as a crash.
START_ERRORS = (KernelSpecError, DiscoveryError, EnvironmentActivationError, ProvisioningError)


async def find_kernel(console: Console, kernel: str) -> tuple[KernelFinder, KernelType] | None:
    """The kernel type ``kernel`` names (a discovery id or a kernelspec name) and the
    finder that found it (its manager prepares the launch with it); None after reporting
    why there is none."""
    finder = KernelFinder()
    try:
        # In a thread: listing reads the filesystem.
        kernel_type = await asyncio.to_thread(finder.get, kernel)
    except NoSuchKernel as exc:
        _no_such_kernel(console, exc)
        return None
    except DiscoveryError as exc:
        report_error(console, f"cannot start kernel {kernel!r}", exc)
        return None
    if kernel_type.environment is not None:
        # A project environment used from inside the project: its id works elsewhere too.
        remember_project_environments([kernel_type.environment])
    return finder, kernel_type


def quiet_library_logs() -> None:
    """Errors reach the user as messages of the command; the library's log records of
    the same events would only repeat them."""
    logger = logging.getLogger("kernelkit")
    logger.addHandler(logging.NullHandler())
    logger.propagate = False


@contextlib.contextmanager
def signal_handlers(
    loop: asyncio.AbstractEventLoop, handlers: Mapping[signal.Signals, Callable[[], object]]
) -> Iterator[None]:
    """Install loop signal handlers for the block, and remove them after."""
    installed = []
    try:
        for signum, handler in handlers.items():
            loop.add_signal_handler(signum, handler)
            installed.append(signum)
        yield None
    finally:
        for signum in installed:
            loop.remove_signal_handler(signum)


def record_started(km: AsyncKernelManager, command: str) -> Path | None:
    """Write the ``kernelkit ps`` record of a kernel this command started (or
    restarted); None when it has no connection file or the record cannot be written."""
    path = km.connection_file
    p = km.provisioner
    if path is None or p is None:
        return None
    kernel_type = km.kernel_type.id if km.kernel_type is not None else km.kernel_name
    return record_kernel(
        kernel_id=km.kernel_id,
        kernel_type=kernel_type,
        connection_file=Path(path),
        command=command,
        kernel_pid=p.pid if isinstance(p, LocalProvisioner) else None,
        interrupt_mode=p.interrupt_mode,
    )
