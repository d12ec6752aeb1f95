"""Run-wide settings shared by every figure."""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path


def _stderr(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


@dataclass
class Config:
    quick: bool
    tmp: Path  # scratch space for this run (connection files, specs, environments)
    jupyter_dir: Path  # prepended to JUPYTER_PATH: holds the bench kernelspecs
    log: Callable[[str], None] = field(default=_stderr)
    reps_scale: float = 1.0  # --reps multiplies every group's repetitions
    iopub_messages: int | None = None  # --iopub-messages: stream length in figure 3
    port_launches: int | None = None  # --port-launches: launches per process in figure 8

    def reps(self, quick: int, full: int) -> int:
        return max(1, round((quick if self.quick else full) * self.reps_scale))

    def pick(self, quick: int, full: int) -> int:
        return quick if self.quick else full
