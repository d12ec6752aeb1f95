"""The ``ssh`` kernel provider: the kernelspecs of each registered host (``kernelkit
hosts add``), read by kernelkit on that host, listed as ``ssh/<host>/<kernelspec>``.

Unlike local discovery this runs a process (``ssh``) per host, all at once and each
within ``timeout`` seconds; with no host registered it runs nothing. A host that cannot
be asked is listed as ``ssh/<host>`` with the reason (``kernelkit list --broken``).
Each kernel type's spec names the ``ssh-provisioner`` with the host and the kernelspec.
"""

from __future__ import annotations

import json
import shlex
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from kernelkit.discovery import KernelProvider, KernelType
from kernelkit.nanny._hosts import Host, HostRegistry
from kernelkit.specs import KernelSpec

__all__ = ["ORIGIN_HOST", "ORIGIN_SSH_KERNELSPEC", "SSHProvider"]

ORIGIN_SSH_KERNELSPEC = "ssh-kernelspec"
#: Not a kernel: a host that cannot be asked; always has problems.
ORIGIN_HOST = "host"

# Printed by the host's Python: its kernelspecs as kernelkit reads them.
_LIST = (
    "import json;from kernelkit.specs import scan_kernel_specs as s;"
    "print(json.dumps([dict(k.to_dict(),name=k.name,problems=list(k.problems))"
    " for k in s()]))"
)


class SSHProvider(KernelProvider):
    """Kernel types of every host in ``registry`` (default: the user's), or of
    ``hosts`` when given."""

    def __init__(
        self,
        registry: HostRegistry | None = None,
        *,
        hosts: list[Host] | None = None,
        timeout: float = 5.0,
    ) -> None:
        self._registry = registry
        self._hosts = hosts
        self._timeout = timeout

    def find_kernels(self) -> list[KernelType]:
        hosts = (
            self._hosts
            if self._hosts is not None
            else list((self._registry or HostRegistry()).load().values())
        )
        if not hosts:
            return []
        with ThreadPoolExecutor(max_workers=min(8, len(hosts))) as pool:
            found = list(pool.map(self._ask, hosts))
        return [t for types in found for t in types]

    def _ask(self, host: Host) -> list[KernelType]:
        cmd = [
            "ssh",
            *host.ssh_args(),
            "-o",
            f"ConnectTimeout={max(1, int(self._timeout))}",
            host.destination,
            "--",
            f"{shlex.quote(host.python)} -c {shlex.quote(_LIST)}",
        ]
        try:
            done = subprocess.run(
                cmd, capture_output=True, text=True, timeout=self._timeout, check=False
            )
        except subprocess.TimeoutExpired:
            return [_broken(host, f"no answer within {self._timeout:g} s")]
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
