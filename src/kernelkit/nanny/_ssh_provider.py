"""The ``ssh`` kernel provider: the kernelspecs of each registered host (``kernelkit
hosts add``), read by kernelkit on that host, listed as ``ssh/<host>/<kernelspec>``.

Unlike local discovery this runs a process (``ssh``) per host, all at once and each
within ``timeout`` seconds; with no host registered it runs (and imports) nothing. A host
that cannot be asked is listed as ``ssh/<host>`` with the reason (``kernelkit list
--broken``). Each kernel type's spec names the ``ssh-provisioner`` with the host and the
kernelspec.
"""

from __future__ import annotations

from kernelkit.discovery import KernelProvider, KernelType
from kernelkit.nanny._hosts import Host, HostRegistry

__all__ = ["SSHProvider"]


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
        # Imported here: threads and subprocesses only when there are hosts to ask.
        from kernelkit.nanny._ssh_listing import ask_hosts

        return ask_hosts(hosts, timeout=self._timeout)
