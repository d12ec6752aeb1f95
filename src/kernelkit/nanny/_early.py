"""The nanny's first moments: read the launch configuration, become a child subreaper and
start the kernel, before the rest of the nanny (asyncio, ZeroMQ, the provisioner) is
imported. Those imports then run while the kernel boots, instead of before it: the nanny
costs a kernel's start little more than the Python start-up it needs to exist.

Only the common case starts this early: a kernel that writes its own ports back into its
connection file (ipykernel and its kin) over tcp, unencrypted; its kernelspec given whole,
or by name (a host's own, found here: that loads the spec scanner). The file it reads and
its process are then the ones the nanny's
:class:`~kernelkit.provisioning.LocalProvisioner` would have made (same key, same path,
same tag, same parent-death signal); the provisioner adopts them
(:class:`~kernelkit.nanny._kernel.KernelUnderNanny`). Any other kernel is started by the
provisioner itself, as before. The guarantees do not move: the nanny is a subreaper
before the kernel exists, the kernel dies with the nanny (``setpriv --pdeathsig``), and
its stdout and stderr are pipes from its first byte (read once the event loop runs; the
pipes hold what it writes meanwhile).

This module imports only what that needs (no asyncio, no zmq, no entry points, and the
standard json: orjson loads uuid, datetime and platform).
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kernelkit import specs
from kernelkit._errors import KernelError
from kernelkit._files import atomic_write
from kernelkit._jupyterpaths import jupyter_runtime_dir
from kernelkit.nanny._wire import NannyConfig
from kernelkit.provisioning._ports import choose_port_mode
from kernelkit.provisioning._reaper import new_tree_tag, set_child_subreaper, tag_environ
from kernelkit.specs._spec import KernelSpec

__all__ = [
    "Beginning",
    "EarlyKernel",
    "Resolved",
    "begin",
    "pdeathsig_command",
    "resolve",
    "start_early",
]

_LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})


@dataclass(frozen=True, slots=True)
class EarlyKernel:
    """A kernel started before the nanny's provisioner existed, for it to adopt."""

    popen: subprocess.Popen[bytes]
    stdout: int  # read ends of its output pipes (the capture takes them over)
    stderr: int
    key: bytes
    connection_file: Path  # with ports 0: the kernel writes its ports back into it
    tag: str  # its tree tag (KERNELKIT_TREE)

    def discard(self) -> None:
        """Kill and reap it, close its pipes, remove its file (it was not adopted)."""
        proc = self.popen
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):  # (gone between poll and kill)
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        for fd in (self.stdout, self.stderr):
            os.close(fd)
        self.connection_file.unlink(missing_ok=True)


@dataclass(frozen=True, slots=True)
class Beginning:
    """What the nanny's first moments produced: its configuration and the kernel it names
    (or the error that answers a bad one), whether it is a subreaper, and the kernel's
    process if it started early."""

    config: NannyConfig | None
    error: dict[str, Any] | None = None
    subreaper: bool = False
    launch: Resolved | None = None
    early: EarlyKernel | None = None


def begin() -> Beginning:
    """Read the configuration line from stdin, become a subreaper, start the kernel if it
    can start this early."""
    line = sys.stdin.buffer.readline()
    try:
        config = NannyConfig.from_dict(json.loads(line))
    except (ValueError, KernelError) as exc:  # (json.JSONDecodeError is a ValueError)
        return Beginning(None, _error(exc))
    try:
        launch = resolve(config)
    except KernelError as exc:
        return Beginning(None, _error(exc))
    subreaper = set_child_subreaper()
    early = start_early(config, launch) if subreaper else None
    return Beginning(config, subreaper=subreaper, launch=launch, early=early)


@dataclass(frozen=True, slots=True)
class Resolved:
    """What the nanny launches: the kernelspec and the environment to apply it to
    (``inherit_env``: on top of the nanny's own)."""

    spec: KernelSpec
    env: dict[str, str]
    inherit_env: bool


def resolve(config: NannyConfig) -> Resolved:
    """The configuration's kernel: its spec as given, a kernelspec of this machine by
    name, or a kernel type of this machine by id (``env/<env-id>/python3``: prepared by
    discovery, its environment activated; only then is discovery loaded).

    Raises:
        KernelError: no such kernel here, or it cannot be launched (the message says why).
    """
    if config.spec is not None:
        return Resolved(config.spec, dict(config.env), config.inherit_env)
    name = config.spec_name or ""
    if "/" not in name:
        return Resolved(specs.get_kernel_spec(name), dict(config.env), config.inherit_env)
    base = {**os.environ, **config.env} if config.inherit_env else dict(config.env)
    host_plan = importlib.import_module("kernelkit.nanny._host_plan")
    spec, env = host_plan.prepare_here(name, base)
    return Resolved(spec, env, False)


def _error(exc: Exception) -> dict[str, Any]:
    return {"status": "error", "error": type(exc).__name__, "message": str(exc)}


def _eligible(config: NannyConfig, spec: KernelSpec) -> bool:
    opts = config.options
    if not spec.argv or opts.get("independent"):
        return False
    if opts.get("transport", "tcp") != "tcp":
        return False
    if opts.get("encryption", "auto") != "none" and opts.get("ip", "127.0.0.1") not in _LOOPBACK:
        return False  # CurveZMQ may be wanted: keys need zmq, left to the provisioner
    if not any("{connection_file}" in arg for arg in spec.argv):
        return False  # the provisioner says what is wrong with such a spec
    try:
        mode, _ = choose_port_mode(
            kernel_name=spec.name,
            argv=spec.argv,
            metadata=spec.metadata,
            kernel_protocol_version=spec.kernel_protocol_version,
            transport="tcp",
            override=opts.get("port_mode"),
        )
    except KernelError:
        return False  # (the same error comes from the provisioner, in its answer)
    return mode == "write-back"


def start_early(config: NannyConfig, launch: Resolved) -> EarlyKernel | None:
    """Start the kernel now if it is the common case (module docstring); None otherwise,
    or when anything goes wrong (the provisioner then starts it, and reports the error)."""
    if "/" in config.kernel_id or config.kernel_id in (".", ".."):
        return None
    spec = launch.spec
    if not _eligible(config, spec):
        return None
    opts = config.options
    runtime = opts.get("runtime_dir")
    path = Path(runtime) if runtime else Path(jupyter_runtime_dir())
    path = path / f"kernel-{config.kernel_id}.json"
    key = os.urandom(32).hex().encode("ascii")
    base = {**os.environ, **launch.env} if launch.inherit_env else dict(launch.env)
    env = spec.format_env(base)
    cmd = [os.path.expanduser(a) for a in spec.format_argv(connection_file=path)]
    cmd.extend(config.extra_arguments)
    if shutil.which(cmd[0], path=env.get("PATH", os.defpath)) is None:
        return None
    tag = new_tree_tag(config.kernel_id)
    env = tag_environ(env, tag)
    env["JPY_PARENT_PID"] = str(os.getpid())
    # The connection file as LocalProvisioner writes it in write-back mode: ports 0.
    info = {
        "shell_port": 0,
        "iopub_port": 0,
        "stdin_port": 0,
        "control_port": 0,
        "hb_port": 0,
        "ip": opts.get("ip", "127.0.0.1"),
        "key": key.decode("ascii"),
        "transport": "tcp",
        "signature_scheme": "hmac-sha256",
        "kernel_name": spec.name,
    }
    try:
        atomic_write(path, json.dumps(info, indent=2).encode())
    except OSError:
        return None
    out_r, out_w = os.pipe2(os.O_CLOEXEC)
    err_r, err_w = os.pipe2(os.O_CLOEXEC)
    try:
        proc = subprocess.Popen(
            pdeathsig_command(cmd, env),
            stdin=subprocess.DEVNULL,
            stdout=out_w,
            stderr=err_w,
            env=env,
            cwd=config.cwd,
            start_new_session=True,
        )
    except OSError:
        for fd in (out_r, err_r):
            os.close(fd)
        path.unlink(missing_ok=True)
        return None
    finally:
        os.close(out_w)
        os.close(err_w)
    return EarlyKernel(proc, out_r, err_r, key, path, tag)


def pdeathsig_command(cmd: list[str] | tuple[str, ...], env: dict[str, str] | None) -> list[str]:
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
