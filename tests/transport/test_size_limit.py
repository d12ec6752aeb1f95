"""Limits before memory (issue 14.1-2): a frame over ``max_message_size`` is refused by
the socket unread, the channel is reopened, and the request whose reply was lost fails
naming the limit; a kernel signing with another key fails requests promptly."""

from __future__ import annotations

import asyncio
import dataclasses
import mmap
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from kernelkit import MessageTooLarge, SignatureMismatch
from kernelkit._connection import write_connection_file
from kernelkit.client import AsyncKernelClient
from kernelkit.protocol import DELIMITER, Message, Session
from kernelkit.transport import ZMQTransport

from .test_zmq_transport import KEY, KernelSide, Recorder


@pytest.fixture
async def kernel() -> AsyncIterator[KernelSide]:
    side = KernelSide()
    yield side
    side.close()


def _oversized_reply(side: KernelSide, request: Message, size: int) -> list[bytes]:
    """A reply whose content frame is ``size`` bytes (its signature is never looked at)."""
    reply = side.session.msg("kernel_info_reply", {"status": "ok"}, parent=request)
    frames = side.session.serialize(reply)
    return [*frames[: frames.index(DELIMITER) + 6], b'"' + b"x" * size + b'"']


async def test_a_frame_over_the_limit_is_refused_and_the_channel_reopened(
    kernel: KernelSide,
) -> None:
    transport = ZMQTransport(kernel.info, max_message_size=10_000)
    assert transport.max_message_size == 10_000
    recorder = Recorder()
    await transport.connect(recorder)
    try:
        transport.send("shell", transport.session.msg("kernel_info_request"))
        ids, request = await kernel.recv("shell")
        await kernel.sockets["shell"].send_multipart(
            [*ids, *_oversized_reply(kernel, request, 20_000)]
        )
        for _ in range(100):
            if recorder.rejected:
                break
            await asyncio.sleep(0.05)
        [(channel, error)] = recorder.rejected
        assert channel == "shell"
        assert isinstance(error, MessageTooLarge)
        assert error.limit == 10_000
        assert "over the limit of 10000 bytes (max_message_size)" in str(error)
        assert "kernel fake" in str(error)
        assert transport.dropped_connections == 1
        # The channel works again: a request and its reply go through the new socket.
        transport.send("shell", transport.session.msg("kernel_info_request"))
        ids, request = await kernel.recv("shell")
        await kernel.send("shell", kernel.session.msg("kernel_info_reply", parent=request), ids)
        channel, reply = await recorder.next()
        assert (channel, reply.parent_id) == ("shell", request.header.msg_id)
    finally:
        transport.close()


@pytest.mark.parametrize("size", [0, -1, 1.5, True])
def test_max_message_size_must_be_positive_bytes(kernel: KernelSide, size: object) -> None:
    with pytest.raises(Exception, match="max_message_size"):
        ZMQTransport(kernel.info, max_message_size=size)  # type: ignore[arg-type]


async def test_a_reply_dropped_for_size_fails_its_request_naming_the_limit(
    kernel: KernelSide,
) -> None:
    transport = ZMQTransport(kernel.info, max_message_size=10_000)
    async with AsyncKernelClient(transport, kernel_name="fake", heartbeat=False) as client:
        task = asyncio.create_task(client.kernel_info(timeout=60))
        ids, request = await kernel.recv("shell")
        await kernel.sockets["shell"].send_multipart(
            [*ids, *_oversized_reply(kernel, request, 20_000)]
        )
        with pytest.raises(MessageTooLarge, match="over the limit of 10000 bytes") as info:
            await asyncio.wait_for(task, 10)  # not the request's 60 s
        assert "kernel_info_request failed" in str(info.value)
        assert client.core.oversized_messages == 1
        # The next request gets its reply.
        task = asyncio.create_task(client.kernel_info(timeout=20))
        ids, request = await kernel.recv("shell")
        content = {
            "status": "ok",
            "protocol_version": "5.3",
            "implementation": "t",
            "implementation_version": "1",
            "banner": "",
            "help_links": [],
            "language_info": {"name": "t", "version": "1", "mimetype": "", "file_extension": ""},
        }
        await kernel.send(
            "shell", kernel.session.msg("kernel_info_reply", content, parent=request), ids
        )
        assert (await asyncio.wait_for(task, 10)).content["status"] == "ok"


async def test_a_kernel_signing_with_another_key_fails_requests_promptly(
    kernel: KernelSide,
) -> None:
    info = dataclasses.replace(kernel.info, key=b"not-the-kernels-key")
    async with AsyncKernelClient.from_connection_info(info, heartbeat=False) as client:
        task = asyncio.create_task(client.execute("1", timeout=None))
        frames = await asyncio.wait_for(kernel.sockets["shell"].recv_multipart(), 5)
        ids = frames[: frames.index(DELIMITER)]
        _, request = Session(b"not-the-kernels-key").deserialize(frames)
        reply = kernel.session.msg("execute_reply", {"status": "ok"}, parent=request)
        await kernel.send("shell", reply, ids)  # signed with KEY: refused
        # IOPub delivers only once the subscription has arrived: publish until it does.
        for _ in range(200):
            if task.done():
                break
            status = {"execution_state": "idle"}
            await kernel.send("iopub", kernel.session.msg("status", status, parent=request), [b"s"])
            await asyncio.sleep(0.05)
        with pytest.raises(SignatureMismatch, match="do not match the connection file's key"):
            await asyncio.wait_for(task, 10)
        with pytest.raises(SignatureMismatch, match="do not match"):
            await client.kernel_info(timeout=10)  # new requests fail at once
        assert client.core.rejected_messages >= 3
    assert KEY != b"not-the-kernels-key"


_CLIENT = """
import asyncio, sys
from kernelkit import MessageTooLarge
from kernelkit.client import AsyncKernelClient

def hwm():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise SystemExit("no VmHWM")

async def main():
    async with AsyncKernelClient.from_connection_file(sys.argv[1], heartbeat=False) as kc:
        before = hwm()
        print("sending", flush=True)
        try:
            await kc.kernel_info(timeout=120)
        except MessageTooLarge as exc:
            print("error", exc, flush=True)
        print("grew", hwm() - before, flush=True)

asyncio.run(main())
"""


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs /proc (VmHWM)")
async def test_600_mb_from_a_kernel_costs_the_client_almost_nothing(
    kernel: KernelSide, tmp_path: Path
) -> None:
    path = write_connection_file(kernel.info, tmp_path / "kernel.json")
    script = tmp_path / "client.py"
    script.write_text(textwrap.dedent(_CLIENT))
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(script),
        str(path),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    # 600 MB of zero pages: sent from the mapping, resident only as far as read.
    big = mmap.mmap(-1, 600 * 1000 * 1000)
    try:
        ids, request = await kernel.recv("shell")
        head = _oversized_reply(kernel, request, 0)[:-1]
        await kernel.sockets["shell"].send_multipart([*ids, *head, memoryview(big)], copy=False)
        out, err = await asyncio.wait_for(proc.communicate(), 120)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    lines = out.decode().splitlines()
    assert proc.returncode == 0, (out.decode(), err.decode())
    assert any("over the limit of 536870912 bytes" in line for line in lines), lines
    grew = int(next(line for line in lines if line.startswith("grew")).split()[1])
    print(f"peak RSS growth for a 600 MB reply: {grew / 2**20:.1f} MiB")
    assert grew < 64 * 1024 * 1024, f"the client's peak RSS grew by {grew / 2**20:.0f} MiB"


async def test_an_output_over_the_limit_fails_the_request_and_iopub_reopens(
    kernel: KernelSide,
) -> None:
    transport = ZMQTransport(kernel.info, max_message_size=10_000)
    async with AsyncKernelClient(transport, kernel_name="fake", heartbeat=False) as client:
        seen: list[Message] = []
        client.core.subscribe(seen.append)
        await _publish_until_seen(kernel, seen)
        task = asyncio.create_task(client.execute("big", timeout=60))
        _ids, request = await kernel.recv("shell")
        big = kernel.session.msg("stream", {"name": "stdout", "text": "x" * 20_000}, parent=request)
        await kernel.send("iopub", big, [b"stream"])
        with pytest.raises(MessageTooLarge, match="on iopub with a frame over the limit"):
            await asyncio.wait_for(task, 10)  # not the request's 60 s
        await _publish_until_seen(kernel, seen)  # IOPub delivers again (resubscribed)
        assert transport.dropped_connections == 1


async def _publish_until_seen(kernel: KernelSide, seen: list[Message]) -> None:
    """PUB drops messages until the SUB's subscription arrived: repeat until one lands."""
    before = len(seen)
    for _ in range(200):
        await kernel.send("iopub", kernel.session.msg("status"), [b"status"])
        await asyncio.sleep(0.05)
        if len(seen) > before:
            return
    raise AssertionError("IOPub never delivered")
