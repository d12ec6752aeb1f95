"""The heartbeat probe that confirms parent-chosen ports (a restart's sticky ports)."""

from __future__ import annotations

import asyncio
import threading
import time

import zmq

from kernelkit._connection import allocate_ports
from kernelkit.provisioning._sockets import HeartbeatProbe


async def test_probe_answers_soon_after_a_late_bind() -> None:
    # The kernel binds its heartbeat port a while after it was started (ipykernel: about
    # 0.3-0.5 s); the probe must not sit in zmq's reconnect back-off (100 ms and growing
    # by default) once the port is there.
    (port,) = allocate_ports(1)
    url = f"tcp://127.0.0.1:{port}"
    ctx = zmq.Context()
    rep = ctx.socket(zmq.REP)
    bound_at: list[float] = []

    def serve() -> None:
        rep.bind(url)
        bound_at.append(time.monotonic())
        if rep.poll(5000):
            rep.send(rep.recv())

    probe = HeartbeatProbe(url, context=ctx)
    try:
        await asyncio.sleep(0.4)  # the probe keeps trying meanwhile
        thread = threading.Thread(target=serve)
        thread.start()
        await asyncio.wait_for(probe.answered, 5)
        delay = time.monotonic() - bound_at[0]
        thread.join()
        assert delay < 0.1, delay
    finally:
        probe.close()
        rep.close(linger=0)
        ctx.term()
