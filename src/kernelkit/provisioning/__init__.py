"""Launching kernels and controlling their processes (DESIGN.md, layer 3).

The provisioner API as jupyter_client documents it (:class:`KernelProvisionerBase`,
:class:`LocalProvisioner`, :class:`KernelProvisionerFactory`, :func:`launch_kernel`), with
kernel-chosen ports, event-driven exit, captured output and whole-group shutdown; the
one launch sequence every manager runs (:func:`launch_provisioner`) and the one factory
of this process (:func:`default_factory`).

Names load on first use: importing one small module of this package (the nanny starts
its kernel with a few of them before it loads the rest) must not load them all, nor the
factory's entry points (``importlib.metadata``).
"""

from __future__ import annotations

from kernelkit._lazy import lazy_getattr

# Not `from typing import ...`: typing alone costs more than this module (the nanny
# imports it before it starts its kernel).
TYPE_CHECKING = False

_WHERE = {
    "DEFAULT_PROVISIONER": "kernelkit.provisioning._factory",
    "ENTRY_POINT_GROUP": "kernelkit.provisioning._factory",
    "EXIT_STATUS_UNKNOWN": "kernelkit.provisioning._exitwatch",
    "KernelProvisionerBase": "kernelkit.provisioning._base",
    "KernelProvisionerFactory": "kernelkit.provisioning._factory",
    "LaunchParams": "kernelkit.provisioning._base",
    "LocalProvisioner": "kernelkit.provisioning._local",
    "OutputCapture": "kernelkit.provisioning._capture",
    "PORT_MODES": "kernelkit.provisioning._ports",
    "PortMode": "kernelkit.provisioning._ports",
    "SandboxChoice": "kernelkit.provisioning._sandbox_options",
    "SandboxOptions": "kernelkit.provisioning._sandbox_options",
    "SandboxProvisioner": "kernelkit.provisioning._sandbox",
    "base_environ": "kernelkit.provisioning._base",
    "check_sandbox_choice": "kernelkit.provisioning._sandbox_options",
    "choose_port_mode": "kernelkit.provisioning._ports",
    "default_factory": "kernelkit.provisioning._factory",
    "launch_kernel": "kernelkit.provisioning._launcher",
    "launch_provisioner": "kernelkit.provisioning._sequence",
    "sandboxed_launch": "kernelkit.provisioning._sandbox_options",
}

__all__ = [
    "DEFAULT_PROVISIONER",
    "ENTRY_POINT_GROUP",
    "EXIT_STATUS_UNKNOWN",
    "PORT_MODES",
    "KernelProvisionerBase",
    "KernelProvisionerFactory",
    "LaunchParams",
    "LocalProvisioner",
    "OutputCapture",
    "PortMode",
    "SandboxChoice",
    "SandboxOptions",
    "SandboxProvisioner",
    "base_environ",
    "check_sandbox_choice",
    "choose_port_mode",
    "default_factory",
    "launch_kernel",
    "launch_provisioner",
    "sandboxed_launch",
]

if TYPE_CHECKING:
    from kernelkit.provisioning._base import KernelProvisionerBase as KernelProvisionerBase
    from kernelkit.provisioning._base import LaunchParams as LaunchParams
    from kernelkit.provisioning._base import base_environ as base_environ
    from kernelkit.provisioning._capture import OutputCapture as OutputCapture
    from kernelkit.provisioning._exitwatch import EXIT_STATUS_UNKNOWN as EXIT_STATUS_UNKNOWN
    from kernelkit.provisioning._factory import DEFAULT_PROVISIONER as DEFAULT_PROVISIONER
    from kernelkit.provisioning._factory import ENTRY_POINT_GROUP as ENTRY_POINT_GROUP
    from kernelkit.provisioning._factory import (
        KernelProvisionerFactory as KernelProvisionerFactory,
    )
    from kernelkit.provisioning._factory import default_factory as default_factory
    from kernelkit.provisioning._launcher import launch_kernel as launch_kernel
    from kernelkit.provisioning._local import LocalProvisioner as LocalProvisioner
    from kernelkit.provisioning._ports import PORT_MODES as PORT_MODES
    from kernelkit.provisioning._ports import PortMode as PortMode
    from kernelkit.provisioning._ports import choose_port_mode as choose_port_mode
    from kernelkit.provisioning._sandbox import SandboxProvisioner as SandboxProvisioner
    from kernelkit.provisioning._sandbox_options import SandboxChoice as SandboxChoice
    from kernelkit.provisioning._sandbox_options import SandboxOptions as SandboxOptions
    from kernelkit.provisioning._sandbox_options import (
        check_sandbox_choice as check_sandbox_choice,
    )
    from kernelkit.provisioning._sandbox_options import sandboxed_launch as sandboxed_launch
    from kernelkit.provisioning._sequence import launch_provisioner as launch_provisioner


__getattr__ = lazy_getattr(__name__, _WHERE, globals())


def __dir__() -> list[str]:
    return sorted(__all__)
