"""Cost of CurveZMQ: execute round trip to ipykernel with and without encryption, one run.

Two ipykernel ``python3`` kernels on 127.0.0.1, one launched with ``encryption="curve"``
(every socket a CurveZMQ server), one with ``encryption="none"``; one kernelkit client
each. After a warm-up, ``ROUNDS`` executes of ``pass`` (reply and idle awaited) on each,
alternating in batches of 20 so that load on the machine falls on both alike; the
medians and their ratio are printed. With jupyter_client present (the test extra), its
``transport_encryption="auto"`` vs ``"disabled"`` is measured the same way, for reference::

    .venv/bin/python bench/curve_roundtrip.py [ROUNDS]
"""

from __future__ import annotations

import asyncio
import dataclasses
import statistics
import sys
import time
from pathlib import Path

from kernelkit.client import AsyncKernelClient
from kernelkit.provisioning import LocalProvisioner, launch_provisioner
from kernelkit.specs import KernelSpec, load_kernel_spec

BATCH = 20
WARMUP = 20


def spec() -> KernelSpec:
    s = load_kernel_spec(Path(sys.prefix) / "share" / "jupyter" / "kernels" / "python3")
    argv = (sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}")
    return dataclasses.replace(s, argv=argv)


async def kernelkit_figures(rounds: int) -> dict[str, list[float]]:
    provs = {
        mode: LocalProvisioner(kernel_id=f"bench-{mode}", kernel_spec=spec(), encryption=mode)
        for mode in ("curve", "none")
    }
    times: dict[str, list[float]] = {m: [] for m in provs}
    clients: dict[str, AsyncKernelClient] = {}
    try:
        for mode, p in provs.items():
            await launch_provisioner(p)
            assert p.connection_info is not None
            assert p.connection_info.encrypted == (mode == "curve")
            kc = AsyncKernelClient.from_connection_info(p.connection_info)
            await kc.start()
            await kc.wait_for_ready(timeout=60)
            clients[mode] = kc
            for _ in range(WARMUP):
                await kc.execute("pass", timeout=30)
        while len(times["none"]) < rounds:
            for mode, kc in clients.items():
                for _ in range(BATCH):
                    t0 = time.perf_counter()
                    await kc.execute("pass", timeout=30)
                    times[mode].append(time.perf_counter() - t0)
    finally:
        for kc in clients.values():
            await kc.aclose()
        for p in provs.values():
            await p.stop(grace=2)
            await p.cleanup()
    return times


def jupyter_client_figures(rounds: int) -> dict[str, list[float]] | None:
    try:
        from jupyter_client.manager import KernelManager
    except ImportError:
        return None
    managers, clients = {}, {}
    times: dict[str, list[float]] = {"curve": [], "none": []}
    try:
        for mode, policy in (("curve", "auto"), ("none", "disabled")):
            km = KernelManager(kernel_name="python3", transport_encryption=policy)
            km.start_kernel()
            managers[mode] = km
            assert (km.curve_publickey is not None) == (mode == "curve")
            kc = km.client()
            kc.start_channels()
            kc.wait_for_ready(timeout=60)
            clients[mode] = kc
            for _ in range(WARMUP):
                kc.execute_interactive("pass", timeout=30, output_hook=lambda m: None)
        while len(times["none"]) < rounds:
            for mode, kc in clients.items():
                for _ in range(BATCH):
                    t0 = time.perf_counter()
                    kc.execute_interactive("pass", timeout=30, output_hook=lambda m: None)
                    times[mode].append(time.perf_counter() - t0)
    finally:
        for kc in clients.values():
            kc.stop_channels()
        for km in managers.values():
            km.shutdown_kernel(now=True)
    return times


def report(who: str, times: dict[str, list[float]]) -> None:
    curve = statistics.median(times["curve"]) * 1e6
    plain = statistics.median(times["none"]) * 1e6
    print(
        f"{who}: execute round trip, median of {len(times['none'])}: "
        f"curve {curve:.0f} us, plain {plain:.0f} us, ratio {curve / plain:.2f}x"
    )


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    report("kernelkit", asyncio.run(kernelkit_figures(rounds)))
    jc = jupyter_client_figures(rounds)
    if jc is not None:
        report("jupyter_client", jc)


if __name__ == "__main__":
    main()
