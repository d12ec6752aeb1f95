"""``kernelkit ps``, ``kernelkit stop ID``, ``kernelkit interrupt ID``: the running
kernels of this user (connection files in the runtime directory), asked whether they
live, and acted on."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import orjson
import zmq
import zmq.asyncio
from rich.console import Console
from rich.text import Text

from kernelkit._connection import ConnectionInfo, read_connection_file
from kernelkit._errors import ConnectionFileError, KernelError, KernelTimeout
from kernelkit.cli._running import (
    RunningKernel,
    UnknownKernel,
    forget_kernel,
    pid_alive,
    resolve_kernel,
    runtime_dir,
    runtime_kernels,
    wait_pid_exit,
)
from kernelkit.cli._starting import quiet_library_logs, report_error
from kernelkit.cli._status import EXIT_FAILED, EXIT_NOT_FOUND, EXIT_OK
from kernelkit.client import AsyncKernelClient

__all__ = [
    "Probe",
    "interrupt_command",
    "interrupt_running",
    "ping",
    "probe",
    "ps_command",
    "stop_command",
]

#: Seconds a kernel has to answer ``ps``'s heartbeat ping and kernel_info request.
PROBE_TIMEOUT = 1.5

#: States: idle and busy answer; "starting" has not chosen its ports yet; "unresponsive"
#: runs (its process is alive) but answers nothing; "dead" answers nothing and its process
#: (if known) is gone; "unreadable" is a connection file we cannot use (the detail says
#: why).
_STYLES = {
    "idle": "green",
    "busy": "yellow",
    "starting": "yellow",
    "unresponsive": "red",
    "dead": "red",
    "unreadable": "magenta",
}


@dataclass(frozen=True)
class Probe:
    """What asking a kernel found."""

    state: str
    detail: str = ""
    info: ConnectionInfo | None = None


async def ping(info: ConnectionInfo, timeout: float) -> bool:
    """True when the kernel's heartbeat echoes a ping within ``timeout`` seconds."""
    if info.transport == "tcp" and info.hb_port <= 0:
        return False
    ctx = zmq.asyncio.Context.instance()
    sock = ctx.socket(zmq.REQ)
    sock.linger = 0
    try:
        sock.connect(info.url("hb"))
        await sock.send(b"kernelkit-ps")
        return bool(await sock.poll(int(timeout * 1000)))
    except zmq.ZMQError:
        return False  # an address zmq refuses: nothing answers there
    finally:
        sock.close()


async def _kernel_info(info: ConnectionInfo, timeout: float) -> bool:
    try:
        kc = AsyncKernelClient.from_connection_info(info, heartbeat=False)
    except KernelError:
        return False
    try:
        await kc.start()
        await kc.kernel_info(timeout=timeout)
    except (KernelError, OSError):
        return False
    finally:
        await kc.aclose()
    return True


async def probe(kernel: RunningKernel, timeout: float = PROBE_TIMEOUT) -> Probe:
    """Ask a kernel whether it lives: heartbeat and kernel_info at once (a busy kernel
    answers the first but not the second)."""
    if kernel.process_gone:
        return Probe("dead", "its process has exited")
    try:
        info = read_connection_file(kernel.connection_file)
    except ConnectionFileError as exc:
        return Probe("unreadable", exc.problem)
    if not info.ports_chosen:
        return Probe("starting", "its ports are not chosen yet", info)
    beats, answers = await asyncio.gather(ping(info, timeout), _kernel_info(info, timeout))
    if answers:
        return Probe("idle", "", info)
    if beats:
        return Probe("busy", "", info)
    rec = kernel.record
    if rec is not None and rec.kernel_pid is not None:
        return Probe("unresponsive", f"process {rec.kernel_pid} runs but answers nothing", info)
    return Probe("dead", "nothing answers at its ports", info)


def _ago(when: float) -> str:
    seconds = max(0, int(time.time() - when))
    if seconds < 60:
        return f"{seconds} s ago"
    if seconds < 3600:
        return f"{seconds // 60} min ago"
    if seconds < 86400:
        return f"{seconds // 3600} h ago"
    return time.strftime("%Y-%m-%d", time.localtime(when))


def _tilde(path: Path) -> str:
    home = os.path.expanduser("~")
    text = str(path)
    return "~" + text[len(home) :] if home not in ("", "/") and text.startswith(home) else text


def _owner(kernel: RunningKernel) -> str:
    rec = kernel.record
    if rec is None:
        return "-"
    gone = "" if kernel.owner_alive else " (gone)"
    return f"{rec.owner_pid} {rec.owner_command}{gone}".strip()


def _kernel_type(kernel: RunningKernel, result: Probe) -> str:
    if kernel.record is not None:
        return kernel.record.kernel_type
    if result.info is not None and result.info.kernel_name:
        return result.info.kernel_name
    return "?"


def _to_json(kernel: RunningKernel, result: Probe) -> dict[str, object]:
    rec = kernel.record
    return {
        "id": kernel.kernel_id,
        "kernel_type": _kernel_type(kernel, result),
        "state": result.state,
        "detail": result.detail,
        "started": kernel.started,
        "kernel_pid": rec.kernel_pid if rec else None,
        "owner_pid": rec.owner_pid if rec else None,
        "owner_command": rec.owner_command if rec else None,
        "owner_alive": kernel.owner_alive if rec else None,
        "connection_file": str(kernel.connection_file),
    }


def _render(rows: list[tuple[RunningKernel, Probe]], console: Console) -> None:
    headers = ("ID", "KERNEL", "STATE", "STARTED", "OWNER", "CONNECTION FILE")
    cells = [
        (
            k.kernel_id,
            _kernel_type(k, p),
            p.state,
            _ago(k.started),
            _owner(k),
            _tilde(k.connection_file),
        )
        for k, p in rows
    ]
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(headers)]
    out = Text()
    out.append("  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip())
    for (_, p), row in zip(rows, cells, strict=True):
        out.append("\n")
        for i, (cell, width) in enumerate(zip(row, widths, strict=True)):
            style = _STYLES.get(cell, "") if i == 2 else ""
            last = i == len(row) - 1
            out.append(cell if last else cell.ljust(width) + "  ", style=style)
        if p.detail and p.state != "idle":
            out.append(f"\n    {p.detail}", style="dim")
    console.print(out, highlight=False, soft_wrap=True)


def _remove_files(kernel: RunningKernel) -> None:
    with contextlib.suppress(FileNotFoundError):
        kernel.connection_file.unlink()
    forget_kernel(kernel.record_file)


async def _ps(clean: bool, as_json: bool) -> int:
    kernels, orphans = runtime_kernels()
    results = await asyncio.gather(*(probe(k) for k in kernels))
    rows = list(zip(kernels, results, strict=True))
    if as_json:
        doc = {"kernels": [_to_json(k, p) for k, p in rows]}
        sys.stdout.buffer.write(orjson.dumps(doc, option=orjson.OPT_INDENT_2) + b"\n")
    elif rows:
        _render(rows, Console())
    else:
        Console().print(f"No running kernels (no connection files in {runtime_dir()}).")
    if clean:
        err = Console(stderr=True)
        removed = 0
        for kernel, result in rows:
            if result.state == "dead":
                _remove_files(kernel)
                removed += 1
        for orphan in orphans:
            forget_kernel(orphan)
        err.print(
            f"kernelkit: removed the files of {removed} dead kernel(s)"
            + (f" and {len(orphans)} stale record(s)" if orphans else ""),
            highlight=False,
            soft_wrap=True,
        )
    return EXIT_OK


def ps_command(*, clean: bool, as_json: bool) -> int:
    """``kernelkit ps``: returns the exit status."""
    quiet_library_logs()
    return asyncio.run(_ps(clean, as_json))


async def interrupt_running(kernel: RunningKernel, info: ConnectionInfo | None = None) -> str:
    """Interrupt a running kernel: SIGINT to its process group when its record says it
    takes signals and its process lives, else ``interrupt_request``. Returns how.

    Raises:
        KernelError: the message could not be sent or was not answered in time.
    """
    rec = kernel.record
    if (
        rec is not None
        and rec.interrupt_mode == "signal"
        and rec.kernel_pid is not None
        and pid_alive(rec.kernel_pid, rec.kernel_starttime)
    ):
        pid = rec.kernel_pid
        # Kernels run in their own process group (their pid): the whole group is told.
        if os.getpgid(pid) == pid:
            os.killpg(pid, signal.SIGINT)
        else:
            os.kill(pid, signal.SIGINT)
        return f"SIGINT to process {pid}"
    info = info or read_connection_file(kernel.connection_file)
    kc = AsyncKernelClient.from_connection_info(info, heartbeat=False)
    try:
        await kc.start()
        await kc.interrupt(timeout=5.0)
    finally:
        await kc.aclose()
    return "interrupt_request"


def _resolve(console: Console, ident: str) -> RunningKernel | None:
    try:
        return resolve_kernel(ident)
    except UnknownKernel as exc:
        report_error(console, "no such kernel", exc)
        return None


def interrupt_command(ident: str) -> int:
    """``kernelkit interrupt ID``: returns the exit status."""
    quiet_library_logs()
    console = Console(stderr=True)
    kernel = _resolve(console, ident)
    if kernel is None:
        return EXIT_NOT_FOUND
    if kernel.process_gone:
        report_error(console, f"cannot interrupt {kernel.kernel_id}", "the kernel is dead")
        return EXIT_FAILED
    try:
        how = asyncio.run(interrupt_running(kernel))
    except (KernelError, OSError) as exc:
        report_error(console, f"cannot interrupt {kernel.kernel_id}", exc)
        return EXIT_FAILED
    console.print(
        f"kernelkit: interrupted {kernel.kernel_id} ({how})", highlight=False, soft_wrap=True
    )
    return EXIT_OK


async def _stop_directly(kernel: RunningKernel, console: Console) -> int:
    result = await probe(kernel)
    rec = kernel.record
    pid = rec.kernel_pid if rec is not None and not kernel.process_gone else None
    if result.state == "dead":
        _remove_files(kernel)
        console.print(
            f"kernelkit: {kernel.kernel_id} was already dead ({result.detail}); removed its "
            "connection file",
            highlight=False,
            soft_wrap=True,
        )
        return EXIT_OK
    if result.info is not None and result.state in ("idle", "busy"):
        kc = AsyncKernelClient.from_connection_info(result.info, heartbeat=False)
        try:
            await kc.start()
            await kc.shutdown(timeout=5.0)
        except KernelTimeout:
            pass  # no reply: the signals below finish the job when we know the process
        finally:
            await kc.aclose()
    if pid is not None:
        for signum in (signal.SIGTERM, signal.SIGKILL):
            if await asyncio.to_thread(wait_pid_exit, pid, 5.0):
                break
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signum) if os.getpgid(pid) == pid else os.kill(pid, signum)
        else:
            await asyncio.to_thread(wait_pid_exit, pid, 5.0)
    elif result.info is not None:
        # Not ours to signal: wait (bounded) until its heartbeat stops answering.
        for _ in range(20):
            if not await ping(result.info, 0.5):
                break
        else:
            report_error(console, f"cannot stop {kernel.kernel_id}", "it keeps answering")
            return EXIT_FAILED
    _remove_files(kernel)
    console.print(f"kernelkit: stopped {kernel.kernel_id}", highlight=False, soft_wrap=True)
    return EXIT_OK


def stop_command(ident: str) -> int:
    """``kernelkit stop ID``: returns the exit status."""
    quiet_library_logs()
    console = Console(stderr=True)
    kernel = _resolve(console, ident)
    if kernel is None:
        return EXIT_NOT_FOUND
    rec = kernel.record
    if rec is not None and rec.owner_pid != os.getpid() and kernel.owner_alive:
        # Its kernelkit command supervises it (and would restart it): ask that command to
        # stop, as Ctrl-C would; it shuts the kernel down and removes its files.
        os.kill(rec.owner_pid, signal.SIGTERM)
        if wait_pid_exit(rec.owner_pid, 30.0):
            console.print(
                f"kernelkit: stopped {kernel.kernel_id} (its `kernelkit {rec.owner_command}`, "
                f"process {rec.owner_pid}, shut it down)",
                highlight=False,
                soft_wrap=True,
            )
            return EXIT_OK
    try:
        return asyncio.run(_stop_directly(kernel, console))
    except (KernelError, OSError) as exc:
        report_error(console, f"cannot stop {kernel.kernel_id}", exc)
        return EXIT_FAILED
