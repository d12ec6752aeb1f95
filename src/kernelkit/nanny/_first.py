"""The nanny's first moment: read its request, become a child subreaper, and start the
kernel if its owner prepared the launch (``"early"`` in the request: the command,
environment, directory, key and connection file, all made by the owner on this machine,
:mod:`kernelkit.nanny._prepare`). Nothing else is imported before the kernel runs: no
kernelspec, no configuration model, no asyncio or zmq (see :mod:`kernelkit.nanny._early`
for the rest of the start, and for a nanny that prepares the launch itself).

The kernel is started as the nanny's provisioner would start it: its own session, its
output on pipes from its first byte (read once the nanny's event loop runs; the pipes
hold what it writes meanwhile), ``KERNELKIT_TREE`` and ``JPY_PARENT_PID`` in its
environment, and SIGKILL when the nanny dies (``setpriv --pdeathsig``).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys

from kernelkit.provisioning._treetag import new_tree_tag, set_child_subreaper, tag_environ

# Not typing, not dataclasses (with inspect and ast, they cost more than the rest here).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from typing import Any

__all__ = ["EarlyKernel", "First", "first_moment", "pdeathsig_command", "spawn_early"]


class EarlyKernel:
    """A kernel started before the nanny's provisioner existed, for it to adopt: its
    process, the read ends of its output pipes (the capture takes them over), its key,
    its connection file (ports 0: the kernel writes its ports back into it), its tree tag
    (``KERNELKIT_TREE``), the command, environment (before the tag) and directory it was
    started with (:meth:`matches`), and the text its connection file was given."""

    __slots__ = (
        "cmd",
        "connection_file",
        "content",
        "cwd",
        "env",
        "key",
        "popen",
        "stderr",
        "stdout",
        "tag",
    )

    def __init__(
        self,
        popen: subprocess.Popen[bytes],
        stdout: int,
        stderr: int,
        key: bytes,
        connection_file: str,
        tag: str,
        *,
        cmd: Sequence[str] = (),
        env: Mapping[str, str] | None = None,
        cwd: str | None = None,
        content: str = "",
    ) -> None:
        self.popen = popen
        self.stdout = stdout
        self.stderr = stderr
        self.key = key
        self.connection_file = connection_file
        self.tag = tag
        self.cmd = [os.path.expanduser(a) for a in cmd]
        self.env = dict(env) if env is not None else {}
        self.cwd = cwd
        self.content = content

    def matches(self, cmd: Sequence[str], env: Mapping[str, str] | None, cwd: str | None) -> bool:
        """True when a provisioner about to run ``cmd`` in ``env`` (None: this process's
        environment) and ``cwd`` would start this very kernel: it may adopt it."""
        return (
            [os.path.expanduser(str(a)) for a in cmd] == self.cmd
            and dict(os.environ if env is None else env) == self.env
            and cwd == self.cwd
        )

    def discard(self) -> None:
        """Kill and reap it, close its pipes, remove its file (it was not adopted). Once:
        a second call does nothing."""
        if self.stdout < 0:
            return
        proc = self.popen
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):  # (gone between poll and kill)
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        for fd in (self.stdout, self.stderr):
            os.close(fd)
        self.stdout = self.stderr = -1
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.connection_file)


class First:
    """The request (None if it is not a JSON object: ``error`` says why), whether the
    nanny is a subreaper, and the kernel if its owner prepared the launch."""

    __slots__ = ("early", "error", "request", "subreaper")

    def __init__(
        self,
        request: dict[str, Any] | None,
        error: str = "",
        *,
        subreaper: bool = False,
        early: EarlyKernel | None = None,
    ) -> None:
        self.request = request
        self.error = error
        self.subreaper = subreaper
        self.early = early


def first_moment() -> First:
    """Read the request line from stdin, become a subreaper, start a prepared kernel."""
    line = sys.stdin.buffer.readline()
    try:
        request = json.loads(line)
    except ValueError as exc:  # (json.JSONDecodeError is a ValueError)
        return First(None, f"the nanny's request is not JSON: {exc}")
    if not isinstance(request, dict):
        return First(None, "the nanny's request must be a JSON object")
    subreaper = set_child_subreaper()
    early = _start_prepared(request.get("early")) if subreaper else None
    return First(request, subreaper=subreaper, early=early)


def _start_prepared(block: object) -> EarlyKernel | None:
    if not isinstance(block, dict):
        return None
    cmd, env, cwd = block.get("cmd"), block.get("env"), block.get("cwd")
    key, path, kernel_id = block.get("key"), block.get("connection_file"), block.get("kernel_id")
    content = block.get("content")
    if not (
        isinstance(cmd, list)
        and cmd
        and all(isinstance(a, str) for a in cmd)
        and isinstance(env, dict)
        and all(isinstance(k, str) and isinstance(v, str) for k, v in env.items())
        and (cwd is None or isinstance(cwd, str))
        and isinstance(key, str)
        and isinstance(path, str)
        and isinstance(kernel_id, str)
        and isinstance(content, str)
    ):
        return None  # (the owner's bug; the provisioner starts the kernel instead)
    return spawn_early(
        cmd,
        env,
        cwd=cwd,
        key=key.encode("ascii"),
        connection_file=path,
        content=content,
        kernel_id=kernel_id,
    )


def spawn_early(
    cmd: Sequence[str],
    env: Mapping[str, str],
    *,
    cwd: str | None,
    key: bytes,
    connection_file: str,
    content: str,
    kernel_id: str,
    pdeathsig: bool = True,
) -> EarlyKernel | None:
    """Write the kernel's connection file (``content``) and start the kernel (with
    ``pdeathsig``: SIGKILL when this process dies, :func:`pdeathsig_command`); None if it
    cannot be done here (the provisioner then tries, and says why)."""
    program = shutil.which(cmd[0], path=env.get("PATH", os.defpath))
    if program is None or not _runs_as_is(program):
        return None
    if not _write_private(connection_file, content):
        return None
    tag = new_tree_tag(kernel_id)
    environ = tag_environ(env, tag)
    environ["JPY_PARENT_PID"] = str(os.getpid())
    out_r, out_w = os.pipe2(os.O_CLOEXEC)
    err_r, err_w = os.pipe2(os.O_CLOEXEC)
    try:
        proc = subprocess.Popen(
            pdeathsig_command(cmd, environ) if pdeathsig else list(cmd),
            stdin=subprocess.DEVNULL,
            stdout=out_w,
            stderr=err_w,
            env=environ,
            cwd=cwd,
            start_new_session=True,
        )
    except OSError:
        for fd in (out_r, err_r):
            os.close(fd)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(connection_file)
        return None
    finally:
        os.close(out_w)
        os.close(err_w)
    return EarlyKernel(
        proc, out_r, err_r, key, connection_file, tag, cmd=cmd, env=env, cwd=cwd, content=content
    )


def _runs_as_is(program: str) -> bool:
    """True when ``program`` is a binary, or a script whose ``#!`` interpreter is there:
    what setpriv can start as the provisioner would. setpriv runs any other file with
    /bin/sh (which the provisioner refuses: "Exec format error"), and fails with words of
    its own where the provisioner's error says what is wrong."""
    try:
        with open(program, "rb") as f:
            head = f.read(256)
    except OSError:
        return False
    if head.startswith(b"\x7fELF"):
        return True
    if not head.startswith(b"#!"):
        return False
    words = head[2:].split(b"\n", 1)[0].split()
    return bool(words) and os.path.isfile(words[0]) and os.access(words[0], os.X_OK)


def _write_private(path: str, content: str) -> bool:
    """Write ``path`` atomically with mode 0600 (its directory made 0700 if missing), as
    connection files are written; False if it cannot be."""
    tmp = f"{path}.{os.getpid()}.tmp"
    try:
        _private_dirs(os.path.dirname(path) or ".")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, content.encode())
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except OSError:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        return False
    return True


def _private_dirs(directory: str) -> None:
    """Make ``directory`` and its missing parents with mode 0700 whatever the umask (as
    :func:`kernelkit._files.ensure_private_dir` does, without its imports)."""
    missing = []
    level = os.path.abspath(directory)
    while not os.path.isdir(level):
        missing.append(level)
        parent = os.path.dirname(level)
        if parent == level:
            break
        level = parent
    for level in reversed(missing):
        with contextlib.suppress(FileExistsError):  # another process made it meanwhile
            os.mkdir(level, 0o700)
            os.chmod(level, 0o700)  # (mkdir's mode is filtered by the umask)


def pdeathsig_command(cmd: Sequence[str], env: Mapping[str, str] | None) -> list[str]:
    """``cmd`` run by ``setpriv --pdeathsig KILL``: the kernel gets SIGKILL when the nanny
    dies (Linux's parent-death signal, set just before the kernel's exec), since a
    SIGKILLed nanny cannot stop it and not every kernel watches ``JPY_PARENT_PID``
    (xeus-python does not). Without setpriv, or for a program that cannot be found (the
    launcher's own error says so), ``cmd`` as is."""
    setpriv = shutil.which("setpriv") if sys.platform.startswith("linux") else None
    path = (env if env is not None else os.environ).get("PATH", os.defpath)
    if not cmd or setpriv is None or shutil.which(cmd[0], path=path) is None:
        return list(cmd)
    return [setpriv, "--pdeathsig", "KILL", "--", *cmd]
