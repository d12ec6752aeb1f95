"""Asking registered hosts for their kernelspecs over ssh (the ``ssh`` provider's work,
loaded only when hosts are registered)."""

from __future__ import annotations

import json
import shlex
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from kernelkit.discovery import KernelType
from kernelkit.nanny._hosts import Host
from kernelkit.specs import KernelSpec

__all__ = ["ORIGIN_HOST", "ORIGIN_SSH_KERNELSPEC", "ask_hosts"]

ORIGIN_SSH_KERNELSPEC = "ssh-kernelspec"
#: Not a kernel: a host that cannot be asked; always has problems.
ORIGIN_HOST = "host"

# Printed by the host's Python: its kernelspecs as kernelkit reads them.
_LIST = (
    "import json;from kernelkit.specs import scan_kernel_specs as s;"
    "print(json.dumps([dict(k.to_dict(),name=k.name,problems=list(k.problems))"
    " for k in s()]))"
)


def ask_hosts(hosts: list[Host], *, timeout: float) -> list[KernelType]:
    """Every host's kernel types (or one broken entry per host that cannot be asked)."""
    with ThreadPoolExecutor(max_workers=min(8, len(hosts))) as pool:
        found = list(pool.map(lambda h: _ask(h, timeout), hosts))
    return [t for types in found for t in types]


def _ask(host: Host, timeout: float) -> list[KernelType]:
    cmd = [
        "ssh",
        *host.ssh_args(),
        "-o",
        f"ConnectTimeout={max(1, int(timeout))}",
        host.destination,
        "--",
        f"{shlex.quote(host.python)} -c {shlex.quote(_LIST)}",
    ]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return [_broken(host, f"no answer within {timeout:g} s")]
    except OSError as exc:
        return [_broken(host, f"cannot run ssh: {exc.strerror or exc}")]
    if done.returncode != 0:
        said = done.stderr.strip().splitlines()
        return [_broken(host, said[-1] if said else f"ssh exited {done.returncode}")]
    try:
        specs = json.loads(done.stdout)
    except ValueError:
        return [_broken(host, "kernelkit on the host answered something unreadable")]
    return [_kernel_type(host, d) for d in specs if isinstance(d, dict)]


def _broken(host: Host, why: str) -> KernelType:
    return KernelType(
        name=host.name,
        display_name=f"host {host.name}",
        language="",
        origin=ORIGIN_HOST,
        problems=(f"host {host.name!r} ({host.url}): {why}",),
    )


def _kernel_type(host: Host, d: dict[str, Any]) -> KernelType:
    name = str(d.get("name", ""))
    argv = d.get("argv")
    metadata = d.get("metadata") if isinstance(d.get("metadata"), dict) else {}
    spec = KernelSpec(
        name=name,
        # Never a directory here: the spec lives on the host.
        resource_dir=Path("/nonexistent/kernelkit-ssh") / host.name / name,
        argv=tuple(str(a) for a in argv) if isinstance(argv, list) else (),
        display_name=str(d.get("display_name") or name),
        language=str(d.get("language") or ""),
        interrupt_mode="message" if d.get("interrupt_mode") == "message" else "signal",
        metadata={
            **(metadata or {}),
            "kernel_provisioner": {
                "provisioner_name": "ssh-provisioner",
                "config": {"host": host.name, "remote_kernel": name},
            },
        },
    )
    problems = tuple(f"on host {host.name!r}: {p}" for p in d.get("problems") or ())
    return KernelType(
        name=f"{host.name}/{name}",
        display_name=f"{spec.display_name} on {host.name}",
        language=spec.language,
        origin=ORIGIN_SSH_KERNELSPEC,
        metadata=spec.metadata,
        problems=problems,
        spec=spec,
    )
