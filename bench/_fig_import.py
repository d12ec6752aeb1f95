"""Figure 7: what a command-line tool pays before doing anything.

Fresh processes only. ``import`` is timed inside the process (the 50 ms target);
``process`` is the wall time of ``python -c "import X"``, whose floor is
``python -c pass``. The manager is timed twice: against ``import zmq, orjson`` (the
issue's floor) and against a floor that also imports asyncio, which every start needs
and which costs about as much as that first floor by itself. The CLI rows time
``kernelkit --help`` and ``kernelkit list`` against ``jupyter-kernelspec --help`` and
``jupyter-kernelspec list`` (the direct entry point, so jupyter's dispatcher is not
counted against it).
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from bench._config import Config
from bench._core import (
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
    return out
