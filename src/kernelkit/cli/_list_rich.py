"""Printing ``kernelkit list``'s styled parts with rich (a terminal, or where the plain
writer, kernelkit.cli._list_plain, leaves it to rich)."""

from __future__ import annotations

from rich.console import Console
from rich.text import Text

__all__ = ["new_console", "print_parts"]


def new_console() -> Console:
    """The console ``kernelkit list`` prints to: stdout."""
    return Console()


def print_parts(parts: list[tuple[str, str]], console: Console) -> None:
    """Print (text, style) parts as one text, laid out already: rich must neither wrap
    nor pad it, nor highlight anything in it."""
    text = Text()
    for part, style in parts:
        text.append(part, style=style or None)
    text.rstrip()
    console.print(text, soft_wrap=True, highlight=False)
