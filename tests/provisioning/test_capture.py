"""OutputCapture: pipes read on the event loop into a bounded ring (and a log)."""

from __future__ import annotations

import asyncio
import io
import os
from pathlib import Path

from kernelkit.provisioning import OutputCapture


async def _capture(chunks: list[tuple[str, bytes]], **options: object) -> OutputCapture:
    cap = OutputCapture(**options)  # type: ignore[arg-type]
    pipes = {name: OutputCapture.new_pipe() for name in ("stdout", "stderr")}
    cap.attach(asyncio.get_running_loop(), [(name, r) for name, (r, _) in pipes.items()])
    for name, data in chunks:
        os.write(pipes[name][1], data)
        await asyncio.sleep(0)  # let the loop deliver the readable event
    for _, w in pipes.values():
        os.close(w)
    cap.drain()  # reads up to EOF now that the writers are closed
    assert not cap.attached
    cap.close()
    return cap


async def test_lines_from_both_streams_in_order() -> None:
    cap = await _capture([("stdout", b"one\ntw"), ("stderr", b"err 1\r\n"), ("stdout", b"o\n")])
    assert cap.tail() == ["one", "err 1", "two"]
    assert cap.tail(stream="stderr") == ["err 1"]
    assert cap.tail(1) == ["two"]
    assert cap.tail(0) == []


async def test_unterminated_last_line_is_kept() -> None:
    cap = await _capture([("stdout", b"done\nno newline at the end")])
    assert cap.tail() == ["done", "no newline at the end"]


async def test_line_count_bound() -> None:
    data = b"".join(b"line %d\n" % i for i in range(1000))
    cap = await _capture([("stdout", data)], max_lines=10)
    assert cap.tail(100) == [f"line {i}" for i in range(990, 1000)]


async def test_byte_bound() -> None:
    data = b"".join(b"%04d" % i + b"x" * 96 + b"\n" for i in range(100))
    cap = await _capture([("stdout", data)], max_bytes=1000)
    tail = cap.tail(100)
    assert 5 <= len(tail) <= 10
    assert tail[-1].startswith("0099")


async def test_endless_line_is_cut() -> None:
    cap = await _capture([("stdout", b"y" * 10000)])
    assert [len(line) for line in cap.tail()] == [4096, 4096, 1808]


async def test_invalid_utf8_is_replaced() -> None:
    cap = await _capture([("stdout", b"caf\xe9\n")])
    assert cap.tail() == ["caf\ufffd"]


async def test_log_file_and_echo_get_the_raw_bytes(tmp_path: Path) -> None:
    log = tmp_path / "k.log"
    log.write_bytes(b"previous run\n")
    echo = io.BytesIO()
    await _capture([("stdout", b"a\n"), ("stderr", b"b\n")], log_file=log, echo=echo)
    assert log.read_bytes() == b"previous run\na\nb\n"
    assert echo.getvalue() == b"a\nb\n"


async def test_drain_reads_what_is_buffered_now() -> None:
    cap = OutputCapture()
    r, w = OutputCapture.new_pipe()
    cap.attach(asyncio.get_running_loop(), [("stdout", r)])
    os.write(w, b"last words\n")
    cap.drain()  # no loop iteration needed
    assert cap.tail() == ["last words"]
    os.close(w)
    cap.close()
    assert not cap.attached
