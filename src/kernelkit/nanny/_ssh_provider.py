"""The ``ssh`` kernel provider: the kernels of each registered host (``kernelkit hosts
add``), its kernelspecs (``ssh/<host>/<kernelspec>``) and its environments
(``ssh/<host>/env/<env-id>/<name>``), read by kernelkit on that host.

Listing reads each host's cached listing and runs nothing (DESIGN.md: discovery never
runs a subprocess); :meth:`SSHProvider.refresh` (``kernelkit hosts refresh``, and
``kernelkit hosts add``) asks the hosts over ssh and keeps their answers
(:mod:`kernelkit.nanny._ssh_listing`). A host never listed, or that could not be asked
when last tried, is listed as ``ssh/<host>`` with the reason (``kernelkit list
--broken``). Each kernel type's spec names the ``ssh-provisioner`` with the host and the
kernel on it.
"""

from __future__ import annotations

from kernelkit.discovery import KernelProvider, KernelType
from kernelkit.nanny._hosts import Host, HostRegistry

__all__ = ["SSHProvider"]


class SSHProvider(KernelProvider):
    """Kernel types of every host in ``registry`` (default: the user's), or of
    ``hosts`` when given. ``timeout``: seconds each host gets to answer a refresh."""

    def __init__(
        self,
        registry: HostRegistry | None = None,
        *,
        hosts: list[Host] | None = None,
        timeout: float = 10.0,
    ) -> None:
        self._registry = registry
        self._hosts = hosts
        self._timeout = timeout

    def _all_hosts(self) -> list[Host]:
        if self._hosts is not None:
            return list(self._hosts)
        return list((self._registry or HostRegistry()).load().values())

    def find_kernels(self) -> list[KernelType]:
        hosts = self._all_hosts()
        if not hosts:
            return []
        # Imported here: the listing machinery only when there are hosts.
        from kernelkit.nanny._ssh_listing import cached_kernels

        return cached_kernels(hosts)

    def refresh(self, names: list[str] | None = None) -> list[KernelType]:
        """Ask the hosts (those named, else all) for their kernels over ssh, all at once,
        and keep the answers for listing; returns what they said (a host that could not
        be asked is one broken entry, with the reason).

        Raises:
            HostConfigError: a name is not a registered host.
        """
        from kernelkit.nanny._ssh_listing import refresh_hosts

        hosts = self._all_hosts()
        if names is not None:
            by_name = {h.name: h for h in hosts}
            registry = self._registry or HostRegistry()
            hosts = [by_name[n] if n in by_name else registry.get(n) for n in names]
        return refresh_hosts(hosts, timeout=self._timeout)
