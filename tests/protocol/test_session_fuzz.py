"""Malformed frame lists never crash Session.deserialize and never yield a wrong-typed message.

CI runs 5k seeded cases; set KERNELKIT_FUZZ_N (e.g. 100000) to run a bigger corpus.
The corpus and the comparison runner for jupyter_client live in fuzz_frames.py.
"""

from __future__ import annotations

import os

import pytest

from tests.protocol.fuzz_frames import run_kernelkit


def _check(n: int, seed: int) -> None:
    verdicts = run_kernelkit(n, seed)
    bad = {v: c for v, c in verdicts.items() if v not in ("rejected", "accepted")}
    assert bad == {}, f"{bad} out of {n} cases (seed {seed})"
    # The corpus must exercise both outcomes, or it tests nothing.
    assert verdicts["rejected"] > n // 2
    assert verdicts["accepted"] > 0


def test_fuzz_seeded_corpus() -> None:
    _check(5000, seed=0)


@pytest.mark.skipif(not os.environ.get("KERNELKIT_FUZZ_N"), reason="set KERNELKIT_FUZZ_N to run")
@pytest.mark.timeout(3600)
def test_fuzz_big_corpus() -> None:
    _check(
        int(os.environ["KERNELKIT_FUZZ_N"]), seed=int(os.environ.get("KERNELKIT_FUZZ_SEED", "1"))
    )
