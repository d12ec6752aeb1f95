"""The ``kernelkit`` command line (typer + rich). Nothing imports this package.

``kernelkit list`` with no options, the command typed most, skips building the typer app:
importing typer and click costs about as much as the listing itself. It runs the same
function with the same defaults, prints the same output and exits with the same status
(tests/cli/test_fast_list.py compares the two). ``kernelkit --help`` prints the app's own
help text, kept from an earlier run (kernelkit.cli._fasthelp). Everything else goes
through the app.
"""

from __future__ import annotations

import sys

__all__ = ["app", "main"]

TYPE_CHECKING = False
if TYPE_CHECKING:
    from kernelkit.cli._app import app

#: ``kernelkit list``'s --time-limit default (the typer command declares the same; a
#: test checks).
LIST_TIME_LIMIT = 5.0


def main() -> None:
    """Entry point of the ``kernelkit`` console script."""
    if sys.argv[1:] == ["list"]:
        sys.exit(_fast_list())
    if sys.argv[1:2] == ["run"]:
        # The kernel boots while the rest of the command is imported (_earlyrun).
        from kernelkit.cli._earlyrun import start_early

        start_early(sys.argv[2:])
    if sys.argv[1:] == ["--help"]:
        from kernelkit.cli._fasthelp import cached_help, help_key, remember_help

        key = help_key()
        text = cached_help(key)
        if text is not None:
            sys.stdout.write(text)
            sys.exit(0)
        remember_help(key)  # runs the app, which prints the help and exits
    from kernelkit.cli._app import app

    app()


def _fast_list() -> int:
    import errno
    import gc

    # One short process that imports tens of thousands of objects which live until it
    # exits: cyclic garbage collection finds nothing to free here, and its passes during
    # the imports cost about as much as listing the kernelspecs (4 ms, 30 passes).
    gc.disable()
    from kernelkit.cli._list import list_command

    # What click's standalone mode does around a command, for the two cases that reach
    # here: Ctrl-C prints "Aborted!", a closed pipe exits quietly; both with status 1.
    try:
        status = list_command(as_json=False, broken=False, time_limit=LIST_TIME_LIMIT)
        sys.stdout.flush()
    except KeyboardInterrupt:
        sys.stderr.write("\nAborted!\n")
        return 1
    except OSError as exc:
        if exc.errno != errno.EPIPE:
            raise
        _quiet_closed_stdout()
        return 1
    return status


def _quiet_closed_stdout() -> None:
    # The reader went away: flushing stdout again at exit would raise once more.
    import os

    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


def __getattr__(name: str) -> object:
    if name == "app":
        from kernelkit.cli._app import app

        return app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
