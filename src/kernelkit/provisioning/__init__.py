"""Launching kernels and controlling their processes (DESIGN.md, layer 3).

The provisioner API as jupyter_client documents it (:class:`KernelProvisionerBase`,
:class:`LocalProvisioner`, :class:`KernelProvisionerFactory`, :func:`launch_kernel`), with
kernel-chosen ports, event-driven exit, captured output and whole-group shutdown; the
one launch sequence every manager runs (:func:`launch_provisioner`) and the one factory
of this process (:func:`default_factory`).
"""

from kernelkit.provisioning._base import KernelProvisionerBase, LaunchParams, base_environ
from kernelkit.provisioning._capture import OutputCapture
from kernelkit.provisioning._exitwatch import EXIT_STATUS_UNKNOWN
from kernelkit.provisioning._factory import (
    DEFAULT_PROVISIONER,
    ENTRY_POINT_GROUP,
    KernelProvisionerFactory,
    default_factory,
)
from kernelkit.provisioning._launcher import launch_kernel
from kernelkit.provisioning._local import LocalProvisioner
from kernelkit.provisioning._ports import PORT_MODES, PortMode, choose_port_mode
from kernelkit.provisioning._sandbox import SandboxProvisioner
from kernelkit.provisioning._sandbox_options import (
    SandboxChoice,
    SandboxOptions,
    check_sandbox_choice,
    sandboxed_launch,
)
from kernelkit.provisioning._sequence import launch_provisioner

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
