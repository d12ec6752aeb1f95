"""Figure 13: a kernel on a second host over SSH, against the same kernel started by hand.

The second host is a network namespace with its own sshd (key-only login), made for the
run by ``tests/nanny/sshhost.py`` (COMPONENTS.md, "A second host"): it needs root, ``ip``
and Debian's openssh-server. Without them every contestant is reported missing, with the
reason.

- kernelkit: :class:`~kernelkit.nanny.SSHProvisioner` (tunnel network, the default): one
  ssh connection (a control master, with the nanny's control port forwarded) runs the
  nanny on the host, the nanny starts the host's ``python3`` kernelspec, the kernel's
  ports it reports are forwarded through that connection (``ssh -O forward``), the owner
  subscribes to the nanny, and a kernelkit client connects through the forwards. The
  host is listed once before the samples (what ``kernelkit hosts add`` does; the listing
  is kept in a file): the owner prepares the kernel's launch from it, and the nanny
  starts the kernel before its own imports. Every sample is a new ssh connection, as
  the floor's.
- floor: the same kernel started by hand the quickest way a person can: one ``ssh`` with
  the five ``-L`` forwards on its command line, running ``python -m ipykernel_launcher
  -f F`` on the host with ports chosen beforehand in F (the host is empty, so they are
  free), and the same kernelkit client through the forwards. Same ssh, same keys, same
  kernel, same forwarding; no supervisor, no port negotiation, no second ssh call. (Its
  client connects through the forwards while ssh logs in, which gets sshd to start the
  session ~40 ms sooner than an ssh left alone: see ``SSHProvisioner._nudge_at_login``,
  which kernelkit does on purpose.)
- ssh alone (extra): ``ssh HOST true`` on a new connection: what any start pays for the
  connection, the login and the remote shell.
- python alone (extra): ``ssh HOST python -c pass``: the above plus a Python start there
  (the nanny needs one before it can start the kernel).

One sample: from the start to the first ``kernel_info_reply`` (``wait_for_ready``).

jupyter_client has no contestant: it cannot start a kernel on another host (its ssh
support, ``jupyter_client.tunnel``, only tunnels to a kernel already running there).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import _kk
from bench._config import Config
from bench._core import EXTRA, FLOOR, KERNELKIT, AsyncContestant, Group, Metric, Missing, Target
from bench._procs import free_ports

TIMEOUT = 60.0
_PORTS = ("shell", "iopub", "stdin", "control", "hb")

METRICS = [
    Metric(
        "start", "start-to-ready on a second host over ssh", "ms", target=Target(FLOOR, "<=", 1.1)
    ),
]


class _Host:
    """The second host, shared by the figure's contestants (made by the first, removed by
    the last)."""

    users = 0
    stack: contextlib.ExitStack | None = None
    second: Any = None

    @classmethod
    def acquire(cls) -> Any:
        # The helper lives with the tests that made it; the bench runs from the repo root.
        from tests.nanny.sshhost import second_host, unavailable

        why = unavailable()
        if why is not None:
            raise Missing(f"no second host here: {why}")
        if cls.users == 0:
            stack = contextlib.ExitStack()
            tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="kk-bench-ssh-")))
            cls.second = stack.enter_context(second_host(tmp))
            cls.stack = stack
        cls.users += 1
        return cls.second

    @classmethod
    def release(cls) -> None:
        cls.users -= 1
        if cls.users == 0 and cls.stack is not None:
            stack, cls.stack, cls.second = cls.stack, None, None
            stack.close()


class _OnHost(AsyncContestant):
    second: Any = None

    async def asetup(self) -> None:
        self.client_cls = _kk.api("kernelkit.client", "AsyncKernelClient")
        self.second = _Host.acquire()

    async def ateardown(self) -> None:
        if self.second is not None:
            self.second = None
            _Host.release()

    async def ready(self, info: Any) -> None:
        async with self.client_cls.from_connection_info(info) as kc:
            await kc.wait_for_ready(timeout=TIMEOUT)


class KernelkitSSH(_OnHost):
    name = role = KERNELKIT
    note = "SSHProvisioner (nanny on the host, ports through the ssh connection)"
    hosts_dir: tempfile.TemporaryDirectory[str] | None = None
    saved_env: str | None = None

    async def asetup(self) -> None:
        self.provisioner_cls = _kk.api("kernelkit.nanny", "SSHProvisioner")
        self.launch = _kk.api("kernelkit.provisioning", "launch_provisioner")
        spec_cls = _kk.api("kernelkit.specs", "KernelSpec")
        # Only its name matters: the host's own python3 kernelspec is launched.
        self.spec = spec_cls(
            name="python3",
            resource_dir=Path("."),
            argv=("python",),
            display_name="python3",
            language="python",
        )
        await super().asetup()
        # The host's listing, kept in a directory of our own (not the user's).
        self.hosts_dir = tempfile.TemporaryDirectory(prefix="kk-bench-hosts-")
        self.saved_env = os.environ.get("KERNELKIT_HOSTS_DIR")
        os.environ["KERNELKIT_HOSTS_DIR"] = self.hosts_dir.name
        provider = _kk.api("kernelkit.nanny", "SSHProvider")(hosts=[self.second.host])
        listed = await asyncio.to_thread(provider.refresh)
        if not any(t.name == "second/python3" for t in listed):
            self.note += " (the host's listing failed: started without it)"

    async def ateardown(self) -> None:
        if self.hosts_dir is not None:
            if self.saved_env is None:
                os.environ.pop("KERNELKIT_HOSTS_DIR", None)
            else:
                os.environ["KERNELKIT_HOSTS_DIR"] = self.saved_env
            self.hosts_dir.cleanup()
            self.hosts_dir = None
        await super().ateardown()

    async def asample(self) -> dict[str, float]:
        p = self.provisioner_cls(
            kernel_id=os.urandom(8).hex(), kernel_spec=self.spec, host=self.second.host
        )
        t0 = time.perf_counter()
        try:
            await self.launch(p)
            t1 = time.perf_counter()
            await self.ready(p.connection_info)
            t2 = time.perf_counter()
        finally:
            with contextlib.suppress(Exception):
                await p.stop(grace=0)
            await p.cleanup()
        early = 1.0 if getattr(p, "_started_early", False) else 0.0  # started from the listing
        return {"start": (t2 - t0) * 1000.0, "_launched_ms": (t1 - t0) * 1000.0, "_early": early}


class ByHand(_OnHost):
    name = "by-hand-ssh"
    role = FLOOR
    note = "ssh -L x5 HOST python -m ipykernel_launcher -f F (ports chosen beforehand)"

    async def asample(self) -> dict[str, float]:
        host = self.second.host
        key = os.urandom(32).hex()
        remote_ports = random.sample(range(20000, 60000), 5)
        local_ports = free_ports(5)
        fd, name = tempfile.mkstemp(prefix="kk-floor-", suffix=".json")
        f = Path(name)
        info: dict[str, Any] = {
            "ip": "127.0.0.1",
            "transport": "tcp",
            "key": key,
            "signature_scheme": "hmac-sha256",
        }
        info.update({f"{c}_port": p for c, p in zip(_PORTS, remote_ports, strict=True)})
        os.write(fd, json.dumps(info).encode())
        os.close(fd)
        forwards: list[str] = []
        for lp, rp in zip(local_ports, remote_ports, strict=True):
            forwards += ["-L", f"127.0.0.1:{lp}:127.0.0.1:{rp}"]
        remote = f"{host.python} -m ipykernel_launcher -f {f}"
        local = dict(info, key=key)
        local.update({f"{c}_port": p for c, p in zip(_PORTS, local_ports, strict=True)})
        t0 = time.perf_counter()
        proc = await asyncio.create_subprocess_exec(
            "ssh", *host.ssh_args(), "-o", "ExitOnForwardFailure=yes", *forwards,
            host.destination, "--", remote,
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            conn = _kk.api("kernelkit", "ConnectionInfo").from_dict(local, source="the floor")
            await self.ready(conn)
            t1 = time.perf_counter()
        finally:
            _kill_on_host(self.second, str(f))
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
            os.unlink(f)
        return {"start": (t1 - t0) * 1000.0}


class _Command(AsyncContestant):
    """A command over a new ssh connection, timed to its exit."""

    role = EXTRA
    second: Any = None

    def remote(self, host: Any) -> str:
        raise NotImplementedError

    async def asetup(self) -> None:
        self.second = _Host.acquire()

    async def ateardown(self) -> None:
        if self.second is not None:
            self.second = None
            _Host.release()

    async def asample(self) -> dict[str, float]:
        host = self.second.host
        t0 = time.perf_counter()
        proc = await asyncio.create_subprocess_exec(
            "ssh", *host.ssh_args(), host.destination, "--", self.remote(host),
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        code = await asyncio.wait_for(proc.wait(), TIMEOUT)
        if code != 0:
            raise RuntimeError(f"ssh exited with {code}")
        return {"start": (time.perf_counter() - t0) * 1000.0}


class SSHAlone(_Command):
    name = "ssh-true"
    note = "ssh HOST true: connection, login, remote shell"

    def remote(self, host: Any) -> str:
        return "true"


class PythonAlone(_Command):
    name = "ssh-python"
    note = "ssh HOST python -c pass: the same plus a Python start on the host"

    def remote(self, host: Any) -> str:
        return f"{host.python} -c pass"


def _kill_on_host(second: Any, needle: str) -> None:
    """The floor's kernel: a lost ssh session does not stop it (no terminal), kill it."""
    for pid in second.pids():
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
        except OSError:
            continue
        if needle.encode() in cmdline and pid != second.sshd.pid:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def groups(cfg: Config) -> list[Group]:
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())  # tests.nanny.sshhost, from the repository root
    return [
        Group(
            figure=13,
            name="ssh",
            metrics=METRICS,
            contestants=[KernelkitSSH, ByHand, SSHAlone, PythonAlone],
            reps=cfg.reps(3, 10),
            warmup=1,
            budget_s=cfg.pick(40, 120),
            note="floor = the same kernel by hand: one ssh with its -L forwards, ports fixed",
        )
    ]
