"""The client against a real ipykernel 7.4 (started here by hand, killed by process group)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from kernelkit import ExecutionError, HeartbeatTimeout, KernelDied, KernelError
from kernelkit._connection import ConnectionInfo, allocate_ports, new_key, write_connection_file
from kernelkit.client import AsyncKernelClient, KernelClient
from kernelkit.protocol import Message

pytestmark = pytest.mark.integration


@dataclass
class Kernel:
    info: ConnectionInfo
    connection_file: Path
    proc: subprocess.Popen[bytes]

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)


def start_ipykernel(tmp: Path) -> Kernel:
    ports = allocate_ports(5)
    info = ConnectionInfo(
        shell_port=ports[0],
        iopub_port=ports[1],
        stdin_port=ports[2],
        control_port=ports[3],
        hb_port=ports[4],
        key=new_key(),
        kernel_name="python3",
    )
    path = write_connection_file(info, tmp / "kernel.json")
    log = (tmp / "kernel.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "ipykernel_launcher", "-f", str(path)],
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    log.close()
    return Kernel(info, path, proc)


@pytest.fixture(scope="module")
def kernel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kernel]:
    k = start_ipykernel(tmp_path_factory.mktemp("ipykernel"))
    try:
        yield k
    finally:
        k.kill()


@pytest.fixture
async def client(kernel: Kernel) -> AsyncIterator[AsyncKernelClient]:
    async with AsyncKernelClient.from_connection_info(kernel.info) as c:
        await c.wait_for_ready(timeout=60)
        yield c


def _text(outputs: list[Message]) -> str:
    # ipykernel may split one print across several stream messages.
    return "".join(m.content["text"] for m in outputs if m.header.msg_type == "stream")


async def test_execute_outputs(client: AsyncKernelClient) -> None:
    outputs: list[Message] = []
    code = "print('out'); import sys; print('err', file=sys.stderr); display(42); 6 * 7"
    reply = await client.execute(code, outputs=outputs)
    assert reply.content["status"] == "ok"
    by_type = {m.header.msg_type: m for m in outputs}
    assert by_type["execute_input"].content["code"] == code
    assert by_type["display_data"].content["data"]["text/plain"] == "42"
    assert by_type["execute_result"].content["data"]["text/plain"] == "42"
    streams = {m.content["name"]: m.content["text"] for m in outputs if m.msg_type == "stream"}
    assert streams == {"stdout": "out\n", "stderr": "err\n"}

    errors: list[Message] = []
    reply = await client.execute("1 / 0", outputs=errors)
    assert reply.content["status"] == "error"
    assert [m.content["ename"] for m in errors if m.msg_type == "error"] == ["ZeroDivisionError"]
    with pytest.raises(ExecutionError, match="ZeroDivisionError"):
        await client.execute("1 / 0", raise_on_error=True)


async def test_other_requests(client: AsyncKernelClient) -> None:
    info = client.kernel_info_reply
    assert info is not None
    assert "kernel subshells" in info.content["supported_features"]
    await client.execute("get_ipython().Completer.use_jedi = False")  # jedi takes seconds
    assert "import" in (await client.complete("impo")).content["matches"]
    assert (await client.inspect("print")).content["found"] is True
    assert (await client.is_complete("for x in y:")).content["status"] == "incomplete"
    assert (await client.comm_info()).content["status"] == "ok"
    await client.execute("history_marker = 1")
    history = await client.history(hist_access_type="tail", n=5)
    assert any("history_marker" in entry[2] for entry in history.content["history"])


async def test_stdin_round_trip(client: AsyncKernelClient) -> None:
    shown: list[Message] = []
    prompts: list[str] = []

    def answer(msg: Message) -> str:
        prompts.append(msg.content["prompt"])
        return "kernelkit"

    reply = await client.execute_interactive(
        "name = input('who? '); print('hello', name)",
        output_hook=shown.append,
        stdin_hook=answer,
        timeout=30,
    )
    assert reply.content["status"] == "ok"
    assert prompts == ["who? "]
    assert _text(shown) == "hello kernelkit\n"


async def test_interrupt_by_message(client: AsyncKernelClient) -> None:
    busy = asyncio.Event()

    def on_output(msg: Message) -> None:
        # The cell's own output: ipykernel drops the reply of a cell interrupted between
        # execute_input and running it.
        if msg.header.msg_type == "stream":
            busy.set()

    task = asyncio.create_task(
        client.execute_interactive(
            "import time; print('in', flush=True); time.sleep(30)", output_hook=on_output
        )
    )
    await asyncio.wait_for(busy.wait(), 10)
    started = time.monotonic()
    assert (await client.interrupt(timeout=10)).content["status"] == "ok"
    reply = await asyncio.wait_for(task, 10)
    assert reply.content["ename"] == "KeyboardInterrupt"
    assert time.monotonic() - started < 5


async def test_concurrent_requests(client: AsyncKernelClient) -> None:
    lists: list[list[Message]] = [[] for _ in range(20)]
    replies = await asyncio.gather(
        *(client.execute(f"print({i})", outputs=lists[i]) for i in range(20))
    )
    for i, (reply, outputs) in enumerate(zip(replies, lists, strict=True)):
        assert reply.content["status"] == "ok"
        assert _text(outputs) == f"{i}\n"
    counts = [r.content["execution_count"] for r in replies]
    assert counts == sorted(counts)


async def test_two_clients_each_get_their_own_replies(kernel: Kernel) -> None:
    async with (
        AsyncKernelClient.from_connection_info(kernel.info) as a,
        AsyncKernelClient.from_connection_info(kernel.info) as b,
    ):
        await asyncio.gather(a.wait_for_ready(60), b.wait_for_ready(60))
        out_a: list[list[Message]] = [[] for _ in range(10)]
        out_b: list[list[Message]] = [[] for _ in range(10)]
        replies = await asyncio.gather(
            *(a.execute(f"print('a{i}')", outputs=out_a[i]) for i in range(10)),
            *(b.execute(f"print('b{i}')", outputs=out_b[i]) for i in range(10)),
        )
    for reply in replies[:10]:
        assert reply.parent_header is not None
        assert reply.parent_header.session == a.session.session_id
    for reply in replies[10:]:
        assert reply.parent_header is not None
        assert reply.parent_header.session == b.session.session_id
    assert [_text(o) for o in out_a] == [f"a{i}\n" for i in range(10)]
    assert [_text(o) for o in out_b] == [f"b{i}\n" for i in range(10)]


def test_blocking_client_from_connection_file(kernel: Kernel) -> None:
    with KernelClient.from_connection_file(kernel.connection_file) as kc:
        kc.wait_for_ready(timeout=60)
        outputs: list[Message] = []
        assert kc.execute("print('blocking')", outputs=outputs).content["status"] == "ok"
        assert _text(outputs) == "blocking\n"
        shown: list[Message] = []
        kc.execute_interactive(
            "print(input('x'))", output_hook=shown.append, stdin_hook=lambda m: "typed"
        )
        assert _text(shown) == "typed\n"
        with kc.create_subshell() as sub:
            assert sub.execute("1 + 1").content["status"] == "ok"


# -- subshells ---------------------------------------------------------------------------


async def test_subshell_answers_while_main_shell_sleeps(client: AsyncKernelClient) -> None:
    async with await client.create_subshell() as sub:
        busy = asyncio.Event()
        main = asyncio.create_task(
            client.execute_interactive(
                "import time; time.sleep(3)",
                output_hook=lambda m: busy.set() if m.msg_type == "execute_input" else None,
            )
        )
        await asyncio.wait_for(busy.wait(), 10)
        started = time.monotonic()
        outputs: list[Message] = []
        reply = await sub.execute("1 + 1", outputs=outputs, timeout=10)
        elapsed = time.monotonic() - started
        assert reply.content["status"] == "ok"
        results = [m for m in outputs if m.msg_type == "execute_result"]
        assert results[0].content["data"]["text/plain"] == "2"
        assert not main.done()
        assert elapsed < 1.0
        assert (await main).content["status"] == "ok"


async def test_eight_subshells_concurrently_without_crossed_outputs(
    client: AsyncKernelClient,
) -> None:
    subs = await asyncio.gather(*(client.create_subshell() for _ in range(8)))
    assert sorted(await client.list_subshells()) == sorted(s.subshell_id for s in subs)
    outputs: list[list[Message]] = [[] for _ in subs]
    started = time.monotonic()
    replies = await asyncio.gather(
        *(
            sub.execute(
                f"import time\nfor k in range(3):\n    print('sub{i}', k)\n    time.sleep(0.2)",
                outputs=outputs[i],
                timeout=30,
            )
            for i, sub in enumerate(subs)
        )
    )
    elapsed = time.monotonic() - started
    assert all(r.content["status"] == "ok" for r in replies)
    for i, out in enumerate(outputs):
        assert _text(out) == "".join(f"sub{i} {k}\n" for k in range(3))
    assert elapsed < 8 * 0.6  # they ran side by side, not one after another
    await asyncio.gather(*(s.aclose() for s in subs))
    assert await client.list_subshells() == []


async def test_message_to_a_deleted_subshell(client: AsyncKernelClient) -> None:
    sub = await client.create_subshell()
    await sub.aclose()
    reply = await client.execute("1", subshell_id=sub.subshell_id, outputs=[], timeout=10)
    assert reply.content["status"] == "error"
    assert reply.content["ename"] == "UnknownSubshellError"
    with pytest.raises(KernelError, match="Unknown subshell_id"):
        await client.delete_subshell(sub.subshell_id)


async def test_deleting_a_busy_subshell(client: AsyncKernelClient) -> None:
    sub = await client.create_subshell()
    started = asyncio.Event()
    running = asyncio.create_task(
        sub.execute_interactive(
            "import time; time.sleep(1)",
            output_hook=lambda m: started.set() if m.msg_type == "execute_input" else None,
        )
    )
    await asyncio.wait_for(started.wait(), 10)
    await client.delete_subshell(sub.subshell_id)
    with pytest.raises(KernelError, match="was deleted while"):
        await asyncio.wait_for(running, 1)
    assert sub.subshell_id not in await client.list_subshells()
    assert (await client.execute("'still fine'")).content["status"] == "ok"


# -- death -------------------------------------------------------------------------------


async def test_sigkill_mid_execute(tmp_path: Path) -> None:
    kernel = start_ipykernel(tmp_path)
    try:
        async with (
            # Not owned: only its silence tells this one (silence_timeout, not a busy kernel).
            AsyncKernelClient.from_connection_info(kernel.info, silence_timeout=0.5) as watched,
            AsyncKernelClient.from_connection_info(kernel.info, heartbeat=False) as told,
        ):
            await asyncio.gather(watched.wait_for_ready(60), told.wait_for_ready(60))
            await asyncio.sleep(0.6)  # the heartbeat has answered at least once
            by_heartbeat = asyncio.create_task(watched.execute("import time; time.sleep(60)"))
            by_notice = asyncio.create_task(told.execute("import time; time.sleep(60)"))
            await asyncio.sleep(0.3)
            os.killpg(kernel.proc.pid, signal.SIGKILL)
            killed = time.monotonic()

            told.notify_dead(KernelDied(kernel_name="python3", exit_code=-9))
            with pytest.raises(KernelDied, match="killed by signal 9"):
                await asyncio.wait_for(by_notice, 1)
            assert time.monotonic() - killed < 0.2

            with pytest.raises(HeartbeatTimeout):
                await asyncio.wait_for(by_heartbeat, 5)  # timeout=None on the request
            assert time.monotonic() - killed < 2.0
            with pytest.raises(HeartbeatTimeout):
                await watched.kernel_info()
    finally:
        kernel.kill()
