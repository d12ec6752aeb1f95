"""Processes, ports, connection files and kernelspecs the benchmarks need.

Every process the suite starts (kernels included, whoever launches them) inherits
``BENCH_RUN_TOKEN``; :func:`reap_leftovers` finds any that are still alive in /proc and
kills their process groups, so a run never leaves a kernel behind.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
FAKE_KERNEL = BENCH_DIR / "fake_kernel.py"
IPYKERNEL_SPEC = "bench-ipykernel"
FAKE_SPEC = "bench-fake"

TOKEN_VAR = "BENCH_RUN_TOKEN"


def run_token() -> str:
    """This run's token (set once, inherited by every child)."""
    token = os.environ.get(TOKEN_VAR)
    if not token:
        token = secrets.token_hex(8)
        os.environ[TOKEN_VAR] = token
    return token


def _processes_with_token(token: str) -> list[int]:
    marker = f"{TOKEN_VAR}={token}".encode()
    me = os.getpid()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == me:
            continue
        try:
            if marker not in (entry / "environ").read_bytes().split(b"\0"):
                continue
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:  # gone meanwhile, or not ours to read
            continue
        if state != "Z":
            found.append(int(entry.name))
    return found


def reap_leftovers() -> list[int]:
    """Kill every live process carrying this run's token; return their pids."""
    token = os.environ.get(TOKEN_VAR)
    if not token:
        return []
    pids = _processes_with_token(token)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(os.getpgid(pid), signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    return pids


def count_leftovers() -> int:
    token = os.environ.get(TOKEN_VAR)
    return len(_processes_with_token(token)) if token else 0


# -- ports and connection files ---------------------------------------------------------


def free_ports(n: int = 5) -> list[int]:
    """n ports the OS calls free right now (the classic racy way, used by the floor)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def write_connection_file(
    path: Path, ports: Sequence[int], key: str | None = None
) -> dict[str, Any]:
    shell, iopub, stdin, control, hb = ports
    info = {
        "shell_port": shell,
        "iopub_port": iopub,
        "stdin_port": stdin,
        "control_port": control,
        "hb_port": hb,
        "ip": "127.0.0.1",
        "key": key if key is not None else secrets.token_hex(16),
        "transport": "tcp",
        "signature_scheme": "hmac-sha256",
        "kernel_name": "",
    }
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(info))
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)
    return info


# -- kernels ----------------------------------------------------------------------------


def ipykernel_argv(connection_file: str | Path) -> list[str]:
    return [sys.executable, "-m", "ipykernel_launcher", "-f", str(connection_file)]


def fake_argv(connection_file: str | Path) -> list[str]:
    return [sys.executable, str(FAKE_KERNEL), "-f", str(connection_file)]


def spawn(argv: Sequence[str], *, log: Path | None = None) -> subprocess.Popen[bytes]:
    """Start a kernel in its own session (pid == pgid), output to ``log`` or nowhere."""
    out = open(log, "ab") if log else subprocess.DEVNULL  # noqa: SIM115 - closed below
    try:
        return subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=out,
            start_new_session=True,
        )
    finally:
        if log:
            out.close()  # type: ignore[union-attr]


def stop(proc: subprocess.Popen[bytes], *, grace: float = 2.0) -> None:
    """End a process we started, and its whole group: wait, then SIGKILL."""
    if proc.poll() is None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(grace)
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(5)
    else:  # the leader exited; anything left in its group goes too
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)


def wait_for_file_change(
    path: Path, before: str, *, timeout: float, proc: subprocess.Popen[bytes]
) -> str:
    """Wait until ``path`` no longer holds ``before`` (a kernel's port write-back).

    A bounded back-off poll: the standard library has no file-change notification, and the
    floor must not depend on anything beyond pyzmq.
    """
    deadline = time.monotonic() + timeout
    delay = 0.0005
    while True:
        with contextlib.suppress(OSError, ValueError):
            text = path.read_text()
            if text != before and json.loads(text):  # whole (written by rename, but still)
                return text
        if proc.poll() is not None:
            raise RuntimeError(f"kernel exited with {proc.returncode} before writing its ports")
        if time.monotonic() > deadline:
            raise TimeoutError(f"no port write-back in {path} after {timeout} s")
        time.sleep(delay)
        delay = min(delay * 2, 0.002)


def spawn_ipykernel_port0(
    path: Path, *, timeout: float
) -> tuple[subprocess.Popen[bytes], dict[str, Any]]:
    """Start ipykernel on a connection file of port 0s; return it and the ports it chose
    (written back once bound). What the floor does: no port race, no connect before bind."""
    before = json.dumps(write_connection_file(path, [0, 0, 0, 0, 0]))
    proc = spawn(ipykernel_argv(path))
    try:
        info = json.loads(wait_for_file_change(path, before, timeout=timeout, proc=proc))
    except BaseException:
        stop(proc, grace=0)
        raise
    return proc, info


def install_bench_specs(jupyter_dir: Path) -> None:
    """Kernelspecs every contestant launches: ipykernel and the fake kernel, absolute argv.

    The ipykernel spec copies the one ipykernel installs (protocol version, metadata), with
    argv[0] this interpreter, so every contestant starts exactly the same command.
    """
    kernels = jupyter_dir / "kernels"
    ipk = kernels / IPYKERNEL_SPEC
    ipk.mkdir(parents=True, exist_ok=True)
    (ipk / "kernel.json").write_text(
        json.dumps(
            {
                "argv": ipykernel_argv("{connection_file}"),
                "display_name": "Python 3 (ipykernel, bench)",
                "language": "python",
                "metadata": {"debugger": True, "supported_encryption": ["curve"]},
                "kernel_protocol_version": "5.5",
            },
            indent=1,
        )
    )
    fake = kernels / FAKE_SPEC
    fake.mkdir(parents=True, exist_ok=True)
    (fake / "kernel.json").write_text(
        json.dumps(
            {
                "argv": fake_argv("{connection_file}"),
                "display_name": "bench fake kernel",
                "language": "fake",
                "interrupt_mode": "message",
                "metadata": {},
            },
            indent=1,
        )
    )


def rss_kib(pid: int | None = None) -> int:
    """Resident set size of a process in KiB (Linux /proc)."""
    status = Path(f"/proc/{pid or 'self'}/status").read_text()
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS in /proc status")
