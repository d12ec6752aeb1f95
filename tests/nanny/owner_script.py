"""An owner process for the nanny tests: ``python owner_script.py OUT [detached]``.

Starts ipykernel under a nanny, has it start three escapees (a ``setsid`` child, a
double-forked daemon, and a ``setsid`` child with an emptied environment), writes what it
started to OUT as JSON, then waits to be killed; with ``detached`` it exits at once
without stopping anything.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys

from kernelkit.manager import AsyncKernelManager
from kernelkit.nanny import NannyProvisioner
from tests.nanny.escapees import ESCAPEES
from tests.nanny.helpers import nanny_spec


def _read(path: str) -> str:
    with open(path) as f:
        return f.read()


def _write(path: str, text: str) -> None:
    with open(path + ".tmp", "w") as f:
        f.write(text)
    os.rename(path + ".tmp", path)  # atomic: the test never reads half a record


async def main(out: str, detached: bool) -> None:
    km = AsyncKernelManager(kernel_spec=nanny_spec(detached=detached))
    await km.start_kernel()
    p = km.provisioner
    assert isinstance(p, NannyProvisioner)
    escapees = []
    async with km.client() as kc:
        await kc.wait_for_ready(timeout=60)
        for n, template in enumerate(ESCAPEES):
            path = f"{out}.{n}"
            reply = await kc.execute(template.format(out=path), timeout=30)
            assert reply.content["status"] == "ok", reply.content
            escapees.append(int(_read(path)))
    record = {
        "nanny": p.nanny_pid,
        "kernel": p.pid,
        "escapees": escapees,
        "connection_file": str(p.connection_file),
    }
    _write(out, json.dumps(record))
    if detached:
        os._exit(0)  # no shutdown, no cleanup: the kernel must stay
    signal.pause()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], len(sys.argv) > 2 and sys.argv[2] == "detached"))
