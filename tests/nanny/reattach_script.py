"""Run as a separate process: re-attach to a kernel on another host from its connection
file alone, run code in it, then stop it. Prints one JSON line of what it saw."""

from __future__ import annotations

import asyncio
import sys

import orjson

from kernelkit.nanny import AsyncAttachedKernel


async def main(path: str) -> None:
    async with AsyncAttachedKernel.from_connection_file(path) as k:
        assert k.tunnel is not None
        tunnel_pid = k.tunnel.pid
        alive = await k.is_alive()
        async with k.client() as kc:
            await kc.wait_for_ready(timeout=60)
            reply = await kc.execute("import os; print(os.getpid())", timeout=30)
        await k.shutdown_kernel(now=True)
    seen = {
        "alive": alive,
        "status": reply.content["status"],
        "tunnel_pid": tunnel_pid,
        "ip": k.connection_info.ip,
    }
    print(orjson.dumps(seen).decode())


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
