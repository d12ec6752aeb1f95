"""Figure 7: what a command-line tool pays before doing anything.

Fresh processes only. ``import`` is timed inside the process (the 50 ms target);
``process`` is the wall time of ``python -c "import X"``, whose floor is
``python -c pass``. The manager is timed twice: against ``import zmq, orjson`` (the
issue's floor) and against a floor that also imports asyncio, which every start needs
and which costs about as much as that first floor by itself. The CLI rows time
``kernelkit --help`` and ``kernelkit list`` against ``jupyter-kernelspec --help`` and
``jupyter-kernelspec list`` (the direct entry point, so jupyter's dispatcher is not
counted against it).

The ``run`` rows time ``kernelkit run -c pass`` as a command, on ipykernel through a
kernelspec whose first act writes the time (``date +%s%N``, then ``exec`` the kernel):
when the kernel process started, counted from the command's start (what the command pays
before its kernel starts: the manager-import figure's reason to exist), and the whole
command. jupyter_client runs ``jupyter-run`` on a file holding the same code. The floor
(``bench/run_floor.py``) starts Python, imports pyzmq and orjson, starts the kernel with
ports chosen beforehand, and runs the code with the raw pyzmq client. The extra is
kernelkit with its early start turned off (``KERNELKIT_EARLY_RUN=0``).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench._config import Config
from bench._core import (
    EXTRA,
    FLOOR,
    JUPYTER_CLIENT,
    KERNELKIT,
    Contestant,
    Group,
    Metric,
    Missing,
    Target,
    last_words,
)

BIN = Path(sys.executable).parent

IMPORTS = {
    "import": {
        KERNELKIT: "import kernelkit",
        JUPYTER_CLIENT: "import jupyter_client",
        FLOOR: "",
    },
    "import-manager": {
        KERNELKIT: "from kernelkit.manager import AsyncKernelManager",
        JUPYTER_CLIENT: "from jupyter_client.manager import AsyncKernelManager",
        FLOOR: "import zmq, orjson",
    },
    # The same, against a floor that also imports asyncio (about 0.85x the plain floor
    # by itself): what the manager costs beyond the event loop every start needs.
    "import-manager-asyncio": {
        KERNELKIT: "from kernelkit.manager import AsyncKernelManager",
        JUPYTER_CLIENT: "from jupyter_client.manager import AsyncKernelManager",
        FLOOR: "import zmq, orjson, asyncio",
    },
}

_WHAT = {
    "import": "import kernelkit",
    "import-manager": "import the kernel manager",
    "import-manager-asyncio": "import the kernel manager (floor with asyncio)",
}

_SNIPPET = "import time; t = time.perf_counter(); {stmt}; print(time.perf_counter() - t)"


def _run(argv: list[str]) -> tuple[float, subprocess.CompletedProcess[str]]:
    t0 = time.perf_counter()
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
    return (time.perf_counter() - t0) * 1000, proc


def _fail(proc: subprocess.CompletedProcess[str]) -> str:
    return f"exit {proc.returncode}: {last_words(proc.stderr or proc.stdout)}"


class Import(Contestant):
    def __init__(self, who: str, stmt: str) -> None:
        self.name = self.role = who
        self.stmt = stmt
        self.note = stmt or "python -c pass"

    def argv(self) -> list[str]:
        return [sys.executable, "-c", _SNIPPET.format(stmt=self.stmt or "pass")]

    def setup(self) -> None:
        _, proc = _run(self.argv())
        if proc.returncode != 0:
            if any(e in _fail(proc) for e in ("ImportError", "ModuleNotFoundError")):
                raise Missing(_fail(proc))
            raise RuntimeError(_fail(proc))

    def sample(self) -> dict[str, float]:
        wall, proc = _run(self.argv())
        if proc.returncode != 0:
            raise RuntimeError(_fail(proc))
        if not self.stmt:  # the floor imports nothing: no import time to compare with
            return {"process": wall}
        return {"import": float(proc.stdout.strip().splitlines()[-1]) * 1000, "process": wall}


class Command(Contestant):
    def __init__(self, who: str, argv: list[str]) -> None:
        self.name = self.role = who
        self.cmd = argv
        self.note = " ".join(Path(argv[0]).name if i == 0 else a for i, a in enumerate(argv))

    def setup(self) -> None:
        _, proc = _run(self.cmd)
        if proc.returncode != 0:
            raise Missing(_fail(proc))

    def sample(self) -> dict[str, float]:
        wall, proc = _run(self.cmd)
        if proc.returncode != 0:
            raise RuntimeError(_fail(proc))
        return {"process": wall}


# The kernel's first act: write the time, then become ipykernel ($0: the connection file,
# $1: the interpreter).
_MARKED_KERNEL = 'date +%s%N >> "$KK_BENCH_MARK"; exec "$1" -m ipykernel_launcher -f "$0"'
_RUN_CODE = "pass"
_NO_EARLY = "kernelkit, early start off"


class RunCommand(Contestant):
    """One ``run`` of ``pass`` in a new kernel, as a command (module docstring)."""

    def __init__(self, who: str) -> None:
        self.who = who
        self.name = who
        self.role = EXTRA if who == _NO_EARLY else who
        self.tmp: Path | None = None

    def setup(self) -> None:
        probe = subprocess.run(
            [sys.executable, "-c", "import ipykernel"], capture_output=True, check=False
        )
        if probe.returncode != 0:
            raise Missing("ipykernel is not installed in the benchmark environment")
        if shutil.which("date") is None:
            raise Missing("no date command")
        self.tmp = tmp = Path(tempfile.mkdtemp(prefix="kk-bench-run-"))
        spec_dir = tmp / "jupyter" / "kernels" / "bench-marked"
        spec_dir.mkdir(parents=True)
        spec = {
            "argv": ["/bin/sh", "-c", _MARKED_KERNEL, "{connection_file}", sys.executable],
            "display_name": "ipykernel, start time marked",
            "language": "python",
            # As ipykernel's own spec is run: it writes its chosen ports back.
            "metadata": {"kernelkit": {"ports": "write-back"}},
        }
        (spec_dir / "kernel.json").write_text(json.dumps(spec))
        (tmp / "runtime").mkdir(mode=0o700)
        (tmp / "code.py").write_text(_RUN_CODE + "\n")
        self.mark = tmp / "mark"
        self.env = {
            **os.environ,
            "JUPYTER_PATH": str(tmp / "jupyter"),
            "JUPYTER_RUNTIME_DIR": str(tmp / "runtime"),
            "KK_BENCH_MARK": str(self.mark),
            "KERNELKIT_EARLY_RUN": "0" if self.who == _NO_EARLY else "1",
        }
        if self.who == JUPYTER_CLIENT:
            self.argv = [str(BIN / "jupyter-run"), "--kernel=bench-marked", str(tmp / "code.py")]
            self.note = "jupyter-run --kernel=K code.py"
        elif self.who == FLOOR:
            floor = Path(__file__).with_name("run_floor.py")
            self.argv = [sys.executable, str(floor), str(spec_dir), _RUN_CODE]
            self.note = "python: import zmq, orjson; start the kernel; raw pyzmq client"
        else:
            self.argv = [str(BIN / "kernelkit"), "run", "-k", "bench-marked", "-c", _RUN_CODE]
            self.note = "kernelkit run -k K -c pass"
        self.sample()  # the first run warms the disk cache and checks that it works

    def sample(self) -> dict[str, float]:
        self.mark.unlink(missing_ok=True)
        t0 = time.time_ns()
        proc = subprocess.run(
            self.argv, env=self.env, capture_output=True, text=True, timeout=120, check=False
        )
        t1 = time.time_ns()
        if proc.returncode != 0:
            raise RuntimeError(_fail(proc))
        started = int(self.mark.read_text().split()[0])
        return {"kernel_started": (started - t0) / 1e6, "whole": (t1 - t0) / 1e6}

    def teardown(self) -> None:
        if self.tmp is not None:
            shutil.rmtree(self.tmp, ignore_errors=True)


def groups(cfg: Config) -> list[Group]:
    reps = cfg.reps(2, 10)
    out = []
    for name, stmts in IMPORTS.items():
        what = _WHAT[name]
        out.append(
            Group(
                figure=7,
                name=name,
                metrics=[
                    Metric(
                        "import",
                        f"{what}, in-process",
                        "ms",
                        target=Target("abs", "<=", 50) if name == "import" else None,
                    ),
                    Metric("process", f"{what}, python -c wall time", "ms"),
                ],
                contestants=[lambda w=w, s=s: Import(w, s) for w, s in stmts.items()],
                reps=reps,
                budget_s=cfg.pick(15, 60),
            )
        )
    py_pass = [sys.executable, "-c", "pass"]
    for name, kk, jc in (
        ("cli-help", ["--help"], ["--help"]),
        ("cli-list", ["list"], ["list"]),
    ):
        out.append(
            Group(
                figure=7,
                name=name,
                metrics=[Metric("process", f"kernelkit {kk[0]} (command wall time)", "ms")],
                contestants=[
                    lambda kk=kk: Command(KERNELKIT, [str(BIN / "kernelkit"), *kk]),
                    lambda jc=jc: Command(JUPYTER_CLIENT, [str(BIN / "jupyter-kernelspec"), *jc]),
                    lambda: Command(FLOOR, py_pass),
                ],
                reps=reps,
                budget_s=cfg.pick(15, 60),
            )
        )
    out.append(
        Group(
            figure=7,
            name="run",
            metrics=[
                Metric(
                    "kernel_started",
                    "run -c pass: the kernel process starts, after the command's start",
                    "ms",
                    target=Target(FLOOR, "<=", 1.5),
                ),
                Metric("whole", "run -c pass: whole command", "ms"),
            ],
            contestants=[
                lambda w=w: RunCommand(w) for w in (KERNELKIT, JUPYTER_CLIENT, FLOOR, _NO_EARLY)
            ],
            reps=reps,
            budget_s=cfg.pick(20, 90),
            note="ipykernel; the kernelspec's first act writes the time (date +%s%N)",
        )
    )
    return out
