"""What both client faces share: request contents, reply checks and the default hooks.

Plain functions, no I/O of their own (the default hooks write to and read from the
terminal, which is their job).
"""

from __future__ import annotations

import getpass
import sys
from collections.abc import Mapping
from typing import Any

from kernelkit._errors import ExecutionError, RequestError
from kernelkit.protocol import Message

__all__ = [
    "check_reply",
    "complete_content",
    "execute_content",
    "history_content",
    "inspect_content",
    "print_output",
    "raise_for_execute_error",
    "read_input",
]


def execute_content(
    code: str,
    *,
    silent: bool,
    store_history: bool,
    user_expressions: Mapping[str, str] | None,
    allow_stdin: bool,
    stop_on_error: bool,
) -> dict[str, Any]:
    """The content of an ``execute_request``."""
    if not isinstance(code, str):
        raise TypeError(f"code must be a string, got {type(code).__name__}")
    return {
        "code": code,
        "silent": silent,
        "store_history": store_history,
        "user_expressions": dict(user_expressions) if user_expressions else {},
        "allow_stdin": allow_stdin,
        "stop_on_error": stop_on_error,
    }


def complete_content(code: str, cursor_pos: int | None) -> dict[str, Any]:
    """The content of a ``complete_request`` (cursor at the end by default)."""
    return {"code": code, "cursor_pos": len(code) if cursor_pos is None else cursor_pos}


def inspect_content(code: str, cursor_pos: int | None, detail_level: int) -> dict[str, Any]:
    """The content of an ``inspect_request`` (cursor at the end by default)."""
    return {
        "code": code,
        "cursor_pos": len(code) if cursor_pos is None else cursor_pos,
        "detail_level": detail_level,
    }


def history_content(
    *,
    raw: bool,
    output: bool,
    hist_access_type: str,
    session: int | None,
    start: int | None,
    stop: int | None,
    n: int | None,
    pattern: str | None,
    unique: bool,
) -> dict[str, Any]:
    """The content of a ``history_request`` (only the fields its access type uses)."""
    content: dict[str, Any] = {
        "raw": raw,
        "output": output,
        "hist_access_type": hist_access_type,
    }
    if hist_access_type == "range":
        content.update(session=session or 0, start=start or 0, stop=stop)
    elif hist_access_type == "tail":
        content.update(n=n if n is not None else 10)
    elif hist_access_type == "search":
        content.update(pattern=pattern or "*", unique=unique)
        if n is not None:
            content["n"] = n
    return content


def check_reply(reply: Message, what: str, *, kernel: str) -> Message:
    """Return ``reply`` if its status is ok; raise otherwise.

    Raises:
        RequestError: the kernel answered with an error status (the message names the
            request, the kernel and the kernel's reason).
    """
    content = reply.content
    if content.get("status", "ok") == "ok":
        return reply
    reason = content.get("evalue") or content.get("ename") or content.get("status")
    raise RequestError(
        f"kernel {kernel}: {what} failed: {reason}",
        ename=str(content.get("ename", "")),
        evalue=str(content.get("evalue", "")),
    )


def raise_for_execute_error(reply: Message) -> None:
    """Raise :class:`ExecutionError` when an ``execute_reply`` says the code raised."""
    content = reply.content
    if content.get("status") == "error":
        raise ExecutionError(
            str(content.get("ename", "Error")),
            str(content.get("evalue", "")),
            [str(line) for line in content.get("traceback", ())],
        )


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
