"""Figure 8: port collisions with 4 processes launching kernels at the same time.

Four worker processes each start and stop the fake kernel L times in a row. The fake
kernel reports a port it could not bind (someone else got it between the launcher picking
it and the kernel binding it) to a shared log and exits; that count is the figure, with
the starts that failed as the launcher's user saw them. kernelkit and jupyter_client use
their managers; the floor lets the kernel pick its own ports and write them back (what a
race-free launcher can do), so its count is 0 by construction.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

from bench import _kk, _procs
from bench._config import Config
from bench._core import (
    FLOOR,
    JUPYTER_CLIENT,
    KERNELKIT,
    Contestant,
    Group,
    Metric,
    Target,
    last_words,
)

PROCESSES = 4


class Launchers(Contestant):
    def __init__(self, cfg: Config, who: str, launches: int) -> None:
        self.cfg, self.who, self.launches = cfg, who, launches
        self.name = self.role = who
        self.round = 0

    def setup(self) -> None:
        if self.who == KERNELKIT:
            _kk.api("kernelkit.manager", "AsyncKernelManager")

    def sample(self) -> dict[str, float]:
        self.round += 1
        log = self.cfg.tmp / f"collisions-{self.who}-{self.round}.log"
        log.touch()
        env = dict(os.environ, BENCH_COLLISION_LOG=str(log))
        t0 = time.monotonic()
        procs = [
            subprocess.Popen(
                [sys.executable, "-m", "bench._worker", "ports", self.who, str(self.launches)],
                cwd=_procs.BENCH_DIR.parent,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(PROCESSES)
        ]
        results, problems = [], []
        deadline = time.monotonic() + 60 + self.launches * 3.0
        for p in procs:
            try:
                out, err = p.communicate(timeout=max(1.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.kill()
                out, err = p.communicate()
                problems.append("a worker ran out of time and was killed")
                continue
            if p.returncode != 0:
                problems.append(f"worker exit {p.returncode}: {last_words(err)}")
                continue
            results.append(json.loads(out.strip().splitlines()[-1]))
        if problems and not results:
            raise RuntimeError("; ".join(problems))
        collisions = len(log.read_text().splitlines())
        failed = sum(r["failed"] for r in results)
        launched = sum(r["launched"] for r in results)
        errors = [e for r in results for e in r["errors"]][:3]
        if errors or problems:
            self.note = "; ".join([*problems, *errors])[:400]
        return {
            "collisions": collisions,
            "failed": failed,
            "_launched": launched,
            "_seconds": time.monotonic() - t0,
        }


def groups(cfg: Config) -> list[Group]:
    launches = cfg.port_launches or cfg.pick(3, 100)
    return [
        Group(
            figure=8,
            name="ports",
            metrics=[
                Metric(
                    "collisions",
                    f"port collisions, {PROCESSES} processes x {launches} launches",
                    "count",
                    target=Target("abs", "==", 0),
                ),
                Metric("failed", "failed starts (as the launcher saw them)", "count"),
            ],
            contestants=[
                lambda w=w: Launchers(cfg, w, launches) for w in (KERNELKIT, JUPYTER_CLIENT, FLOOR)
            ],
            reps=1,
            warmup=0,
            budget_s=cfg.pick(60, 400),
            note=f"fake kernel; {PROCESSES} concurrent processes x {launches} start/stop each",
        )
    ]
