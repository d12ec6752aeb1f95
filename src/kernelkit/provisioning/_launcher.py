"""Starting a kernel process: :func:`launch_kernel`."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from typing import IO, Any

from kernelkit._errors import KernelStartError, ProvisioningError
from kernelkit.provisioning._capture import OutputCapture

__all__ = ["launch_captured", "launch_kernel"]

_Stream = int | IO[Any] | None
# Popen options that would undo "the kernel runs in its own session".
_OURS = ("start_new_session", "process_group", "preexec_fn")


def _resolve(program: str, env: Mapping[str, str], cwd: str | None, name: str | None) -> str:
    """Check argv[0] before Popen, so the error says what is wrong in words."""
    if os.sep in program or (os.altsep and os.altsep in program):
        path = program if os.path.isabs(program) or cwd is None else os.path.join(cwd, program)
        if not os.path.exists(path):
            raise KernelStartError(
                f"cannot start {program!r}: no such file (fix argv[0] in the kernelspec, "
                "or reinstall the kernel)",
                kernel_name=name,
            )
        if os.path.isdir(path) or not os.access(path, os.X_OK):
            raise KernelStartError(
                f"cannot start {program!r}: not an executable file", kernel_name=name
            )
        return program
    search = env.get("PATH", os.defpath)
    found = shutil.which(program, path=search)
    if found is None:
        raise KernelStartError(
            f"cannot start {program!r}: not found on PATH ({search}); install it or put "
            "its absolute path in the kernelspec's argv",
            kernel_name=name,
        )
    return found


def launch_kernel(
    cmd: Sequence[str],
    stdin: _Stream = None,
    stdout: _Stream = None,
    stderr: _Stream = None,
    env: Mapping[str, str] | None = None,
    independent: bool = False,
    cwd: str | os.PathLike[str] | None = None,
    *,
    kernel_name: str | None = None,
    **kw: Any,
) -> subprocess.Popen[bytes]:
    """Start a kernel process in its own session and process group, and return it.

    ``stdin`` defaults to /dev/null (a kernel never reads the launcher's terminal);
    ``stdout``/``stderr`` default to the launcher's. ``env`` defaults to a copy of
    ``os.environ``. Unless ``independent``, ``JPY_PARENT_PID`` is set so the kernel exits
    when this process dies (ipykernel watches for that). ``**kw`` goes to
    :class:`subprocess.Popen`, except options that would keep the kernel in our session.
    ``kernel_name`` only names the kernel in errors.

    Raises:
        KernelStartError: the argv is empty, argv[0] is missing or not executable, or the
            exec failed (message names the kernel and the cause).
        ProvisioningError: ``kw`` tries to change the session or process group.
    """
    argv = [os.path.expanduser(str(arg)) for arg in cmd]
    if not argv or not argv[0]:
        raise KernelStartError(
            "the kernel's argv is empty; its kernelspec must give the command to run",
            kernel_name=kernel_name,
        )
    clash = [k for k in _OURS if k in kw]
    if clash:
        raise ProvisioningError(
            f"launch_kernel: {', '.join(clash)} cannot be set: kernels always run in their "
            "own session and process group"
        )
    environ = dict(os.environ if env is None else env)
    workdir = os.fspath(cwd) if cwd is not None else None
    options: dict[str, Any] = dict(kw)
    program = options.pop("executable", None) or _resolve(argv[0], environ, workdir, kernel_name)
    if sys.platform == "win32":  # pragma: no cover - no Windows here
        options.setdefault("creationflags", subprocess.CREATE_NEW_PROCESS_GROUP)
    else:
        options["start_new_session"] = True
        if not independent:
            environ["JPY_PARENT_PID"] = str(os.getpid())
    try:
        return subprocess.Popen(
            argv,
            executable=program,
            stdin=subprocess.DEVNULL if stdin is None else stdin,
            stdout=stdout,
            stderr=stderr,
            env=environ,
            cwd=workdir,
            **options,
        )
    except OSError as exc:
        cause = exc.strerror or str(exc)
        hint = ""
        missing = isinstance(exc, FileNotFoundError)
        if missing and workdir is not None and not os.path.isdir(workdir):
            hint = f"; the working directory {workdir!r} does not exist"
        elif missing:
            hint = " (a script whose #! interpreter is missing?)"
        raise KernelStartError(
            f"cannot start {argv[0]!r}: {cause}{hint}", kernel_name=kernel_name
        ) from exc


def launch_captured(
    cmd: Sequence[str],
    capture: OutputCapture,
    *,
    loop: asyncio.AbstractEventLoop,
    env: Mapping[str, str] | None,
    cwd: str | None,
    independent: bool,
    kernel_name: str,
) -> subprocess.Popen[bytes]:
    """:func:`launch_kernel` with its stdout and stderr read by ``capture`` (on ``loop``).

    Raises:
        KernelStartError: as :func:`launch_kernel` (no pipe is left open).
    """
    out_r, out_w = OutputCapture.new_pipe()
    err_r, err_w = OutputCapture.new_pipe()
    try:
        proc = launch_kernel(
            cmd,
            stdout=out_w,
            stderr=err_w,
            env=env,
            cwd=cwd,
            independent=independent,
            kernel_name=kernel_name,
        )
    except BaseException:
        os.close(out_r)
        os.close(err_r)
        raise
    finally:
        os.close(out_w)
        os.close(err_w)
    capture.attach(loop, (("stdout", out_r), ("stderr", err_r)))
    return proc
