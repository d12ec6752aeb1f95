"""The nanny: a supervisor process beside each kernel (DESIGN.md, layer 6).

``python -m kernelkit.nanny`` launches one kernel, adopts everything it starts (child
subreaper), keeps its output, answers signed control requests and announces its death;
:class:`NannyProvisioner` (entry point ``nanny-provisioner``) runs kernels under one, and
:class:`AttachedKernel` / :class:`AsyncAttachedKernel` (and the lower-level
:class:`NannyControl`, which lives in :mod:`kernelkit.transport` because a client made from
a connection file subscribes to the nanny too) control a kernel from any process that has
its connection file, on this host or another.

Names load on first use: the nanny process itself (``python -m kernelkit.nanny``) runs
this file too, and must not pay for the client to start its kernel sooner.
"""

from __future__ import annotations

from kernelkit._lazy import lazy_getattr

# Not `from typing import ...`: typing alone costs more than this module (the nanny
# imports it before it starts its kernel).
TYPE_CHECKING = False

_WHERE = {
    "ACTIONS": "kernelkit.nanny._wire",
    "AsyncAttachedKernel": "kernelkit.nanny._attached",
    "AttachedKernel": "kernelkit.nanny._attached_blocking",
    "Host": "kernelkit.nanny._hosts",
    "HostRegistry": "kernelkit.nanny._hosts",
    "SSHProvider": "kernelkit.nanny._ssh_provider",
    "SSHProvisioner": "kernelkit.nanny._ssh",
    "NannyConfig": "kernelkit.nanny._wire",
    "NannyControl": "kernelkit.transport._nanny",
    "NannyProvisioner": "kernelkit.nanny._provisioner",
}

__all__ = [
    "ACTIONS",
    "AsyncAttachedKernel",
    "AttachedKernel",
    "Host",
    "HostRegistry",
    "NannyConfig",
    "NannyControl",
    "NannyProvisioner",
    "SSHProvider",
    "SSHProvisioner",
]

if TYPE_CHECKING:
    from kernelkit.nanny._attached import AsyncAttachedKernel as AsyncAttachedKernel
    from kernelkit.nanny._attached_blocking import AttachedKernel as AttachedKernel
    from kernelkit.nanny._hosts import Host as Host
    from kernelkit.nanny._hosts import HostRegistry as HostRegistry
    from kernelkit.nanny._provisioner import NannyProvisioner as NannyProvisioner
    from kernelkit.nanny._ssh import SSHProvisioner as SSHProvisioner
    from kernelkit.nanny._ssh_provider import SSHProvider as SSHProvider
    from kernelkit.nanny._wire import ACTIONS as ACTIONS
    from kernelkit.nanny._wire import NannyConfig as NannyConfig
    from kernelkit.transport._nanny import NannyControl as NannyControl


__getattr__ = lazy_getattr(__name__, _WHERE, globals())
