"""Registered SSH hosts: names, ``ssh://`` addresses and how to run kernelkit there.

Stored in ``<jupyter config dir>/kernelkit/hosts.json`` (``KERNELKIT_HOSTS_DIR``
overrides the directory)::

    {"hosts": {"<name>": {"url": "ssh://user@host:22", "python": "python3",
                          "ssh_config": null}}}

Nothing secret is stored: ssh uses the user's own configuration, keys and agent;
passwords are never asked for (``BatchMode=yes``).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from kernelkit._errors import ProvisioningError
from kernelkit._jupyterpaths import jupyter_config_dir

__all__ = ["HOSTS_DIR_ENV", "Host", "HostRegistry", "hosts_dir", "parse_ssh_url"]

HOSTS_DIR_ENV = "KERNELKIT_HOSTS_DIR"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


class HostConfigError(ProvisioningError):
    """A host name, address or the hosts file is wrong (the message says how)."""


def hosts_dir() -> Path:
    """``$KERNELKIT_HOSTS_DIR``, else ``jupyter_config_dir()/kernelkit``."""
    override = os.environ.get(HOSTS_DIR_ENV)
    if override:
        return Path(override)
    return Path(jupyter_config_dir()) / "kernelkit"


@dataclass(frozen=True, slots=True)
class Host:
    """One machine kernels can run on, reached with ``ssh``."""

    name: str
    hostname: str
    user: str | None = None
    port: int | None = None
    python: str = "python3"
    ssh_config: str | None = None  # an ssh_config file (ssh -F), else the user's own

    @property
    def url(self) -> str:
        user = f"{self.user}@" if self.user else ""
        port = f":{self.port}" if self.port else ""
        return f"ssh://{user}{self.hostname}{port}"

    @property
    def destination(self) -> str:
        return f"{self.user}@{self.hostname}" if self.user else self.hostname

    def ssh_args(self) -> list[str]:
        """ssh's options for this host (never a password prompt)."""
        args = ["-o", "BatchMode=yes", "-o", "ServerAliveInterval=5", "-o", "ServerAliveCountMax=3"]
        if self.ssh_config:
            args[:0] = ["-F", self.ssh_config]
        if self.port:
            args += ["-p", str(self.port)]
        return args

    def to_dict(self) -> dict[str, Any]:
        return {"url": self.url, "python": self.python, "ssh_config": self.ssh_config}


def check_host_name(name: str) -> str:
    """``name`` if it can name a host (it is part of kernel ids: ``ssh/<host>/<kernel>``).

    Raises:
        HostConfigError: it cannot.
    """
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise HostConfigError(
            f"host name {name!r} is not usable: use 1-64 letters, digits, '_', '.' or '-', "
            "starting with a letter or digit (it becomes part of ids: ssh/<name>/...)"
        )
    return name


def parse_ssh_url(
    name: str, url: str, *, python: str = "python3", ssh_config: str | None = None
) -> Host:
    """A :class:`Host` from ``ssh://[user@]host[:port]``.

    Raises:
        HostConfigError: not such an address, or it carries a password or a path.
    """
    parts = urlsplit(url.strip()) if isinstance(url, str) else None
    if parts is None or parts.scheme != "ssh" or not parts.hostname:
        raise HostConfigError(
            f"host address {url!r} must look like ssh://user@host or ssh://host:2222"
        )
    if parts.password is not None:
        raise HostConfigError(
            f"host {name!r}: the address carries a password; kernelkit never stores one "
            "(use a key: ssh-copy-id, or your ssh agent)"
        )
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise HostConfigError(f"host address {url!r} must not have a path, query or fragment")
    try:
        port = parts.port
    except ValueError:
        raise HostConfigError(f"host address {url!r}: the port is not a number 1-65535") from None
    return Host(
        name=check_host_name(name),
        hostname=parts.hostname,
        user=parts.username or None,
        port=port,
        python=python,
        ssh_config=ssh_config,
    )


class HostRegistry:
    """The hosts file: read, add, remove (written atomically, mode 0600)."""

    def __init__(self, directory: Path | None = None) -> None:
        self.directory = directory if directory is not None else hosts_dir()
        self.path = self.directory / "hosts.json"

    def load(self) -> dict[str, Host]:
        """Every registered host by name.

        Raises:
            HostConfigError: the file is unreadable or malformed (naming it).
        """
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return {}
        except OSError as exc:
            raise HostConfigError(f"{self.path}: cannot read: {exc.strerror or exc}") from exc
        try:
            data = json.loads(raw)
            entries = data["hosts"]
            hosts = {}
            for name, entry in entries.items():
                hosts[name] = parse_ssh_url(
                    name,
                    entry["url"],
                    python=entry.get("python") or "python3",
                    ssh_config=entry.get("ssh_config"),
                )
        except HostConfigError as exc:
            raise HostConfigError(f"{self.path}: {exc}") from None
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise HostConfigError(
                f"{self.path}: not a kernelkit hosts file ({exc!r}); fix or remove it"
            ) from None
        return hosts

    def get(self, name: str) -> Host:
        """One host.

        Raises:
            HostConfigError: no host of that name (the known ones are listed).
        """
        hosts = self.load()
        if name not in hosts:
            known = ", ".join(sorted(hosts)) or "none"
            raise HostConfigError(
                f"no host named {name!r} (registered: {known}); add it with "
                "`kernelkit hosts add NAME ssh://user@host`"
            )
        return hosts[name]

    def add(self, host: Host, *, replace: bool = False) -> None:
        """Register ``host``.

        Raises:
            HostConfigError: the name is taken (without ``replace``), or the file cannot
                be written.
        """
        hosts = self.load()
        if host.name in hosts and not replace:
            raise HostConfigError(
                f"a host named {host.name!r} exists already ({hosts[host.name].url}); "
                "remove it first or pass --replace"
            )
        hosts[host.name] = host
        self._save(hosts)

    def remove(self, name: str) -> Host:
        """Unregister a host; returns it.

        Raises:
            HostConfigError: no host of that name.
        """
        host = self.get(name)
        hosts = self.load()
        del hosts[name]
        self._save(hosts)
        return host

    def _save(self, hosts: dict[str, Host]) -> None:
        data = {"hosts": {name: h.to_dict() for name, h in sorted(hosts.items())}}
        tmp = self.path.with_name(f".hosts.{os.getpid()}.tmp")
        try:
            self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as f:
                json.dump(data, f, indent=1)
            os.replace(tmp, self.path)
        except OSError as exc:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
            raise HostConfigError(f"{self.path}: cannot write: {exc.strerror or exc}") from exc
