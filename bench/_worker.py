"""Work done in a fresh process: ``python -m bench._worker <task> <who> [args]``.

Prints one JSON object on stdout. Only the standard library is imported at the top, so
a fresh-process time measures the contestant's own imports and work. Each contestant's
imports happen inside its branch on purpose: that is what is being timed.
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any


def _listing_call(task: str, who: str) -> Any:
    """The function that lists kernelspecs (task specs) or environment kernels (envs)."""
    if who == "floor":
        import orjson

        dirs = os.environ.get("BENCH_SPEC_DIRS", "").split(os.pathsep)
        roots = os.environ.get("BENCH_ENV_ROOTS", "").split(os.pathsep)

        def read_specs(d: str, found: dict[str, Any]) -> None:
            try:
                entries = list(os.scandir(d))
            except OSError:
                return
            for e in entries:
                if e.name in found or not e.is_dir():
                    continue
                try:
                    with open(os.path.join(e.path, "kernel.json"), "rb") as f:
                        found[e.name] = orjson.loads(f.read())
                except (OSError, ValueError):
                    continue

        def floor_specs() -> dict[str, Any]:
            found: dict[str, Any] = {}
            for d in dirs:
                read_specs(d, found)
            return found

        def floor_envs() -> dict[str, Any]:
            out: dict[str, Any] = {}
            for root in filter(None, roots):
                for e in os.scandir(root):
                    p = e.path
                    if not (
                        os.path.exists(os.path.join(p, "pyvenv.cfg"))
                        or os.path.isdir(os.path.join(p, "conda-meta"))
                    ):
                        continue
                    specs: dict[str, Any] = {}
                    read_specs(os.path.join(p, "share", "jupyter", "kernels"), specs)
                    for name, spec in specs.items():
                        out[f"{p}/{name}"] = spec
            return out

        return floor_specs if task == "specs" else floor_envs

    if who == "jupyter_client":
        if task != "specs":
            raise SystemExit("jupyter_client has no environment discovery")
        from jupyter_client.kernelspec import KernelSpecManager

        return KernelSpecManager().get_all_specs

    if task == "specs":
        from bench import _kk

        return _kk.list_specs()
    from bench import _kk

    return _kk.list_env_kernels()


def listing(task: str, who: str, warm: int) -> dict[str, Any]:
    call = _listing_call(task, who)
    first = call()
    t_done = time.monotonic()
    times = []
    for _ in range(warm):
        t0 = time.perf_counter()
        call()
        times.append(time.perf_counter() - t0)
    return {"t_done": t_done, "count": len(first), "warm": times}


def main() -> int:
    task, who, *rest = sys.argv[1:]
    if task in ("specs", "envs"):
        result = listing(task, who, int(rest[0]))
    elif task == "memory":
        from bench._workers_async import memory

        result = memory(who, int(rest[0]))
    elif task == "ports":
        from bench._workers_async import launches

        result = launches(who, int(rest[0]))
    else:
        raise SystemExit(f"unknown task {task!r}")
    sys.stdout.write(json.dumps(result) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
