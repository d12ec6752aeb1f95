"""Whether a kernel's messages are CurveZMQ-encrypted: the ``encryption`` option.

A kernel that can be encrypted says so in its kernelspec (ipykernel 7.4 writes
``metadata.supported_encryption: ["curve"]``); it is then given its keypair in the
connection file (``curve_publickey``, ``curve_secretkey``) and binds every socket as a
CurveZMQ server. Clients need the public key only.
"""

from __future__ import annotations

import ipaddress

import zmq

from kernelkit._errors import ProvisioningError
from kernelkit.specs import KernelSpec

__all__ = ["ENCRYPTION_CHOICES", "supports_curve", "wants_curve"]

ENCRYPTION_CHOICES = ("auto", "curve", "none")


def supports_curve(spec: KernelSpec) -> bool:
    """True when the kernelspec declares ``curve`` in ``metadata.supported_encryption``."""
    declared = spec.metadata.get("supported_encryption")
    if isinstance(declared, str):
        declared = [declared]
    if not isinstance(declared, list | tuple):
        return False
    return any(isinstance(d, str) and d.strip().lower() == "curve" for d in declared)


def _is_loopback(ip: str) -> bool:
    if ip == "localhost":
        return True
    try:
        return ipaddress.ip_address(ip).is_loopback
    except ValueError:
        return False


def wants_curve(spec: KernelSpec, encryption: str, *, ip: str, transport: str) -> bool:
    """Whether to give the kernel a CurveZMQ keypair.

    ``auto``: when the kernel supports it and its ports are on the network (tcp on an
    address other than loopback); ``curve``: always (the kernel must support it);
    ``none``: never.

    Raises:
        ProvisioningError: an unknown choice; ``curve`` for a kernel that does not declare
            it, or with a libzmq built without CURVE.
    """
    if encryption not in ENCRYPTION_CHOICES:
        raise ProvisioningError(
            f"kernel {spec.name!r}: encryption must be one of {', '.join(ENCRYPTION_CHOICES)}, "
            f"not {encryption!r}"
        )
    if encryption == "none":
        return False
    supported = supports_curve(spec)
    if encryption == "auto":
        return supported and transport == "tcp" and not _is_loopback(ip) and zmq.has("curve")
    if not supported:
        raise ProvisioningError(
            f"kernel {spec.name!r} does not declare CurveZMQ support (its kernel.json has no "
            '"supported_encryption": ["curve"] in metadata): it would ignore the keys and '
            "talk in plain text; use encryption='none' or a kernel that supports it "
            "(ipykernel 7.4 or later)"
        )
    if not zmq.has("curve"):
        raise ProvisioningError(
            f"kernel {spec.name!r}: encryption='curve' needs a libzmq with CURVE support; "
            "install a pyzmq wheel (it bundles libsodium)"
        )
    return True
