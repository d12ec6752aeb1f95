"""Every kernelkit API the benchmarks call, in one place.

The names follow /work/briefs/contracts.md and, for the parts not landed yet, the
jupyter_client-compatible names DESIGN.md promises (``AsyncKernelManager(kernel_name=...)``,
``start_kernel``, ``client()``, ``wait_for_ready``, ``execute``, ``shutdown_kernel(now=...)``,
``restart_kernel``, ``MultiKernelManager``, ``AsyncKernelPool``). When an API is absent the
lookup raises ImportError/AttributeError and the figure shows kernelkit as missing, with
that message. If a name changes, this is the only file to edit.
"""

from __future__ import annotations

import importlib
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack, ExitStack
from pathlib import Path
from typing import Any


def api(module: str, name: str) -> Any:
    """``module.name``; ImportError/AttributeError (with a clear text) when missing."""
    mod = importlib.import_module(module)
    try:
        return getattr(mod, name)
    except AttributeError:
        raise AttributeError(f"{module}.{name} does not exist yet") from None


# -- protocol ---------------------------------------------------------------------------


def session(key: bytes) -> Any:
    return api("kernelkit.protocol", "Session")(key)


# -- specs and environments -------------------------------------------------------------


def list_specs() -> Callable[[], Any]:
    """The call that lists every kernelspec with its kernel.json loaded."""
    return api("kernelkit.specs", "scan_kernel_specs")  # type: ignore[no-any-return]


def list_env_kernels() -> Callable[[], Any]:
    """The call that lists the kernels of every environment found (figure 5).

    Through ``kernelkit.discovery.KernelFinder`` once it exists; until then, the envs
    layer (``find_environments``) plus a kernelspec scan of each environment's
    ``share/jupyter/kernels``, which is what the finder's env provider does.
    """
    try:
        finder_cls = api("kernelkit.discovery", "KernelFinder")
    except (ImportError, AttributeError):
        find_environments = api("kernelkit.envs", "find_environments")
        scan = list_specs()

        def via_envs() -> list[Any]:
            found: list[Any] = []
            for env in find_environments().environments:
                if env.kernels_dir is not None:
                    found.extend(scan([env.kernels_dir]))
            return found

        return via_envs

    def via_finder() -> list[Any]:
        return list(finder_cls().find())

    return via_finder


# -- client -----------------------------------------------------------------------------


async def open_async_client(connection_file: Path, stack: AsyncExitStack) -> Any:
    """An AsyncKernelClient connected to the kernel in ``connection_file``, ready."""
    cls = api("kernelkit.client", "AsyncKernelClient")
    kc = cls.from_connection_file(connection_file)
    kc = await _enter_async(kc, stack)
    await kc.wait_for_ready(timeout=30)
    return kc


def open_blocking_client(connection_file: Path, stack: ExitStack) -> Any:
    """A blocking KernelClient connected to the kernel in ``connection_file``, ready."""
    cls = api("kernelkit.client", "KernelClient")
    kc = stack.enter_context(cls.from_connection_file(connection_file))
    kc.wait_for_ready(timeout=30)
    return kc


async def _enter_async(obj: Any, stack: AsyncExitStack) -> Any:
    if hasattr(obj, "__aenter__"):
        return await stack.enter_async_context(obj)
    if hasattr(obj, "aclose"):
        stack.push_async_callback(obj.aclose)
    return obj


def _ignore(msg: Any) -> None:
    pass


async def execute(kc: Any, code: str) -> Any:
    """One execute round trip: the reply, after the request's idle status (the same call
    jupyter_client's contestant makes, with an output hook that ignores the outputs)."""
    return await kc.execute_interactive(code, output_hook=_ignore)


async def execute_streaming(kc: Any, code: str, hook: Callable[[Any], None], timeout: float) -> Any:
    """Execute ``code``, calling ``hook`` with every IOPub output of the request."""
    return await kc.execute_interactive(code, output_hook=hook, timeout=timeout)


async def kernel_info(kc: Any) -> Any:
    return await kc.kernel_info()


def execute_blocking(kc: Any, code: str) -> Any:
    return kc.execute_interactive(code, output_hook=_ignore)


def execute_streaming_blocking(
    kc: Any, code: str, hook: Callable[[Any], None], timeout: float
) -> Any:
    return kc.execute_interactive(code, output_hook=hook, timeout=timeout)


def kernel_info_blocking(kc: Any) -> Any:
    return kc.kernel_info()


def msg_type(msg: Any) -> str:
    """The type of a message as the output hook receives it."""
    t = getattr(msg, "msg_type", None)
    return t if isinstance(t, str) else str(msg["header"]["msg_type"])


# -- manager, many kernels, pool --------------------------------------------------------


async def start_kernel(kernel_name: str, stack: AsyncExitStack) -> tuple[Any, Any]:
    """(manager, client) of a new kernel, ready; the stack shuts it down if still up."""
    km = api("kernelkit.manager", "AsyncKernelManager")(kernel_name=kernel_name)
    await km.start_kernel()
    stack.push_async_callback(_shutdown_if_alive, km)
    kc = await _enter_async(km.client(), stack)
    await kc.wait_for_ready(timeout=60)
    return km, kc


async def _shutdown_if_alive(km: Any) -> None:
    alive = km.is_alive()
    if _isawaitable(alive):
        alive = await alive
    if alive:
        await km.shutdown_kernel(now=True)


async def close_client(kc: Any) -> None:
    for name in ("aclose", "close", "stop_channels"):
        fn = getattr(kc, name, None)
        if fn is not None:
            result = fn()
            if _isawaitable(result):
                await result
            return


async def restart(km: Any, kc: Any) -> None:
    await km.restart_kernel(now=False)
    await kc.wait_for_ready(timeout=60)


async def shutdown(km: Any) -> None:
    await km.shutdown_kernel(now=False)


def multi_kernel_manager() -> Any:
    """An async multi-kernel manager (``AsyncMultiKernelManager``, else ``MultiKernelManager``
    when that one is async)."""
    try:
        return api("kernelkit.manager", "AsyncMultiKernelManager")()
    except (ImportError, AttributeError):
        cls = api("kernelkit.manager", "MultiKernelManager")
        import inspect  # see _isawaitable

        if not inspect.iscoroutinefunction(cls.start_kernel):
            raise AttributeError(
                "kernelkit.manager has no AsyncMultiKernelManager and MultiKernelManager "
                "is not async"
            ) from None
        return cls()


async def mkm_start_ready(mkm: Any, kernel_name: str, n: int) -> list[Any]:
    """Start ``n`` kernels concurrently; return their clients once every one is ready."""

    async def one() -> Any:
        kernel_id = await mkm.start_kernel(kernel_name=kernel_name)
        km = mkm.get_kernel(kernel_id)
        kc = await _enter_async(km.client(), AsyncExitStack())
        await kc.wait_for_ready(timeout=120)
        return kc

    return list(await _gather([one() for _ in range(n)]))


async def mkm_shutdown_all(mkm: Any) -> None:
    await mkm.shutdown_all()


async def _gather(aws: list[Awaitable[Any]]) -> list[Any]:
    import asyncio  # see _isawaitable

    return list(await asyncio.gather(*aws))


def _isawaitable(obj: object) -> bool:
    # asyncio and inspect are imported where used, not at the top: figure 5's
    # fresh-process worker imports this module for the listing call, and a listing must
    # not pay for asyncio (with ssl, logging, subprocess) that it never imports itself.
    import inspect

    return inspect.isawaitable(obj)


async def pool_open(kernel_name: str, size: int, stack: AsyncExitStack) -> Any:
    """An AsyncKernelPool of ``size`` warm kernels; returns once it is full (``start()``)."""
    pool = api("kernelkit.manager", "AsyncKernelPool")(kernel_name=kernel_name, size=size)
    pool = await _enter_async(pool, stack)
    await pool.start()
    return pool


async def pool_take(pool: Any) -> Any:
    """Ask the pool for a kernel; returns what it hands out (a ready kernel, ours now)."""
    return await pool.acquire()


async def pool_release(kernel: Any) -> None:
    """Shut down a kernel the pool handed out."""
    await kernel.aclose()
