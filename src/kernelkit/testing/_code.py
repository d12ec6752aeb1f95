"""The fake kernel's language: commands, one per line or joined by ``"; "``.

Parsing only; :mod:`kernelkit.testing._core` runs them. The table in
:data:`COMMANDS` is the documentation (the package docstring repeats it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = [
    "COMMANDS",
    "Command",
    "complete_reply",
    "inspect_reply",
    "is_complete_reply",
    "parse_code",
]

#: Every command word and what it does (``inspect_request`` answers with these lines).
COMMANDS: dict[str, str] = {
    "print": "print TEXT: a stdout stream 'TEXT\\n'",
    "err": "err TEXT: a stderr stream 'TEXT\\n'",
    "result": "result TEXT: an execute_result whose text/plain is TEXT",
    "display": "display TEXT: a display_data whose text/plain is TEXT",
    "error": (
        "error NAME [VALUE]: an error output and an error reply (ename NAME, evalue VALUE, "
        "default 'boom'); the rest of the code is not run"
    ),
    "input": (
        "input PROMPT: an input_request on stdin (an error reply when allow_stdin is "
        "false); the answer comes back as a stdout stream of exactly that value"
    ),
    "sleep": "sleep SECONDS: busy for that long; an interrupt ends it with KeyboardInterrupt",
    "exit": "exit [CODE]: the kernel exits at once with CODE (default 0), answering nothing",
    "pid": "pid: an execute_result whose text/plain is the kernel's process id",
    "hold": "hold (first command): no answer at all, not even a status; the shell stays free",
    "idle-first": "idle-first: the idle status goes out before the reply (a reordering kernel)",
    "check": (
        "check: an error reply (ename ProtocolViolation) if the kernel has recorded "
        "protocol errors, an ok reply otherwise"
    ),
}


@dataclass(frozen=True, slots=True)
class Command:
    """One command of a code: its word and the rest of its line."""

    word: str
    arg: str


def parse_code(code: str) -> tuple[Command, ...] | None:
    """The commands of ``code``, or None when it is not made of commands only.

    Lines and ``"; "``-separated parts are commands; blank ones are skipped. A code with
    any unknown word is an *expression* (None): the kernel answers it with an
    execute_result of the code itself.
    """
    commands: list[Command] = []
    for line in code.splitlines():
        for part in line.split("; "):
            text = part.lstrip()  # the argument is kept verbatim: "input name? " asks "name? "
            if not text.strip():
                continue
            word, _, arg = text.partition(" ")
            if word not in COMMANDS:
                return None
            commands.append(Command(word, arg))
    return tuple(commands)


def _word_start(code: str, cursor: int) -> int:
    start = cursor
    while start > 0 and not code[start - 1].isspace() and code[start - 1] != ";":
        start -= 1
    return start


def complete_reply(code: str, cursor: int) -> dict[str, Any]:
    """A ``complete_reply``: the commands that start with the word before ``cursor``."""
    start = _word_start(code, cursor)
    prefix = code[start:cursor]
    return {
        "status": "ok",
        "matches": sorted(w for w in COMMANDS if w.startswith(prefix)),
        "cursor_start": start,
        "cursor_end": cursor,
        "metadata": {},
    }


def inspect_reply(code: str, cursor: int) -> dict[str, Any]:
    """An ``inspect_reply``: the help of the command under ``cursor``, if it is one."""
    start = end = _word_start(code, cursor)
    while end < len(code) and not code[end].isspace() and code[end] != ";":
        end += 1
    doc = COMMANDS.get(code[start:end])
    return {
        "status": "ok",
        "found": doc is not None,
        "data": {"text/plain": doc} if doc is not None else {},
        "metadata": {},
    }


def is_complete_reply(code: str) -> dict[str, Any]:
    """An ``is_complete_reply``: a line ending in a backslash continues."""
    if code.rstrip().endswith("\\"):
        return {"status": "incomplete", "indent": ""}
    return {"status": "complete"}
