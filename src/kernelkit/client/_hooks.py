"""The hooks of ``execute_interactive``: their types and the terminal defaults."""

from __future__ import annotations

import asyncio
import getpass
import sys
from collections.abc import Awaitable, Callable, Mapping

from kernelkit.protocol import Message

__all__ = [
    "BlockingStdinHook",
    "OutputHook",
    "StdinHook",
    "print_output",
    "read_input",
    "read_input_in_thread",
    "stdin_is_terminal",
]

#: Called with each IOPub message of a request (status and execute_input included).
OutputHook = Callable[[Message], None]
#: Called with an ``input_request``; returns the text to send (or None when it has
#: answered itself with ``client.input``). May be a coroutine function.
StdinHook = Callable[[Message], str | Awaitable[str | None] | None]
#: Called (in the calling thread) with an ``input_request``; returns the text to send,
#: or None when it has answered itself with ``client.input``.
BlockingStdinHook = Callable[[Message], "str | None"]


def print_output(msg: Message) -> None:
    """The default output hook: show an IOPub message on the terminal.

    ``stream`` text goes to stdout or stderr as named; ``execute_result`` and
    ``display_data`` show their ``text/plain``; ``error`` prints its traceback to stderr.
    Everything else (status, execute_input, ...) is ignored.
    """
    msg_type = msg.header.msg_type
    content = msg.content
    if msg_type == "stream":
        stream = sys.stderr if content.get("name") == "stderr" else sys.stdout
        stream.write(str(content.get("text", "")))
        stream.flush()
    elif msg_type in ("execute_result", "display_data", "update_display_data"):
        data = content.get("data")
        if isinstance(data, Mapping) and "text/plain" in data:
            sys.stdout.write(f"{data['text/plain']}\n")
            sys.stdout.flush()
    elif msg_type == "error":
        traceback = content.get("traceback") or [f"{content.get('ename')}: {content.get('evalue')}"]
        sys.stderr.write("\n".join(str(line) for line in traceback) + "\n")
        sys.stderr.flush()


def read_input(msg: Message) -> str:
    """The default stdin hook: ask the person at the terminal (hidden for passwords)."""
    prompt = str(msg.content.get("prompt", ""))
    if msg.content.get("password"):
        return getpass.getpass(prompt)
    return input(prompt)


async def read_input_in_thread(request: Message) -> str:
    """:func:`read_input` in a worker thread (the terminal read blocks; the loop must not)."""
    return await asyncio.to_thread(read_input, request)


def stdin_is_terminal() -> bool:
    """True when stdin is an open terminal (``allow_stdin``'s default then)."""
    stdin = sys.stdin
    try:
        return stdin is not None and stdin.isatty()
    except ValueError:  # closed
        return False


def pick_allow_stdin(allow_stdin: bool | None, stdin_hook: Callable[..., object] | None) -> bool:
    """``allow_stdin`` as given, else True when there is a hook or a terminal."""
    if allow_stdin is not None:
        return allow_stdin
    return stdin_hook is not None or stdin_is_terminal()
