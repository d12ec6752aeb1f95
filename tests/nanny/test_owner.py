"""The owner goes away: the nanny stops the kernel and everything it started (issue 14
item 3, "owner killed"), unless the kernel was started detached; a detached kernel is
re-attached from a new process."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from kernelkit.nanny import AsyncAttachedKernel
from tests.nanny.helpers import alive, gone, kill_all

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def runtime_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    d = tmp_path / "runtime"
    d.mkdir(mode=0o700)
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(d))
    return d


def _start_owner(out: Path, *extra: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.nanny.owner_script", str(out), *extra], cwd=ROOT
    )


def _record(out: Path, owner: subprocess.Popen[bytes]) -> dict[str, Any]:
    """Wait for the owner script's record (another process writes it: looked at with a
    bounded back-off)."""
    deadline = time.monotonic() + 90
    pause = 0.05
    while not out.exists():
        assert owner.poll() is None or owner.returncode == 0, "the owner script failed"
        assert time.monotonic() < deadline, "the owner script did not start its kernel"
        time.sleep(pause)
        pause = min(pause * 2, 0.5)
    record: dict[str, Any] = json.loads(out.read_text())
    return record


def _exists(path: str) -> bool:
    return os.path.exists(path)


def _all(record: dict[str, Any]) -> list[int]:
    return [record["nanny"], record["kernel"], *record["escapees"]]


async def test_owner_killed_leaves_no_process_and_no_file(tmp_path: Path) -> None:
    out = tmp_path / "record.json"
    owner = _start_owner(out)
    pids: list[int] = []
    try:
        record = _record(out, owner)
        pids = _all(record)
        assert all(alive(p) for p in pids)
        t0 = time.monotonic()
        owner.send_signal(signal.SIGKILL)
        owner.wait()
        # owner_grace is 1 s; the bound is generous for a busy machine.
        assert await gone(pids, within=15), [p for p in pids if alive(p)]
        elapsed = time.monotonic() - t0
        assert not _exists(record["connection_file"])
        print(f"owner killed -> everything gone in {elapsed:.2f} s")
    finally:
        if owner.poll() is None:
            owner.kill()
            owner.wait()
        kill_all(pids)


async def test_detached_kernel_outlives_its_owner_and_is_reattached(tmp_path: Path) -> None:
    out = tmp_path / "record.json"
    owner = _start_owner(out, "detached")
    pids: list[int] = []
    try:
        record = _record(out, owner)
        pids = _all(record)
        assert owner.wait(timeout=30) == 0
        # Past the owner grace (1 s), the kernel still runs.
        await asyncio.sleep(2.0)
        assert all(alive(p) for p in pids)
        path = record["connection_file"]
        async with AsyncAttachedKernel.from_connection_file(path, owner=True) as k:
            assert k.pid == record["kernel"]
            kc = k.client()
            async with kc:
                await kc.wait_for_ready(timeout=30)
                reply = await kc.execute("1 + 1", timeout=30)
                assert reply.content["status"] == "ok"
            await k.shutdown_kernel()
        assert await gone(pids, within=15), [p for p in pids if alive(p)]
        assert not _exists(path)
    finally:
        if owner.poll() is None:
            owner.kill()
            owner.wait()
        kill_all(pids)


def _marked(mark: bytes) -> list[int]:
    found = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open(f"/proc/{name}/environ", "rb") as f:
                    if mark in f.read().split(b"\0"):
                        found.append(int(name))
            except OSError:
                continue
    return [p for p in found if alive(p)]


def test_owner_killed_while_the_kernel_starts_leaves_nothing(tmp_path: Path) -> None:
    mark = f"KK_OWNER_MARK={os.urandom(6).hex()}"
    env = {**os.environ, mark.split("=")[0]: mark.split("=")[1]}
    owner = subprocess.Popen(
        [sys.executable, "-m", "tests.nanny.owner_script", str(tmp_path / "r.json")],
        cwd=ROOT,
        env=env,
    )
    try:
        # Wait for the nanny to exist (it carries the mark), then kill the owner at once:
        # the kernel is still starting.
        deadline = time.monotonic() + 60
        while not any("kernelkit.nanny" in _cmd(p) for p in _marked(mark.encode())):
            assert time.monotonic() < deadline, "the owner never started a nanny"
            time.sleep(0.005)
        owner.send_signal(signal.SIGKILL)
        owner.wait()
        deadline = time.monotonic() + 20
        while _marked(mark.encode()):
            assert time.monotonic() < deadline, [_cmd(p) for p in _marked(mark.encode())]
            time.sleep(0.05)
        assert os.listdir(os.environ["JUPYTER_RUNTIME_DIR"]) == []
    finally:
        if owner.poll() is None:
            owner.kill()
            owner.wait()
        kill_all(_marked(mark.encode()))


def _cmd(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""
