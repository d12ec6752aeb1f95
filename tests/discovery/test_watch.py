"""KernelFinder.watch: change events as kernelspecs and environments come and go."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest

from kernelkit import DiscoveryError
from kernelkit.discovery import EnvProvider, KernelChange, KernelFinder, SpecProvider
from kernelkit.envs import EnvLocations
from tests.envs.layouts import age_tree, python_spec, write_spec, write_venv


async def _next(events: object, timeout: float = 5.0) -> KernelChange:
    return await asyncio.wait_for(events.__anext__(), timeout)  # type: ignore[attr-defined]


async def test_watch_reports_added_changed_and_removed(tmp_path: Path) -> None:
    kernels = tmp_path / "kernels"
    kernels.mkdir()
    workon = tmp_path / "workon"
    workon.mkdir()
    age_tree(tmp_path)
    finder = KernelFinder(
        {
            "spec": SpecProvider([kernels]),
            "env": EnvProvider(EnvLocations(virtualenvwrapper_dirs=(workon,))),
        }
    )
    events = finder.watch(interval=0.05)
    try:
        first = asyncio.ensure_future(_next(events))
        await asyncio.sleep(0.1)  # let the watcher take its first listing
        write_spec(kernels, "k1", python_spec("K one"))
        change = await first
        assert (change.kind, change.kernel.id) == ("added", "spec/k1")

        (kernels / "k1" / "kernel.json").write_text(
            '{"argv": ["python"], "display_name": "K one, renamed", "language": "python"}'
        )
        change = await _next(events)
        assert change.kind == "changed"
        assert change.kernel.display_name == "K one, renamed"

        write_venv(workon / "fresh", ipykernel=True)
        change = await _next(events)
        assert change.kind == "added"
        assert change.kernel.id.startswith("env/fresh-")

        shutil.rmtree(kernels / "k1")
        change = await _next(events)
        assert (change.kind, change.kernel.id) == ("removed", "spec/k1")
    finally:
        await events.aclose()


async def test_watch_rejects_a_non_positive_interval() -> None:
    events = KernelFinder({}).watch(interval=0)
    with pytest.raises(DiscoveryError, match="interval"):
        await events.__anext__()
