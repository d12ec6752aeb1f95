"""Fresh-process listing benchmark (not a test): KernelFinder().find() and
scan_kernel_specs() against jupyter_client's KernelSpecManager().get_all_specs(), for 10,
100 and 1000 generated kernelspecs on JUPYTER_PATH. Each sample is a new interpreter,
timed from spawn to "first listing done" (wall), plus the CPU time the whole process
used (steadier than wall time on a busy machine); contestants are interleaved.

    .venv/bin/python -m tests.discovery.fresh_listing_bench [runs] [sizes...]
"""

from __future__ import annotations

import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PNG = bytes.fromhex("89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c489")

CODE = {
    "finder": "from kernelkit.discovery import KernelFinder\nn = len(KernelFinder().find())",
    "scan": "from kernelkit.specs import scan_kernel_specs\nn = len(scan_kernel_specs())",
    "jupyter_client": (
        "from jupyter_client.kernelspec import KernelSpecManager\n"
        "n = len(KernelSpecManager().get_all_specs())"
    ),
}
EPILOGUE = "\nimport time\nprint(time.monotonic(), n)\n"


def make_specs(root: Path, n: int) -> None:
    for i in range(n):
        d = root / "kernels" / f"spec-{i:04d}"
        d.mkdir(parents=True)
        spec = {
            "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
            "display_name": f"Python 3 (spec {i})",
            "language": "python",
            "metadata": {"debugger": True},
            "kernel_protocol_version": "5.5",
        }
        (d / "kernel.json").write_text(json.dumps(spec, indent=1))
        (d / "logo-64x64.png").write_bytes(PNG)


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def sample(who: str, env: dict[str, str], cwd: Path) -> tuple[float, float, int]:
    """(wall ms to the first listing, CPU ms of the whole process, kernels listed)"""
    cpu = _cpu()
    t0 = time.monotonic()
    out = subprocess.run(
        [sys.executable, "-c", CODE[who] + EPILOGUE],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout.split()
    return (float(out[0]) - t0) * 1000, (_cpu() - cpu) * 1000, int(out[1])


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 7
    sizes = [int(a) for a in sys.argv[2:]] or [10, 100, 1000]
    with tempfile.TemporaryDirectory() as tmp:
        for n in sizes:
            root = Path(tmp) / f"specs-{n}"
            make_specs(root, n)
            empty = Path(tmp) / "empty"
            empty.mkdir(exist_ok=True)
            env = {**os.environ, "JUPYTER_PATH": str(root), "JUPYTER_DATA_DIR": str(empty)}
            times: dict[str, list[float]] = {who: [] for who in CODE}
            cpus: dict[str, list[float]] = {who: [] for who in CODE}
            counts: dict[str, int] = {}
            sample("finder", env, empty)  # entry-point cache, as after any earlier run
            for _ in range(runs):
                for who in CODE:
                    ms, cpu, counts[who] = sample(who, env, empty)
                    times[who].append(ms)
                    cpus[who].append(cpu)
            jc = statistics.median(times["jupyter_client"])
            jc_cpu = statistics.median(cpus["jupyter_client"])
            for who, values in times.items():
                med = statistics.median(values)
                cpu = statistics.median(cpus[who])
                print(
                    f"{n:5d} specs  {who:15s} wall median {med:6.1f} ms (min {min(values):6.1f})"
                    f" ratio {med / jc:4.2f} | CPU median {cpu:6.1f} ms ratio {cpu / jc_cpu:4.2f}"
                    f"  ({counts[who]} listed)"
                )


if __name__ == "__main__":
    main()
