"""How `kernelkit run` prints outputs: tracebacks, nameless errors, the last line, saving."""

from __future__ import annotations

import base64
import io
from pathlib import Path

import pytest

from kernelkit.cli._output import OutputPrinter, OutputSaver, traceback_text
from kernelkit.protocol import Message


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def _msg(msg_type: str, content: dict[str, object]) -> Message:
    return Message.build(msg_type, content, session="s")


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ({"traceback": ["Traceback:\n", "  line 1\n", "E: v\n"]}, "Traceback:\n  line 1\nE: v\n"),
        ({"traceback": ["Traceback:", "  line 1", "E: v"]}, "Traceback:\n  line 1\nE: v\n"),
        ({"ename": "ValueError", "evalue": "bad"}, "ValueError: bad\n"),
        ({"ename": "ValueError", "evalue": ""}, "ValueError\n"),
        ({"evalue": "only a message"}, "Error: only a message\n"),
        ({}, "Error (the kernel gave no name, message or traceback for it)\n"),
        ({"traceback": [], "ename": "", "evalue": ""}, "Error (the kernel gave no name, "),
        ({"traceback": ["\x1b[31mE\x1b[0m: v"]}, "E: v\n"),
    ],
)
def test_traceback_text(content: dict[str, object], expected: str) -> None:
    assert traceback_text(content, plain=True).startswith(expected)


def test_no_blank_lines_between_newline_terminated_traceback_lines() -> None:
    err = io.StringIO()
    printer = OutputPrinter(io.StringIO(), err)
    printer(_msg("error", {"ename": "E", "evalue": "v", "traceback": ["a\n", "b\n", "E: v\n"]}))
    assert err.getvalue() == "a\nb\nE: v\n"


def test_a_terminal_gets_its_last_line_ended() -> None:
    out = _Terminal()
    printer = OutputPrinter(out, io.StringIO())
    printer(_msg("stream", {"name": "stdout", "text": "no newline"}))
    printer.finish()
    assert out.getvalue() == "no newline\n"
    printer.finish()  # once only
    assert out.getvalue() == "no newline\n"


def test_a_pipe_keeps_the_output_exactly() -> None:
    out = io.StringIO()
    printer = OutputPrinter(out, io.StringIO())
    printer(_msg("stream", {"name": "stdout", "text": "no newline"}))
    printer.finish()
    assert out.getvalue() == "no newline"


def test_rich_output_without_text_says_what_it_was() -> None:
    out = io.StringIO()
    printer = OutputPrinter(out, io.StringIO())
    printer(_msg("display_data", {"data": {"image/png": "AAAA"}, "metadata": {}}))
    assert out.getvalue() == "[image/png output; --save-outputs DIR keeps it]\n"


def test_saver_names_files_in_output_order_richest_type(tmp_path: Path) -> None:
    saver = OutputSaver(tmp_path / "out")
    saver.prepare()
    png = b"\x89PNG\r\n\x1a\nrest"
    assert saver.save({"text/plain": "only text"}) is None
    first = saver.save({"text/plain": "<Figure>", "image/png": base64.b64encode(png).decode()})
    second = saver.save({"text/html": ["<b>", "x</b>"], "image/svg+xml": "<svg/>"})
    third = saver.save({"application/json": {"v": [1, 2]}, "text/html": "<p/>"})
    assert [p.name for p in saver.saved] == ["001.png", "002.svg", "003.html"]
    assert (first, second, third) == tuple(saver.saved)
    assert saver.saved[0].read_bytes() == png
    assert saver.saved[1].read_text() == "<svg/>"
    assert saver.saved[2].read_text() == "<p/>"
