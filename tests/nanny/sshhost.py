"""A second host for the SSH tests: a network namespace with a veth pair and Debian's
openssh-server (key-only auth), made and removed by the tests (COMPONENTS.md, "A second
host"). Needs root, ``ip`` and ``/usr/sbin/sshd`` (``./dev setup`` installs it)."""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from kernelkit.nanny import Host

SSHD = "/usr/sbin/sshd"


def unavailable() -> str | None:
    """Why a second host cannot be made here, or None."""
    if os.geteuid() != 0:
        return "network namespaces need root"
    if not os.path.exists(SSHD):
        return f"{SSHD} is missing (apt-get install openssh-server; ./dev setup does)"
    if shutil.which("ip") is None or shutil.which("ssh") is None:
        return "needs ip (iproute2) and ssh (openssh-client)"
    return None


def _run(*cmd: str) -> None:
    subprocess.run(cmd, check=True, capture_output=True, timeout=30)


@dataclass
class SecondHost:
    ns: str
    address: str
    host_veth: str
    sshd: subprocess.Popen[bytes]
    dir: Path
    host: Host

    def ssh_config(self, *, identity: Path, known_hosts: Path) -> Path:
        """An ssh_config for this host with the given key and known_hosts."""
        path = self.dir / f"ssh_config-{identity.name}-{known_hosts.name}"
        path.write_text(
            "Host *\n"
            f"  IdentityFile {identity}\n"
            "  IdentitiesOnly yes\n"
            f"  UserKnownHostsFile {known_hosts}\n"
            "  GlobalKnownHostsFile /dev/null\n"
            "  StrictHostKeyChecking yes\n"
            "  PasswordAuthentication no\n"
            # The tests' own environment locations reach the host's kernelkit.
            "  SendEnv KERNELKIT_ENV_PREFIXES\n"
        )
        return path

    def link(self, up: bool) -> None:
        """Cut or restore the link (inside the namespace)."""
        _run(
            "ip", "netns", "exec", self.ns, "ip", "link", "set", "kkn-peer", "up" if up else "down"
        )

    def pids(self) -> list[int]:
        return ns_pids(self.ns)


def ns_pids(ns: str) -> list[int]:
    """Every process in namespace ``ns``."""
    out = subprocess.run(
        ["ip", "netns", "pids", ns], capture_output=True, text=True, timeout=30
    ).stdout
    return [int(x) for x in out.split()]


def keygen(path: Path) -> str:
    _run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path))
    return path.with_suffix(".pub").read_text().strip()


def _wait_listening(address: str, port: int, sshd: subprocess.Popen[bytes]) -> None:
    # sshd says nothing when it is ready: try to connect, with a bounded back-off.
    deadline = time.monotonic() + 15
    pause = 0.01
    while True:
        assert sshd.poll() is None, "sshd exited at start"
        with contextlib.suppress(OSError), socket.create_connection((address, port), 0.5):
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"sshd did not listen on {address}:{port}")
        time.sleep(pause)
        pause = min(pause * 2, 0.2)


@contextlib.contextmanager
def second_host(tmp: Path) -> Iterator[SecondHost]:
    """Create the namespace, its link and sshd; remove everything at the end."""
    tag = f"{os.getpid() % 10000}{random.randrange(100)}"
    ns = f"kk-nanny-{tag}"
    host_veth = f"kkn{tag}"
    octet = random.randrange(1, 250)
    here, there = f"10.213.{octet}.1", f"10.213.{octet}.2"
    d = tmp / "sshhost"
    d.mkdir(mode=0o700)
    sshd: subprocess.Popen[bytes] | None = None
    try:
        _run("ip", "netns", "add", ns)
        _run(
            "ip", "link", "add", host_veth, "type", "veth", "peer", "name", "kkn-peer", "netns", ns
        )
        _run("ip", "addr", "add", f"{here}/24", "dev", host_veth)
        _run("ip", "link", "set", host_veth, "up")
        _run("ip", "netns", "exec", ns, "ip", "addr", "add", f"{there}/24", "dev", "kkn-peer")
        _run("ip", "netns", "exec", ns, "ip", "link", "set", "kkn-peer", "up")
        _run("ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up")
        host_pub = keygen(d / "host_key")
        user_pub = keygen(d / "id_user")
        (d / "authorized_keys").write_text(user_pub + "\n")
        (d / "known_hosts").write_text(f"{there} {host_pub}\n")
        config = d / "sshd_config"
        config.write_text(
            f"ListenAddress {there}\nPort 22\nHostKey {d / 'host_key'}\n"
            f"AuthorizedKeysFile {d / 'authorized_keys'}\nPasswordAuthentication no\n"
            "KbdInteractiveAuthentication no\nPubkeyAuthentication yes\n"
            "PermitRootLogin prohibit-password\nStrictModes no\nUsePAM no\n"
            f"PidFile {d / 'sshd.pid'}\nLogLevel ERROR\n"
            # The test machine's environment for the remote side (its Jupyter paths).
            "PermitUserEnvironment no\nAcceptEnv KERNELKIT_TEST_SESSION KERNELKIT_ENV_PREFIXES\n"
        )
        os.makedirs("/run/sshd", mode=0o755, exist_ok=True)
        sshd = subprocess.Popen(
            ["ip", "netns", "exec", ns, SSHD, "-D", "-e", "-f", str(config)],
            stderr=subprocess.DEVNULL,
        )
        _wait_listening(there, 22, sshd)
        second = SecondHost(ns, there, host_veth, sshd, d, Host(name="second", hostname=there))
        ssh_config = second.ssh_config(identity=d / "id_user", known_hosts=d / "known_hosts")
        second.host = Host(
            name="second",
            hostname=there,
            user="root",
            python=sys.executable,
            ssh_config=str(ssh_config),
        )
        yield second
    finally:
        if sshd is not None:
            sshd.send_signal(signal.SIGTERM)
            try:
                sshd.wait(10)
            except subprocess.TimeoutExpired:
                sshd.kill()
                sshd.wait()
        # Whatever still runs in the namespace (sessions, nannies, kernels) goes too.
        with contextlib.suppress(subprocess.SubprocessError):
            for pid in ns_pids(ns):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        subprocess.run(["ip", "link", "del", host_veth], capture_output=True, timeout=30)
        subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=30)
