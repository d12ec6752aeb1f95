"""The REST client against a real Jupyter Server and Kernel Gateway."""

from __future__ import annotations

import pytest

from kernelkit import KernelStartError, NoSuchKernel
from kernelkit.remote import (
    RemoteServer,
    ServerAPI,
    ServerUnreachable,
    TokenRefused,
)
from tests.remote.servers import RunningServer, free_port

pytestmark = pytest.mark.integration


async def test_tells_jupyter_server_and_kernel_gateway_apart(
    js: RemoteServer, kg: RemoteServer
) -> None:
    async with ServerAPI(js) as api:
        info = await api.info()
        assert (info.kind, info.gateway_version) == ("jupyter_server", None)
    async with ServerAPI(kg) as api:
        assert (await api.info()).kind == "kernel_gateway"


async def test_kernelspecs_have_absolute_resource_urls(js: RemoteServer) -> None:
    async with ServerAPI(js) as api:
        default, specs = await api.kernelspecs()
    assert default == "python3"
    python3 = next(s for s in specs if s.name == "python3")
    assert python3.spec["language"] == "python"
    assert all(url.startswith(js.url) for url in python3.resources.values())


async def test_start_interrupt_restart_delete(js: RemoteServer) -> None:
    async with ServerAPI(js) as api:
        model = await api.start_kernel("python3", env={"KERNEL_USERNAME": "tester"})
        try:
            assert model.name == "python3"
            assert model.id in [k.id for k in await api.kernels()]
            await api.interrupt_kernel(model.id)
            assert (await api.restart_kernel(model.id)).id == model.id
        finally:
            assert await api.delete_kernel(model.id)
        assert await api.get_kernel(model.id) is None
        assert not await api.delete_kernel(model.id)


@pytest.mark.parametrize("kind", ["js", "kg"])
async def test_unknown_kernelspec_names_it_not_the_traceback(
    kind: str, js: RemoteServer, kg: RemoteServer
) -> None:
    server = js if kind == "js" else kg
    async with ServerAPI(server) as api:
        with pytest.raises(NoSuchKernel) as caught:
            await api.start_kernel("no-such-spec")
    message = str(caught.value)
    assert "no-such-spec" in message
    assert "python3" in message
    assert "Traceback" not in message
    assert "File " not in message


@pytest.mark.parametrize("kind", ["js", "kg"])
async def test_wrong_token_is_refused_and_never_shown(
    kind: str, servers: dict[str, RunningServer]
) -> None:
    server = RemoteServer(kind, servers[kind].url, token_env="KK_TEST_WRONG_TOKEN")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("KK_TEST_WRONG_TOKEN", "wrong-token-abc123")
        async with ServerAPI(server) as api:
            with pytest.raises(TokenRefused) as caught:
                await api.kernelspecs()
    assert "refused the token" in str(caught.value)
    assert "wrong-token-abc123" not in str(caught.value)
    assert "wrong-token-abc123" not in repr(api) + repr(server)


async def test_kernel_gateway_that_does_not_list_kernels(kg: RemoteServer) -> None:
    async with ServerAPI(kg) as api:
        with pytest.raises(TokenRefused, match="list_kernels"):
            await api.kernels()


async def test_server_down_names_the_url() -> None:
    server = RemoteServer("down", f"http://127.0.0.1:{free_port()}/")
    async with ServerAPI(server, timeout=2) as api:
        with pytest.raises(ServerUnreachable, match=r"cannot reach server 'down' \(http://127"):
            await api.info()


async def test_enterprise_gateway_refusing_root_says_why(eg: RemoteServer) -> None:
    async with ServerAPI(eg) as api:
        with pytest.raises(KernelStartError, match="KERNEL_USERNAME") as caught:
            await api.start_kernel("python3", env={"KERNEL_USERNAME": "root"})
        assert "token" not in str(caught.value)
        with pytest.raises(NoSuchKernel, match="remote/eg/no-such-spec"):
            await api.start_kernel("no-such-spec", env={"KERNEL_USERNAME": "kernelkit-test"})
