"""What tools on top need from the core: send without waiting, every message, dead state."""

from __future__ import annotations

import pytest

from kernelkit import KernelDied, LocalProtocolError
from kernelkit.client import AsyncKernelClient, KernelClient
from kernelkit.testing import FakeKernel
from kernelkit.transport import MemoryTransport


async def test_send_request_then_get_reply_and_message_stream() -> None:
    transport = MemoryTransport(key=b"k")
    async with AsyncKernelClient(transport, heartbeat=False) as client, FakeKernel(transport):
        await client.wait_for_ready(timeout=5)
        async with client.messages(("shell", "control")) as stream:
            msg_id = client.send_request("execute_request", {"code": "6*7", "silent": False})
            reply = await client.get_reply(msg_id, timeout=5)
            assert reply.parent_id == msg_id
            seen = await stream.get(timeout=5)
            assert seen.parent_id == msg_id
            control_id = client.send_request("interrupt_request")
            assert (await client.get_reply(control_id, timeout=5)).msg_type == "interrupt_reply"
        with pytest.raises(LocalProtocolError, match="already"):
            await client.get_reply(msg_id)
        with pytest.raises(LocalProtocolError, match="_request"):
            client.send_request("comm_msg")
        assert client.dead_error is None
        assert client.is_alive
        client.notify_dead(KernelDied("gone"))
        assert isinstance(client.dead_error, KernelDied)
        assert not client.is_alive


def test_blocking_send_request_and_streams() -> None:
    transport = MemoryTransport(key=b"k")
    with KernelClient(transport, heartbeat=False) as kc:
        kernel = FakeKernel(transport)

        async def start() -> None:
            kernel.start()

        assert kc.loop is not None
        kc.loop_thread.run(start())
        kc.wait_for_ready(timeout=5)
        with kc.messages() as stream:
            msg_id = kc.send_request("kernel_info_request")
            assert kc.get_reply(msg_id, timeout=5).parent_id == msg_id
            assert stream.get(timeout=5).parent_id == msg_id
        assert kc.is_alive
        assert kc.dead_error is None
