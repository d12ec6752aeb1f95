"""Event sources: file changes (inotify), process exit (pidfd), /proc lookups."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from kernelkit.provisioning import EXIT_STATUS_UNKNOWN, _filewatch
from kernelkit.provisioning._exitwatch import ExitWatch, wait_for_exits
from kernelkit.provisioning._filewatch import watch_file
from kernelkit.provisioning._procfs import PidHandle, descendants, open_pid, proc_stat
from tests.provisioning.helpers import fd_count

# ---------------------------------------------------------------- files


async def test_file_watch_sees_rewrite_and_rename(tmp_path: Path) -> None:
    target = tmp_path / "kernel-x.json"
    seen = asyncio.Event()
    watch = watch_file(target, seen.set)
    assert watch.event_driven
    try:
        (tmp_path / "other.json").write_text("{}")  # another file: no event for us
        await asyncio.sleep(0.05)
        assert not seen.is_set()
        target.write_text("{}")
        await asyncio.wait_for(seen.wait(), 2)
        seen.clear()
        (tmp_path / "tmp").write_text("{}")
        os.replace(tmp_path / "tmp", target)  # atomic writers rename into place
        await asyncio.wait_for(seen.wait(), 2)
    finally:
        watch.cancel()


async def test_one_inotify_instance_for_many_watches_and_none_after(tmp_path: Path) -> None:
    before = fd_count()
    watches = [watch_file(tmp_path / f"k{i}.json", lambda: None) for i in range(200)]
    assert fd_count() == before + 1
    for w in watches:
        w.cancel()
    assert fd_count() == before


async def test_fallback_without_inotify(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Systems without inotify get a bounded back-off on the file's stat; force that path.
    monkeypatch.setattr(_filewatch, "_get_libc", lambda: None)
    target = tmp_path / "f.json"
    seen = asyncio.Event()
    watch = watch_file(target, seen.set)
    assert not watch.event_driven
    try:
        target.write_text("{}")
        await asyncio.wait_for(seen.wait(), 2)
    finally:
        watch.cancel()


# ---------------------------------------------------------------- processes


def _sleeper(*extra: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-c", "import signal, sys; signal.pause()", *extra],
        start_new_session=True,
    )


def _exits_with_7() -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", "raise SystemExit(7)"])


def _orphan() -> int:
    """A process that is not our child: started by a child that then exits."""
    out = subprocess.run(
        [sys.executable, "-c",
         "import subprocess, sys; p = subprocess.Popen([sys.executable, '-c', "
         "'import signal; signal.pause()'], start_new_session=True, "
         "stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL); print(p.pid)"],
        capture_output=True, check=True, text=True,
    )  # fmt: skip
    return int(out.stdout)


async def test_exit_watch_reports_status_without_reaping() -> None:
    proc = _sleeper()
    handle = open_pid(proc.pid)
    assert handle is not None
    watch = ExitWatch(handle, popen=proc, loop=asyncio.get_running_loop())
    assert watch.poll() is None
    os.kill(proc.pid, signal.SIGTERM)
    assert await asyncio.wait_for(watch.wait(), 2) == -signal.SIGTERM
    st = proc_stat(proc.pid)
    assert st is not None
    assert st.state == "Z"  # still a zombie: its pid and group id stay reserved
    watch.reap()
    assert proc.returncode == -signal.SIGTERM
    assert proc_stat(proc.pid) is None
    watch.close()


async def test_exit_watch_copes_with_popen_reaping_first() -> None:
    proc = _exits_with_7()
    handle = open_pid(proc.pid)
    assert handle is not None
    proc.wait()  # someone reaped it through Popen
    watch = ExitWatch(handle, popen=proc, loop=asyncio.get_running_loop())
    assert await asyncio.wait_for(watch.wait(), 2) == 7
    watch.close()


async def test_exit_of_a_non_child_is_seen() -> None:
    # A grandchild is not our child: only its pidfd can tell us it exited.
    pid = _orphan()
    try:
        st = proc_stat(pid)
        assert st is not None
        handle = open_pid(pid, starttime=st.starttime)
        assert handle is not None
        watch = ExitWatch(handle, popen=None, loop=asyncio.get_running_loop())
        assert watch.poll() is None
        assert handle.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(watch.wait(), 2) == EXIT_STATUS_UNKNOWN
        watch.close()
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


async def test_exit_watch_without_pidfd_uses_a_waiter_thread() -> None:
    proc = _sleeper()
    watch = ExitWatch(PidHandle(proc.pid, None, None), popen=proc, loop=asyncio.get_running_loop())
    assert watch.poll() is None
    proc.send_signal(signal.SIGKILL)
    assert await asyncio.wait_for(watch.wait(), 2) == -signal.SIGKILL
    watch.reap()
    watch.close()


async def test_exit_watch_without_pidfd_for_a_non_child() -> None:
    pid = _orphan()
    st = proc_stat(pid)
    assert st is not None
    watch = ExitWatch(
        PidHandle(pid, st.starttime, None), popen=None, loop=asyncio.get_running_loop()
    )
    try:
        assert watch.poll() is None
        os.kill(pid, signal.SIGTERM)
        assert await asyncio.wait_for(watch.wait(), 2) == EXIT_STATUS_UNKNOWN
    finally:
        watch.close()
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


async def test_wait_for_exits_returns_what_still_runs() -> None:
    quick, stubborn = _sleeper(), _sleeper()
    handles = [open_pid(quick.pid), open_pid(stubborn.pid)]
    try:
        assert all(h is not None and h.running() for h in handles)
        a, b = (h for h in handles if h is not None)
        quick.kill()
        loop = asyncio.get_running_loop()
        start = loop.time()
        assert await wait_for_exits([a, b], timeout=0.3) == [b]
        assert 0.3 <= loop.time() - start < 0.5
        assert not a.running()
        assert b.send_signal(signal.SIGKILL)  # the handles stay open
        assert await wait_for_exits([a, b], timeout=5) == []  # returns on the exit
        assert loop.time() - start < 1
    finally:
        for h in handles:
            if h is not None:
                h.close()
        for proc in (quick, stubborn):
            proc.kill()
            proc.wait()


def test_open_pid_refuses_a_reused_pid() -> None:
    st = proc_stat(os.getpid())
    assert st is not None
    assert open_pid(os.getpid(), starttime=st.starttime + 1) is None
    handle = open_pid(os.getpid(), starttime=st.starttime)
    assert handle is not None
    handle.close()


def test_descendants_walks_the_tree() -> None:
    code = (
        "import subprocess, sys, signal; "
        "subprocess.Popen([sys.executable, '-c', 'import signal; signal.pause()']); "
        "print('ok', flush=True); signal.pause()"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE)
    kids: list[int] = []
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline() == b"ok\n"
        below = descendants(os.getpid())
        pids = [st.pid for st in below]
        assert proc.pid in pids
        grandchildren = [st for st in below if st.ppid == proc.pid]
        kids = [st.pid for st in grandchildren]
        assert len(grandchildren) == 1
        assert pids.index(proc.pid) < pids.index(grandchildren[0].pid)  # parents first
    finally:
        for pid in kids:
            os.kill(pid, signal.SIGKILL)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        assert proc.stdout is not None
        proc.stdout.close()
