"""Writing ``kernelkit list``'s styled parts as plain text, without rich, where rich would
print them without styles: the same text, byte for byte (tests/cli/test_list_plain.py).

What rich does to such text, and this module does too:

- it prints no styles when the console is not a terminal, decided from ``TTY_COMPATIBLE``,
  then ``FORCE_COLOR``, then ``isatty()`` of stdout;
- its width is ``$COLUMNS`` when that is a number (0 is left to rich), else the size of
  the first of stdin, stdout and stderr that is a terminal, else 80 (0: unknown);
- it drops the control characters BEL, BS, VT, FF and CR from text (:data:`STRIPPED`;
  the layout drops them too, before it trims each line's end: rich versions differ in
  what they do with whitespace at the end of a line, and the layout leaves none);
- the whole text loses the whitespace at its end, and ends in one newline.

Tabs (rich expands them by display cells), Windows (rich's legacy console is a column
narrower) and a Jupyter or IDLE host are left to rich: :func:`plain_stdout_width` or
:func:`write_plain` says so by returning None or False.
"""

from __future__ import annotations

import builtins
import os
import sys

__all__ = ["STRIPPED", "plain_stdout_width", "write_plain"]

#: str.translate table dropping what rich drops from text (rich.control.STRIP_CONTROL_CODES)
STRIPPED: dict[int, None] = dict.fromkeys((7, 8, 11, 12, 13))


def _stdout_is_terminal() -> bool:
    """Whether rich would treat stdout as a terminal (rich.console.Console.is_terminal)."""
    compatible = os.environ.get("TTY_COMPATIBLE", "")
    if compatible in ("0", "1"):
        return compatible == "1"
    force_color = os.environ.get("FORCE_COLOR")
    if force_color is not None:
        return force_color != ""
    try:
        return sys.stdout.isatty()
    except (AttributeError, ValueError):  # no isatty, or closed
        return False


def _rich_host() -> bool:
    """Jupyter (rich sizes and styles its output differently there) or IDLE."""
    if hasattr(builtins, "get_ipython"):
        return True
    return str(getattr(sys.stdin, "__module__", "")).startswith("idlelib")


def plain_stdout_width() -> int | None:
    """The width rich would give stdout when it would print no styles there; None when
    rich must print (a terminal, Windows, Jupyter, IDLE)."""
    if os.name == "nt" or _rich_host() or _stdout_is_terminal():
        return None
    columns = os.environ.get("COLUMNS")
    if columns is not None and columns.isdigit():
        # rich prints nothing at all at width 0
        return int(columns) or None
    width = 0
    for fd in (0, 1, 2):
        try:
            width = os.get_terminal_size(fd).columns
        except (AttributeError, ValueError, OSError):
            continue  # not a terminal
        break
    return width or 80


def write_plain(parts: list[tuple[str, str]]) -> bool:
    """Write the text of ``parts`` (styles dropped; laid out already, no line ending in
    whitespace) to stdout as rich prints it without styles; False, writing nothing, when
    that needs rich (tabs)."""
    text = "".join(part for part, _ in parts)
    if "\t" in text:
        return False
    out = text.translate(STRIPPED).rstrip() + "\n"
    try:
        sys.stdout.write(out)
    except UnicodeEncodeError as exc:
        # as rich says it (rich.console.Console._check_buffer)
        exc.reason = (
            f"{exc.reason}\n*** You may need to add PYTHONIOENCODING=utf-8 to your environment ***"
        )
        raise
    sys.stdout.flush()
    return True
