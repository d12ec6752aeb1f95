"""Figure 10: the nanny's cost and its death notice.

Both contestants are kernelkit's ``AsyncKernelManager`` on the ``bench-ipykernel`` spec:
one through the nanny (``nanny-provisioner``: a supervisor process launches the kernel),
one with ``LocalProvisioner`` directly, shown as the floor (the nanny's cost is what it
adds to kernelkit's own launch). One sample:

- start: from asking for a kernel to a client that is ready (kernel_info_reply + IOPub);
- death notice: the kernel SIGKILLed while it runs ``time.sleep``, to the pending
  request failing with ``KernelDied`` (the nanny's ``kernel_died`` event, or the
  manager's pidfd without one). The client's heartbeat limit is set long (30 s), so
  what is timed is the notice, not the heartbeat.

The nanny starts an ipykernel-like kernel before its own imports (its owner prepares
the launch: ``kernelkit.nanny._prepare``, ``_first``), so what it adds is about one
Python start-up and the CPU its imports take while the kernel boots.

There is no jupyter_client side: it has no nanny.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import signal
import time
from typing import Any

from bench import _kk, _procs
from bench._config import Config
from bench._core import FLOOR, KERNELKIT, AsyncContestant, Group, Metric, Target

TIMEOUT = 60.0

METRICS = [
    Metric("start", "start-to-ready (ipykernel)", "ms", target=Target(FLOOR, "<=", 1.1)),
    Metric("death", "SIGKILL to KernelDied on a pending request", "ms"),
]


class _Lifecycle(AsyncContestant):
    nanny = False

    async def asetup(self) -> None:
        spec = _kk.api("kernelkit.specs", "get_kernel_spec")(_procs.IPYKERNEL_SPEC)
        if self.nanny:
            _kk.api("kernelkit.nanny", "NannyProvisioner")
            metadata = dict(spec.metadata)
            metadata["kernel_provisioner"] = {"provisioner_name": "nanny-provisioner"}
            spec = dataclasses.replace(spec, metadata=metadata)
        self.spec = spec
        self.km_cls = _kk.api("kernelkit.manager", "AsyncKernelManager")
        self.died = _kk.api("kernelkit", "KernelDied")

    async def asample(self) -> dict[str, float]:
        km: Any = self.km_cls(kernel_spec=self.spec)
        try:
            t0 = time.perf_counter()
            await km.start_kernel()
            kc = km.client(heartbeat_timeout=30.0)
            async with kc:
                await kc.wait_for_ready(timeout=TIMEOUT)
                t1 = time.perf_counter()
                pending = asyncio.ensure_future(kc.execute("import time; time.sleep(60)"))
                await asyncio.sleep(0.2)
                t2 = time.perf_counter()
                os.kill(km.provisioner.pid, signal.SIGKILL)
                try:
                    await asyncio.wait_for(pending, TIMEOUT)
                except self.died:
                    t3 = time.perf_counter()
                else:
                    raise RuntimeError("the request of a killed kernel did not fail")
        finally:
            await km.shutdown_kernel(now=True)
        return {"start": (t1 - t0) * 1000.0, "death": (t3 - t2) * 1000.0}


class NannyLifecycle(_Lifecycle):
    name = role = KERNELKIT
    note = "through the nanny (nanny-provisioner)"
    nanny = True


class LocalLifecycle(_Lifecycle):
    name = "kernelkit-local"
    role = FLOOR
    note = "kernelkit's LocalProvisioner, no nanny"


def groups(cfg: Config) -> list[Group]:
    return [
        Group(
            figure=10,
            name="nanny",
            metrics=METRICS,
            contestants=[NannyLifecycle, LocalLifecycle],
            reps=cfg.reps(2, 8),
            warmup=cfg.pick(0, 1),
            budget_s=cfg.pick(20, 90),
            note="floor = kernelkit without a nanny",
        )
    ]
