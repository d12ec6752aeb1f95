"""Exit statuses of the ``kernelkit`` commands (documented in each command's help)."""

from __future__ import annotations

__all__ = [
    "EXIT_BROKEN",
    "EXIT_CODE_RAISED",
    "EXIT_FAILED",
    "EXIT_INTERRUPTED",
    "EXIT_KERNEL_DIED",
    "EXIT_KERNEL_FAILED",
    "EXIT_NOT_FOUND",
    "EXIT_OK",
    "EXIT_TERMINATED",
    "EXIT_TIMEOUT",
    "EXIT_USAGE",
]

EXIT_OK = 0
#: ``run``: the code raised an exception in the kernel.
EXIT_CODE_RAISED = 1
#: ``list --broken``: something is broken (a kernel or a provider).
EXIT_BROKEN = 1
#: ``specs install|remove``: the install or removal failed.
EXIT_FAILED = 1
#: Bad usage (as click reports it).
EXIT_USAGE = 2
#: ``run``/``start``: the kernel could not be found or started, or did not become ready.
EXIT_KERNEL_FAILED = 3
#: ``specs remove``: no kernelspec by that name.
EXIT_NOT_FOUND = 3
#: ``run``/``start``: the kernel died (or stopped answering) and stays dead.
EXIT_KERNEL_DIED = 4
#: ``run --timeout``: the code ran past its time limit (as GNU ``timeout`` reports it).
EXIT_TIMEOUT = 124
#: Stopped by Ctrl-C (128 + SIGINT, as shells report it).
EXIT_INTERRUPTED = 130
#: Stopped by SIGTERM (128 + SIGTERM).
EXIT_TERMINATED = 143
