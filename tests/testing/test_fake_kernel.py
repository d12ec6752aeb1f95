"""The in-memory FakeKernel with the real AsyncKernelClient (no sockets, no processes)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from kernelkit import ExecutionError, HeartbeatTimeout, KernelTimeout, UnsupportedFeature
from kernelkit.client import AsyncKernelClient
from kernelkit.protocol import Message
from kernelkit.testing import FakeKernel
from kernelkit.transport import MemoryTransport


@pytest.fixture
def transport() -> MemoryTransport:
    return MemoryTransport(key=b"secret")


@pytest.fixture
async def kernel(transport: MemoryTransport) -> AsyncIterator[FakeKernel]:
    async with FakeKernel(transport) as kernel:
        yield kernel


@pytest.fixture
async def client(
    transport: MemoryTransport, kernel: FakeKernel
) -> AsyncIterator[AsyncKernelClient]:
    async with AsyncKernelClient(
        transport,
        kernel_name="fake",
        heartbeat_interval=0.05,
        heartbeat_timeout=0.1,
        silence_timeout=0.3,
    ) as client:
        await client.wait_for_ready(timeout=5)
        yield client


def _types(messages: list[Message]) -> list[str]:
    return [m.msg_type for m in messages]


async def test_execute_outputs_in_order(client: AsyncKernelClient) -> None:
    outputs: list[Message] = []
    reply = await client.execute("print hello; err oops; result 42; display d", outputs=outputs)
    assert reply.content["status"] == "ok"
    assert _types(outputs) == [
        "execute_input",
        "stream",
        "stream",
        "execute_result",
        "display_data",
    ]
    assert [m.content.get("text") for m in outputs[1:3]] == ["hello\n", "oops\n"]
    assert outputs[3].content["data"] == {"text/plain": "42"}


async def test_an_expression_is_its_own_result(client: AsyncKernelClient) -> None:
    outputs: list[Message] = []
    await client.execute("6*7", outputs=outputs)
    assert outputs[-1].content["data"] == {"text/plain": "6*7"}


async def test_error_reply_raises_when_asked(client: AsyncKernelClient) -> None:
    with pytest.raises(ExecutionError, match="ValueError: boom") as info:
        await client.execute("error ValueError", raise_on_error=True)
    assert info.value.traceback[-1] == "ValueError: boom"


async def test_hold_never_answers(client: AsyncKernelClient) -> None:
    with pytest.raises(KernelTimeout):
        await client.execute("hold", timeout=0.1)
    assert (await client.execute("1")).content["status"] == "ok"


async def test_every_shell_request(client: AsyncKernelClient) -> None:
    await client.execute("print a")
    info = await client.kernel_info()
    assert info.content["implementation"] == "kernelkit-fake"
    assert (await client.complete("pr")).content["matches"] == ["print"]
    assert (await client.inspect("sleep 1", 1)).content["found"] is True
    history = await client.history(hist_access_type="tail", n=5)
    assert history.content["history"] == [[0, 1, "print a"]]
    assert (await client.is_complete("print a")).content["status"] == "complete"
    assert (await client.comm_info()).content["comms"] == {}


async def test_echo_comm(client: AsyncKernelClient) -> None:
    seen: list[Message] = []
    client.add_iopub_handler(seen.append)
    comm_id = await client.comm_open("echo")
    await client.comm_msg(comm_id, {"x": 1})
    for _ in range(100):
        if "comm_msg" in _types(seen):
            break
        await asyncio.sleep(0.01)
    (echo,) = [m for m in seen if m.msg_type == "comm_msg"]
    assert echo.content == {"comm_id": comm_id, "data": {"x": 1}}
    info = await client.comm_info()
    assert info.content["comms"] == {comm_id: {"target_name": "echo"}}


async def test_input_through_execute_interactive(
    client: AsyncKernelClient, kernel: FakeKernel
) -> None:
    seen: list[Message] = []
    reply = await client.execute_interactive(
        "input name? ", output_hook=seen.append, stdin_hook=lambda m: "bob"
    )
    assert reply.content["status"] == "ok"
    assert [m.content["text"] for m in seen if m.msg_type == "stream"] == ["bob"]
    (ask,) = [m for m in kernel.of_type("input_reply")]
    assert ask.content == {"value": "bob"}


async def test_interrupt_request_ends_a_sleep(client: AsyncKernelClient) -> None:
    busy = asyncio.create_task(client.execute("sleep 30"))
    await asyncio.sleep(0.05)
    assert (await client.interrupt()).content["status"] == "ok"
    reply = await asyncio.wait_for(busy, 5)
    assert reply.content["ename"] == "KeyboardInterrupt"


async def test_interrupt_as_a_signal(client: AsyncKernelClient, kernel: FakeKernel) -> None:
    busy = asyncio.create_task(client.execute("sleep 30"))
    await asyncio.sleep(0.05)
    kernel.interrupt()
    assert (await asyncio.wait_for(busy, 5)).content["ename"] == "KeyboardInterrupt"


async def test_a_short_sleep_finishes(client: AsyncKernelClient) -> None:
    outputs: list[Message] = []
    await client.execute("sleep 0.05; print woke", outputs=outputs)
    assert outputs[-1].content["text"] == "woke\n"


async def test_subshells_run_while_the_main_shell_sleeps(
    client: AsyncKernelClient, kernel: FakeKernel
) -> None:
    busy = asyncio.create_task(client.execute("sleep 30"))
    async with await client.create_subshell() as sub:
        assert kernel.subshells == [sub.subshell_id]
        outputs: list[Message] = []
        reply = await asyncio.wait_for(sub.execute("print in sub", outputs=outputs), 5)
        assert reply.content["status"] == "ok"
        assert outputs[-1].content["text"] == "in sub\n"
    assert kernel.subshells == []
    assert not busy.done()
    kernel.interrupt()
    await busy


async def test_without_subshells_the_client_is_told(transport: MemoryTransport) -> None:
    async with (
        FakeKernel(transport, features=()),
        AsyncKernelClient(transport, heartbeat=False) as client,
    ):
        await client.wait_for_ready(timeout=5)
        with pytest.raises(UnsupportedFeature):
            await client.create_subshell()


async def test_shutdown_exits(client: AsyncKernelClient, kernel: FakeKernel) -> None:
    reply = await client.shutdown()
    assert reply.content == {"status": "ok", "restart": False}
    assert kernel.exit_code == 0
    assert not client.transport.closed


async def test_exit_stops_the_heartbeat(client: AsyncKernelClient, kernel: FakeKernel) -> None:
    with pytest.raises(HeartbeatTimeout):
        await client.execute("exit 3", timeout=5)
    assert kernel.exit_code == 3


async def test_a_wrongly_routed_request_fails_the_test(transport: MemoryTransport) -> None:
    kernel = FakeKernel(transport)

    async def misroute() -> None:
        async with kernel, AsyncKernelClient(transport, heartbeat=False) as client:
            await client.wait_for_ready(timeout=5)
            # What a client with a broken routing table would do: never answered.
            transport.send("control", client.session.msg("execute_request", {"code": "1"}))
            await asyncio.sleep(0.05)
            assert kernel.of_type("execute_request")

    with pytest.raises(AssertionError, match="execute_request arrived on control"):
        await misroute()
    assert [e.kind for e in kernel.errors] == ["routing"]
    kernel.errors.clear()
    kernel.assert_no_errors()


async def test_stop_without_check(transport: MemoryTransport) -> None:
    kernel = FakeKernel(transport, welcome=False).start()
    async with AsyncKernelClient(transport, heartbeat=False) as client:
        transport.send("shell", client.session.msg("shutdown_request", {"restart": False}))
        await asyncio.sleep(0.05)
    assert kernel.of_type("shutdown_request")
    await kernel.stop(check=False)
    with pytest.raises(AssertionError, match="shutdown_request arrived on shell"):
        kernel.assert_no_errors()
