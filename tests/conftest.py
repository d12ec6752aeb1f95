"""Suite-wide guards: no process started by the tests may outlive the suite.

Every process the suite starts inherits ``KERNELKIT_TEST_SESSION`` (kernels too, even in
their own session or process group), so at the end we can find each one in /proc,
report it as a failure, and kill it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import uuid
from pathlib import Path

import pytest

_TOKEN = f"KERNELKIT_TEST_SESSION={uuid.uuid4().hex}".encode()
os.environ["KERNELKIT_TEST_SESSION"] = _TOKEN.split(b"=", 1)[1].decode()


def _survivors() -> list[tuple[int, str]]:
    found = []
    me = os.getpid()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == me:
            continue
        try:
            environ = (entry / "environ").read_bytes()
            if _TOKEN not in environ.split(b"\0"):
                continue
            status = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
            if status == "Z":  # a zombie holds no resources; its parent will reap it
                continue
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        found.append((int(entry.name), cmdline.strip()))
    return found


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    survivors = _survivors()
    if not survivors:
        return
    lines = [f"  pid {pid}: {cmd}" for pid, cmd in survivors]
    print("\nProcesses started by the tests outlived the suite (killed now):\n" + "\n".join(lines))
    for pid, _ in survivors:
        with contextlib.suppress(ProcessLookupError):  # already gone
            os.kill(pid, signal.SIGKILL)
    session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_collection_finish(session: pytest.Session) -> None:
    # Exit code 5 ("no tests") must never pass silently; a suite this size collecting
    # under a handful of tests means collection broke.
    if not session.items and not session.config.option.collectonly:
        raise pytest.UsageError("no tests were collected")
