"""Cost of encrypting the nanny's control socket, and how fast a client hears of a death.

Two ipykernel ``python3`` kernels under a nanny on 127.0.0.1, one whose control socket
is a CurveZMQ server (``control_encryption="curve"``), one in plain text (``"none"``).
After a warm-up, ``ROUNDS`` ``status`` requests on each, alternating in batches of 20 so
that load on the machine falls on both alike; the medians and their ratio are printed.
Then, for each, a client made from the connection file (it subscribes to the nanny) has
a request pending when the kernel is SIGKILLed: the time to its ``KernelDied``::

    .venv/bin/python bench/nanny_control_roundtrip.py [ROUNDS]
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

from kernelkit import KernelDied, read_connection_file
from kernelkit.client import AsyncKernelClient
from kernelkit.manager import AsyncKernelManager
from kernelkit.nanny import NannyProvisioner
from kernelkit.specs import KernelSpec, load_kernel_spec
from kernelkit.transport import NannyControl

BATCH = 20
WARMUP = 20


def spec(mode: str) -> KernelSpec:
    s = load_kernel_spec(Path(sys.prefix) / "share" / "jupyter" / "kernels" / "python3")
    argv = (sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}")
    provisioner = {"provisioner_name": "nanny-provisioner", "config": {"control_encryption": mode}}
    return dataclasses.replace(
        s, argv=argv, metadata={**s.metadata, "kernel_provisioner": provisioner}
    )


async def main(rounds: int) -> None:
    os.environ["JUPYTER_RUNTIME_DIR"] = tempfile.mkdtemp(prefix="kk-bench-")
    kms = {mode: AsyncKernelManager(kernel_spec=spec(mode)) for mode in ("curve", "none")}
    for km in kms.values():
        await km.start_kernel()
    times: dict[str, list[float]] = {m: [] for m in kms}
    death: dict[str, float] = {}
    try:
        controls = {}
        for mode, km in kms.items():
            assert km.connection_file is not None
            info = read_connection_file(km.connection_file)
            assert bool(info.nanny_publickey) == (mode == "curve")
            controls[mode] = NannyControl(info.nanny, key=info.key, server_key=info.nanny_publickey)
            for _ in range(WARMUP):
                await controls[mode].request("status")
        done = 0
        while done < rounds:
            for mode, control in controls.items():
                for _ in range(BATCH):
                    t0 = time.perf_counter()
                    await control.request("status")
                    times[mode].append(time.perf_counter() - t0)
            done += BATCH
        for control in controls.values():
            await control.aclose()
        for mode, km in kms.items():
            assert km.connection_file is not None
            p = km.provisioner
            assert isinstance(p, NannyProvisioner)
            kc = AsyncKernelClient.from_connection_file(km.connection_file, silence_timeout=30.0)
            async with kc:
                await kc.wait_for_ready(timeout=60)
                pending = asyncio.ensure_future(kc.execute("import time; time.sleep(60)"))
                await asyncio.sleep(0.3)
                t0 = time.perf_counter()
                os.kill(p.pid or 0, signal.SIGKILL)
                try:
                    await asyncio.wait_for(pending, 10)
                except KernelDied:
                    death[mode] = time.perf_counter() - t0
    finally:
        for km in kms.values():
            await km.shutdown_kernel(now=True)
    curve, plain = statistics.median(times["curve"]), statistics.median(times["none"])
    n = len(times["curve"])
    print(f"nanny status round trip, median of {n}: curve {curve * 1e6:.0f} us, "
          f"plain {plain * 1e6:.0f} us, ratio {curve / plain:.2f}")  # fmt: skip
    for mode, seconds in death.items():
        print(f"SIGKILL -> KernelDied, client from the connection file ({mode}): "
              f"{seconds * 1000:.1f} ms")  # fmt: skip


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 200))
