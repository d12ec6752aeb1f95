"""Registered hosts' kernels: asked over ssh (:func:`refresh_hosts`) and kept, one file per
host, in ``<hosts dir>/listings/<host>.json`` (:class:`ListingCache`), which listing
reads (:func:`cached_kernels`): ``kernelkit list`` never waits on ssh (DESIGN.md,
"discovery never runs a subprocess").

The cache is written by ``kernelkit hosts add`` and ``kernelkit hosts refresh``, and again
when a launch on the host fails (the kernel may be gone since: the listing was stale). A
host never listed, or whose last listing failed, is one broken entry that says so and
how to list it. A cached listing whose host changed since (address, Python, ssh_config)
is not used.

A host's kernels are its kernelspecs (``ssh/<host>/<kernelspec>``, as before) and its
environments (``ssh/<host>/env/<env-id>/<name>``), read by kernelkit on the host
(:mod:`kernelkit.nanny._host_kernels`) and launched there, activated, by the nanny. Each
comes with its launch recipe (:func:`cached_recipe`), from which the owner prepares the
kernel's start so that the nanny there starts it first thing.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from kernelkit._errors import ProvisioningError
from kernelkit.discovery import KernelType
from kernelkit.nanny._hosts import Host, hosts_dir
from kernelkit.nanny._wire import spec_from_dict
from kernelkit.specs import KernelSpec

__all__ = [
    "ORIGIN_HOST",
    "ORIGIN_SSH_ENVIRONMENT",
    "ORIGIN_SSH_KERNELSPEC",
    "ListingCache",
    "cached_kernels",
    "cached_recipe",
    "refresh_hosts",
]

ORIGIN_SSH_KERNELSPEC = "ssh-kernelspec"
ORIGIN_SSH_ENVIRONMENT = "ssh-environment"
#: Not a kernel: a host that cannot be asked, or was not yet; always has problems.
ORIGIN_HOST = "host"

_VERSION = 1


class ListingCache:
    """The hosts' last listings, one JSON file per host (mode 0600, written atomically)."""

    def __init__(self, directory: Path | None = None) -> None:
        self.directory = directory if directory is not None else hosts_dir() / "listings"

    def path(self, host: Host) -> Path:
        return self.directory / f"{host.name}.json"

    def read(self, host: Host) -> dict[str, Any] | None:
        """The last listing of ``host`` (None: never listed, unreadable, or of a host
        registered differently since)."""
        try:
            doc = json.loads(self.path(host).read_bytes())
        except (OSError, ValueError):
            return None
        if not isinstance(doc, dict) or doc.get("version") != _VERSION:
            return None
        return doc if doc.get("host") == host.to_dict() else None

    def write(self, host: Host, doc: dict[str, Any]) -> None:
        """Keep ``doc`` (``kernels`` and ``problems``, or ``error``) as ``host``'s listing.

        Raises:
            OSError: the directory or file cannot be written.
        """
        full = {"version": _VERSION, "host": host.to_dict(), "listed_at": time.time(), **doc}
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = self.directory / f".{host.name}.{os.getpid()}.tmp"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as f:
                json.dump(full, f)
            os.replace(tmp, self.path(host))
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()

    def remove(self, host_name: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            (self.directory / f"{host_name}.json").unlink()


def cached_kernels(hosts: list[Host], cache: ListingCache | None = None) -> list[KernelType]:
    """Every host's kernel types from its cached listing (no process, no network)."""
    cache = cache or ListingCache()
    types: list[KernelType] = []
    for host in hosts:
        doc = cache.read(host)
        if doc is None:
            types.append(
                _broken(host, f"not listed yet: run `kernelkit hosts refresh {host.name}`")
            )
        elif "error" in doc:
            types.append(
                _broken(
                    host,
                    f"{doc['error']} (when last asked; `kernelkit hosts refresh {host.name}` "
                    "asks again)",
                )
            )
        else:
            types.extend(_types(host, doc))
    return types


def cached_recipe(
    host: Host, remote_kernel: str, cache: ListingCache | None = None
) -> tuple[dict[str, Any], KernelSpec] | None:
    """The launch recipe of kernel ``remote_kernel`` on ``host`` (a kernelspec's name, or
    a kernel type id there: ``env/<env-id>/<name>``) and its kernelspec, from the host's
    cached listing (no process, no network); None if the listing has none."""
    doc = (cache or ListingCache()).read(host)
    if doc is None or not isinstance(doc.get("kernels"), list):
        return None
    wanted = remote_kernel if "/" in remote_kernel else f"spec/{remote_kernel}"
    for entry in doc["kernels"]:
        if not isinstance(entry, dict) or entry.get("id") != wanted:
            continue
        recipe, spec = entry.get("launch"), entry.get("spec")
        if not isinstance(recipe, dict) or not isinstance(spec, dict):
            return None
        try:
            return recipe, spec_from_dict({**spec, "resource_dir": _NO_DIR})
        except ProvisioningError:
            return None
    return None


# A host's kernelspec never has a directory here.
_NO_DIR = "/nonexistent/kernelkit-ssh"


def refresh_hosts(
    hosts: list[Host], *, timeout: float, cache: ListingCache | None = None
) -> list[KernelType]:
    """Ask every host for its kernels over ssh (all at once, each within ``timeout``
    seconds), keep each answer (or failure) in the cache, and return the kernel types
    (one broken entry per host that could not be asked)."""
    if not hosts:
        return []
    cache = cache or ListingCache()
    with ThreadPoolExecutor(max_workers=min(8, len(hosts))) as pool:
        docs = list(pool.map(lambda h: _ask(h, timeout), hosts))
    types: list[KernelType] = []
    for host, doc in zip(hosts, docs, strict=True):
        try:
            cache.write(host, doc)
        except OSError as exc:
            types.append(_broken(host, f"cannot keep its listing: {exc.strerror or exc}"))
        if "error" in doc:
            types.append(_broken(host, str(doc["error"])))
        else:
            types.extend(_types(host, doc))
    return types


def _ask(host: Host, timeout: float) -> dict[str, Any]:
    """``{"kernels", "problems"}`` from the host, or ``{"error": why}``."""
    remote = f"{shlex.quote(host.python)} -m kernelkit.nanny._host_kernels"
    cmd = [
        "ssh",
        *host.ssh_args(),
        "-o",
        f"ConnectTimeout={max(1, int(timeout))}",
        host.destination,
        "--",
        remote,
    ]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return {"error": f"no answer within {timeout:g} s"}
    except OSError as exc:
        return {"error": f"cannot run ssh: {exc.strerror or exc}"}
    if done.returncode != 0:
        said = done.stderr.strip().splitlines()
        why = said[-1] if said else f"ssh exited {done.returncode}"
        if "No module named" in why:
            why += f" (is kernelkit installed for {host.python} there?)"
        return {"error": why}
    try:
        doc = json.loads(done.stdout)
        kernels, problems = doc["kernels"], doc.get("problems", [])
    except (ValueError, KeyError, TypeError):
        return {"error": "kernelkit on the host answered something unreadable"}
    if not isinstance(kernels, list):
        return {"error": "kernelkit on the host answered something unreadable"}
    return {"kernels": kernels, "problems": problems if isinstance(problems, list) else []}


def _broken(host: Host, why: str) -> KernelType:
    return KernelType(
        name=host.name,
        display_name=f"host {host.name}",
        language="",
        origin=ORIGIN_HOST,
        problems=(f"host {host.name!r} ({host.url}): {why}",),
    )


def _types(host: Host, doc: dict[str, Any]) -> list[KernelType]:
    types = [_kernel_type(host, d) for d in doc.get("kernels", []) if isinstance(d, dict)]
    return [t for t in types if t is not None]


def _kernel_type(host: Host, d: dict[str, Any]) -> KernelType | None:
    remote_id = str(d.get("id", ""))
    provider, _, rest = remote_id.partition("/")
    s = d.get("spec") if isinstance(d.get("spec"), dict) else None
    if not rest or s is None:
        return None  # nothing to launch (a broken environment without a kernel)
    if provider == "spec":
        # A kernelspec: launched by name (as before), ssh/<host>/<name>.
        name, remote_kernel, origin = rest, rest, ORIGIN_SSH_KERNELSPEC
    else:
        # An environment: ssh/<host>/env/<env-id>/<name>, prepared (activated) there.
        name, remote_kernel, origin = remote_id, remote_id, ORIGIN_SSH_ENVIRONMENT
    argv = s.get("argv")
    metadata = s.get("metadata") if isinstance(s.get("metadata"), dict) else {}
    spec_name = str(s.get("name") or rest)
    spec = KernelSpec(
        name=spec_name,
        # Never a directory here: the spec lives on the host.
        resource_dir=Path("/nonexistent/kernelkit-ssh") / host.name / spec_name,
        argv=tuple(str(a) for a in argv) if isinstance(argv, list) else (),
        display_name=str(s.get("display_name") or spec_name),
        language=str(s.get("language") or ""),
        interrupt_mode="message" if s.get("interrupt_mode") == "message" else "signal",
        metadata={
            **(metadata or {}),
            "kernel_provisioner": {
                "provisioner_name": "ssh-provisioner",
                "config": {"host": host.name, "remote_kernel": remote_kernel},
            },
        },
    )
    problems = tuple(f"on host {host.name!r}: {p}" for p in d.get("problems") or ())
    display = str(d.get("display_name") or spec.display_name)
    return KernelType(
        name=f"{host.name}/{name}",
        display_name=f"{display} on {host.name}",
        language=spec.language,
        origin=origin,
        metadata=spec.metadata,
        problems=problems,
        spec=spec,
    )
