"""The WebSocket transport under the real AsyncKernelClient, on kernels started on real
servers by the RemoteProvisioner."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from dataclasses import replace

import pytest

from kernelkit import KernelDied, KernelError
from kernelkit.protocol import WS_V1_SUBPROTOCOL, Message
from kernelkit.remote import RemoteServer, ServerAPI
from kernelkit.transport import WebSocketTransport
from kernelkit.transport._websocket import channels_url
from tests.remote.kernels import Relay, connected, started

pytestmark = pytest.mark.integration


def _text(outputs: list[Message]) -> str:
    return "".join(m.content.get("text", "") for m in outputs if m.msg_type == "stream")


@pytest.mark.parametrize("kind", ["js", "kg"])
async def test_execute_outputs_kernel_info_stdin_and_subshells(
    kind: str, js: RemoteServer, kg: RemoteServer
) -> None:
    async with started(js if kind == "js" else kg) as p, connected(p) as kc:
        assert kc.transport.subprotocol == WS_V1_SUBPROTOCOL  # type: ignore[attr-defined]
        outputs: list[Message] = []
        reply = await kc.execute("print('hello'); 6 * 7", outputs=outputs, timeout=10)
        assert reply.content["status"] == "ok"
        assert _text(outputs) == "hello\n"
        result = next(m for m in outputs if m.msg_type == "execute_result")
        assert result.content["data"]["text/plain"] == "42"
        info = await kc.kernel_info(timeout=10)
        assert "kernel subshells" in info.content["supported_features"]
        shown: list[Message] = []
        await kc.execute_interactive(
            "print('hi', input('who? '))",
            output_hook=shown.append,
            stdin_hook=lambda m: "ws",
            timeout=10,
        )
        assert _text(shown) == "hi ws\n"
        async with await kc.create_subshell() as sub:
            busy = asyncio.Event()
            main = asyncio.create_task(
                kc.execute_interactive(
                    "import time; time.sleep(2)",
                    output_hook=lambda m: busy.set() if m.msg_type == "execute_input" else None,
                )
            )
            await asyncio.wait_for(busy.wait(), 10)
            t0 = time.monotonic()
            sub_out: list[Message] = []
            assert (await sub.execute("1 + 1", outputs=sub_out, timeout=10)).content[
                "status"
            ] == "ok"
            assert time.monotonic() - t0 < 1.0
            assert not main.done()
            assert (await main).content["status"] == "ok"


async def test_legacy_framing_when_no_subprotocol_is_offered(js: RemoteServer) -> None:
    async with started(js) as p, connected(p, subprotocol=False) as kc:
        assert kc.transport.subprotocol is None  # type: ignore[attr-defined]
        outputs: list[Message] = []
        await kc.execute("print('legacy')", outputs=outputs, timeout=10)
        assert _text(outputs) == "legacy\n"


async def test_interrupt_through_the_server(js: RemoteServer) -> None:
    async with started(js) as p, connected(p) as kc:
        # Wait for output of the code itself, not for execute_input: ipykernel 7.4 sends
        # no execute_reply at all when SIGINT lands after execute_input but before the
        # cell runs (IPython still transforming and compiling it: dispatch_shell logs
        # "KeyboardInterrupt caught in kernel" and drops the request), a gap that a
        # loaded machine stretches past the REST round trip of the interrupt.
        running = asyncio.Event()
        task = asyncio.create_task(
            kc.execute_interactive(
                "import time; print('running', flush=True); time.sleep(30)",
                output_hook=lambda m: running.set() if m.msg_type == "stream" else None,
                timeout=20,
            )
        )
        await asyncio.wait_for(running.wait(), 10)
        t0 = time.monotonic()
        await p.send_signal(signal.SIGINT)
        reply = await task
        assert reply.content["status"] == "error"
        assert reply.content["ename"] == "KeyboardInterrupt"
        assert time.monotonic() - t0 < 5


async def test_reconnect_after_a_dropped_socket_replays_outputs(
    js: RemoteServer, servers: dict[str, object]
) -> None:
    async with started(js) as p:
        port = int(js.url.rsplit(":", 1)[1].strip("/"))
        async with Relay(port) as relay:
            via_relay = replace(js, url=f"http://127.0.0.1:{relay.port}/")
            p.server = via_relay
            async with connected(p, ping_interval=None) as kc:
                transport = kc.transport
                assert isinstance(transport, WebSocketTransport)
                outputs: list[Message] = []
                seen = asyncio.Event()

                def hook(m: Message) -> None:
                    outputs.append(m)
                    if m.msg_type == "stream":
                        seen.set()

                code = "import time\nfor i in range(8):\n    print(i, flush=True); time.sleep(0.1)"
                task = asyncio.create_task(
                    kc.execute_interactive(code, output_hook=hook, timeout=20)
                )
                await asyncio.wait_for(seen.wait(), 10)
                relay.cut()  # the socket drops mid-execute; the kernel keeps printing
                reply = await task
                assert reply.content["status"] == "ok"
                assert _text(outputs).split() == [str(i) for i in range(8)]
                ids = [m.msg_id for m in outputs]
                assert len(ids) == len(set(ids))  # nothing delivered twice
                assert transport.reconnects >= 1
                assert (await kc.execute("1", timeout=10)).content["status"] == "ok"


async def test_kernel_killed_on_the_server_is_restarted_and_followed(js: RemoteServer) -> None:
    async with started(js) as p, connected(p) as kc:
        outputs: list[Message] = []
        await kc.execute("import os; print(os.getpid())", outputs=outputs, timeout=10)
        pid = int(_text(outputs))
        pending = asyncio.create_task(kc.execute("import time; time.sleep(30)", timeout=30))
        await asyncio.sleep(0.2)
        os.kill(pid, signal.SIGKILL)
        with pytest.raises(KernelDied, match="restarting"):
            await asyncio.wait_for(pending, 15)
        await kc.wait_for_ready(timeout=30)
        outputs.clear()
        await kc.execute("import os; print(os.getpid())", outputs=outputs, timeout=10)
        assert int(_text(outputs)) != pid
        assert await p.poll() is None


async def test_kernel_deleted_by_someone_else(js: RemoteServer) -> None:
    async with started(js) as p, connected(p) as kc:
        assert p.remote_kernel_id is not None
        async with ServerAPI(js) as api:
            assert await api.delete_kernel(p.remote_kernel_id)
        t0 = time.monotonic()
        status = await asyncio.wait_for(p.wait(), 5)
        assert status is not None
        assert time.monotonic() - t0 < 2.5
        kc.notify_dead(p.died_error(status, "the kernel was deleted on the server"))
        with pytest.raises(KernelDied, match="deleted on the server"):
            await kc.execute("1", timeout=5)


async def test_wrong_token_and_unknown_kernel_on_connect(
    js: RemoteServer, servers: dict[str, object]
) -> None:
    async with started(js) as p:
        assert p.remote_kernel_id is not None
        url = channels_url(js.url, p.remote_kernel_id)
        bad = WebSocketTransport(url, token="not-the-token-xyz")
        with pytest.raises(KernelError, match="refused the token") as caught:
            await bad.connect(_NullReceiver())
        assert "not-the-token-xyz" not in str(caught.value) + repr(bad)
        gone = WebSocketTransport(channels_url(js.url, "0" * 32), token=js.token())
        with pytest.raises(KernelDied, match="404"):
            await gone.connect(_NullReceiver())


class _NullReceiver:
    def message_received(self, channel: str, message: Message) -> None:
        pass

    def message_rejected(self, channel: str, error: object) -> None:
        pass

    def transport_lost(self, error: KernelError) -> None:
        pass


async def test_silent_socket_is_detected_and_replaced(js: RemoteServer) -> None:
    async with started(js) as p:
        port = int(js.url.rsplit(":", 1)[1].strip("/"))
        async with Relay(port) as relay:
            p.server = replace(js, url=f"http://127.0.0.1:{relay.port}/")
            async with connected(p, ping_interval=0.2, ping_timeout=0.5) as kc:
                transport = kc.transport
                assert isinstance(transport, WebSocketTransport)
                assert await transport.ping(1.0)
                relay.freeze()  # open but silent, as a hung relay or network
                assert not await transport.ping(0.3)
                await asyncio.sleep(1.0)  # past ping_interval + ping_timeout
                relay.thaw()
                # The keepalive gave up on the silent socket; a new one answers.
                assert await transport.ping(5.0)
                assert transport.reconnects >= 1
                assert (await kc.execute("1", timeout=10)).content["status"] == "ok"


async def test_message_over_max_size_is_refused_by_the_socket(js: RemoteServer) -> None:
    async with started(js) as p, connected(p, max_size=1 << 20) as kc:
        t0 = time.monotonic()
        # What followed the refused message on the old socket is lost with it: the
        # request in flight fails at once, saying why, instead of waiting for its timeout.
        with pytest.raises(KernelError, match="max_size"):
            await kc.execute("print('x' * (2 << 20)); print('after')", outputs=[], timeout=20)
        assert time.monotonic() - t0 < 5
        assert kc.rejected_messages == 1
        await kc.wait_for_ready(timeout=10)
        assert (await kc.execute("1", timeout=10)).content["status"] == "ok"


async def test_enterprise_gateway_end_to_end(eg: RemoteServer) -> None:
    async with ServerAPI(eg) as api:
        info = await api.info()
        assert info.kind == "enterprise_gateway"
        assert info.gateway_version == "3.3.0"
    async with started(eg) as p, connected(p) as kc:
        assert p.remote_kernel_id is not None
        async with ServerAPI(eg) as api:
            assert p.remote_kernel_id in [k.id for k in await api.kernels()]
        outputs: list[Message] = []
        await kc.execute(
            "import os; print(os.environ['KERNEL_USERNAME'])", outputs=outputs, timeout=10
        )
        assert _text(outputs) == "kernelkit-test\n"
        async with await kc.create_subshell() as sub:
            assert (await sub.execute("1", timeout=10)).content["status"] == "ok"
