"""Run the kernelkit benchmark suite: ``python -m bench [--quick] [--only NAMES]``.

Set up and run from the repository root with ``./dev bench [--quick]``. Results go to
``bench/results/<timestamp>/`` (table.md, results.json, ratios.png); the table is also
printed. The suite reports targets; it never fails because one is missed.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import importlib
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

from bench import _procs, _report
from bench._config import Config
from bench._core import Group, GroupResult, run_group

FIGURES: dict[str, tuple[int, str, str]] = {
    # name: (figure number, module, what)
    "starts": (1, "bench._fig_starts", "start-to-ready, restart, graceful shutdown (ipykernel)"),
    "requests": (2, "bench._fig_clients:requests_groups", "per-request client cost (fake kernel)"),
    "iopub": (3, "bench._fig_clients:iopub_groups", "IOPub throughput (fake kernel)"),
    "session": (4, "bench._fig_session", "Session serialize / deserialize+verify"),
    "specs": (5, "bench._fig_specs", "kernelspec and environment listing"),
    "many": (6, "bench._fig_many", "concurrent starts, memory per kernel, warm pool"),
    "import": (7, "bench._fig_import", "import and --help time"),
    "ports": (8, "bench._fig_ports", "port collisions, 4 concurrent processes"),
    "remote": (9, "bench._fig_remote", "remote kernel on Jupyter Server: start, execute RTT"),
    "nanny": (10, "bench._fig_nanny", "start-to-ready and death notice through the nanny"),
    "notebook": (11, "bench._fig_notebook", "a 50-cell notebook: kernelkit run, nbclient on both"),
    "sandbox": (12, "bench._fig_sandbox", "sandboxed start, ipc vs tcp execute, sandboxed pool"),
    "ssh": (13, "bench._fig_ssh", "start-to-ready on a second host over ssh vs by hand"),
}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m bench",
        description="kernelkit vs jupyter_client vs the raw floor, interleaved in one run.",
        epilog="Figures: " + "; ".join(f"{n} ({v[0]}): {v[2]}" for n, v in FIGURES.items()),
    )
    p.add_argument("--quick", action="store_true", help="a short run (under 2 minutes)")
    p.add_argument(
        "--only",
        default="",
        help="comma-separated figure names or numbers, e.g. session,specs or 4,5",
    )
    p.add_argument("--skip", default="", help="comma-separated figures to leave out")
    p.add_argument("--reps", type=float, default=1.0, help="multiply every repetition count")
    p.add_argument(
        "--iopub-messages",
        type=int,
        default=None,
        help="stream messages per IOPub sample (default 3000 quick, 50000 full)",
    )
    p.add_argument(
        "--port-launches",
        type=int,
        default=None,
        help="kernel launches per process in figure 8 (default 3 quick, 100 full)",
    )
    p.add_argument(
        "--out",
        type=Path,
        default=None,
        help="results directory (default: bench/results/<timestamp>)",
    )
    p.add_argument("--no-chart", action="store_true", help="do not draw the PNG")
    p.add_argument("--list", action="store_true", help="list the figures and exit")
    return p.parse_args(argv)


def select(only: str, skip: str) -> list[str]:
    def names(spec: str) -> set[str]:
        out = set()
        for part in filter(None, (s.strip() for s in spec.split(","))):
            match = [n for n, v in FIGURES.items() if part in (n, str(v[0]))]
            if not match:
                raise SystemExit(f"unknown figure {part!r}; choose from {', '.join(FIGURES)}")
            out.update(match)
        return out

    chosen = names(only) or set(FIGURES)
    chosen -= names(skip)
    return [n for n in FIGURES if n in chosen]


def _version(dist: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return "not installed"


def environment() -> dict[str, Any]:
    import zmq

    env: dict[str, Any] = {
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "kernelkit": _version("kernelkit"),
        "jupyter_client": _version("jupyter_client"),
        "ipykernel": _version("ipykernel"),
        "pyzmq": zmq.__version__,
        "libzmq": zmq.zmq_version(),
        "orjson": _version("orjson"),
    }
    with contextlib.suppress(Exception):  # a report without the packer is still a report
        from jupyter_client.session import Session

        env["jupyter_client packer"] = Session().packer
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        env["git"] = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
            cwd=Path(__file__).parent,
        ).stdout.strip()
    return env


def prepare(cfg_tmp: Path) -> Path:
    """Process-wide settings every contestant shares: scratch runtime dir, bench specs."""
    _procs.run_token()
    # Imports on a user's machine use bytecode caches; a PYTHONDONTWRITEBYTECODE inherited
    # from a sandbox would make every fresh process recompile everything it imports.
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    sys.dont_write_bytecode = False
    runtime = cfg_tmp / "runtime"
    runtime.mkdir(mode=0o700)
    os.environ["JUPYTER_RUNTIME_DIR"] = str(runtime)
    jupyter_dir = cfg_tmp / "jupyter"
    _procs.install_bench_specs(jupyter_dir)
    old = os.environ.get("JUPYTER_PATH")
    os.environ["JUPYTER_PATH"] = str(jupyter_dir) + (os.pathsep + old if old else "")
    os.environ.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")  # ipykernel's debugger noise
    return jupyter_dir


def _terminate(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.list:
        for n, (num, _, what) in FIGURES.items():
            print(f"{num}  {n:9} {what}")
        return 0
    warnings.simplefilter("ignore")  # peers' deprecation chatter is not a result
    # Ctrl-C works even when started in the background (where SIGINT starts ignored), and
    # SIGTERM unwinds too: either way every process the run started is stopped.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _terminate)
    chosen = select(args.only, args.skip)
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    out = args.out or Path(__file__).parent / "results" / stamp
    out.mkdir(parents=True, exist_ok=True)

    tmp = Path(tempfile.mkdtemp(prefix="kkbench-"))
    results: list[GroupResult] = []
    t_start = time.monotonic()
    meta: dict[str, Any] = {
        "started": datetime.datetime.now().isoformat(timespec="seconds"),
        "args": sys.argv[1:] if argv is None else argv,
        "quick": args.quick,
        "figures": chosen,
        "load_before": os.getloadavg(),
    }
    try:
        cfg = Config(
            quick=args.quick,
            tmp=tmp,
            jupyter_dir=prepare(tmp),
            reps_scale=args.reps,
            iopub_messages=args.iopub_messages,
            port_launches=args.port_launches,
        )
        meta["environment"] = environment()
        cfg.log(f"kernelkit bench ({'quick' if args.quick else 'full'}): {', '.join(chosen)}")
        for name in chosen:
            num, module, what = FIGURES[name]
            cfg.log(f"[{num}] {what}")
            try:
                modname, _, fn = module.partition(":")
                groups: list[Group] = getattr(importlib.import_module(modname), fn or "groups")(cfg)
            except Exception as exc:  # a broken figure must not hide the others
                cfg.log(f"    could not build figure {name}: {type(exc).__name__}: {exc}")
                continue
            for g in groups:
                t0 = time.monotonic()
                res = run_group(g, log=cfg.log)
                results.append(res)
                leftovers = _procs.reap_leftovers()
                if leftovers:
                    cfg.log(f"    {len(leftovers)} process(es) left behind, killed: {leftovers}")
                    res.note = (res.note + "; " if res.note else "") + (
                        f"{len(leftovers)} process(es) outlived the group and were killed"
                    )
                cfg.log(f"    {g.name}: {time.monotonic() - t0:.1f} s")
    finally:
        _procs.reap_leftovers()
        shutil.rmtree(tmp, ignore_errors=True)

    meta["seconds"] = round(time.monotonic() - t_start, 1)
    meta["load_after"] = os.getloadavg()
    table = _report.markdown(results, meta)
    (out / "table.md").write_text(table + "\n")
    _report.write_json(out / "results.json", results, meta)
    if not args.no_chart and results:
        title = (
            f"kernelkit bench {stamp} ({'quick' if args.quick else 'full'}, {meta['seconds']} s)"
        )
        _report.chart(out / "ratios.png", results, title)
    print(table)
    misses = _report.summary_lines(results)
    if misses:
        print("\nkernelkit misses or lacks:\n  " + "\n  ".join(misses), file=sys.stderr)
    print(f"\n{meta['seconds']} s; results in {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
