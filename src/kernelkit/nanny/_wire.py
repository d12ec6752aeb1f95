"""What the nanny and its peers say to each other: the launch configuration it reads from
its stdin, the line it answers on its stdout, and how its control socket is protected.

The control messages themselves (Jupyter messages signed with the kernel's key, over a
ZeroMQ ROUTER socket) are :mod:`kernelkit.protocol._nanny`'s, re-exported here under the
nanny's own short names: a client below the nanny's layer speaks them too.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kernelkit._errors import ProvisioningError
from kernelkit.protocol import (
    NANNY_ACTIONS,
    NANNY_DIED,
    NANNY_REPLY,
    NANNY_REQUEST,
    NANNY_RESTARTED,
)
from kernelkit.specs import KernelSpec

__all__ = [
    "ACTIONS",
    "CONTROL_ENCRYPTION",
    "EVENT_DIED",
    "EVENT_RESTARTED",
    "REPLY",
    "REQUEST",
    "NannyConfig",
    "control_wants_curve",
    "spec_from_dict",
    "spec_to_dict",
]

REQUEST = NANNY_REQUEST
REPLY = NANNY_REPLY
EVENT_DIED = NANNY_DIED
EVENT_RESTARTED = NANNY_RESTARTED
#: What a control request may ask.
ACTIONS = NANNY_ACTIONS

#: How the nanny's control socket is protected: ``auto`` encrypts (CurveZMQ) whenever
#: its address is not loopback; ``curve`` always; ``none`` never (plain text, signed).
CONTROL_ENCRYPTION = ("auto", "curve", "none")


def control_wants_curve(encryption: str, ip: str) -> bool:
    """Whether the nanny's control socket on ``ip`` is a CurveZMQ server.

    Raises:
        ProvisioningError: an unknown choice.
    """
    if encryption not in CONTROL_ENCRYPTION:
        raise ProvisioningError(
            f"control_encryption must be one of {', '.join(CONTROL_ENCRYPTION)}, not {encryption!r}"
        )
    if encryption != "auto":
        return encryption == "curve"
    if ip == "localhost":
        return False
    try:
        return not ipaddress.ip_address(ip).is_loopback
    except ValueError:
        return True  # a name: assume the network


def spec_to_dict(spec: KernelSpec) -> dict[str, Any]:
    """A kernelspec as the nanny reads it back (kernel.json fields plus name and dir)."""
    d = spec.to_dict()
    d["name"] = spec.name
    d["resource_dir"] = str(spec.resource_dir)
    return d


def _str_map(value: object, what: str) -> dict[str, str]:
    if not isinstance(value, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise ProvisioningError(f"nanny configuration: {what} must map strings to strings")
    return dict(value)


def spec_from_dict(d: Mapping[str, Any]) -> KernelSpec:
    """The inverse of :func:`spec_to_dict`.

    Raises:
        ProvisioningError: a field is missing or has the wrong type.
    """
    try:
        argv = d["argv"]
        if not isinstance(argv, list) or not argv or not all(isinstance(a, str) for a in argv):
            raise ProvisioningError("nanny configuration: spec argv must be a list of strings")
        return KernelSpec(
            name=str(d["name"]),
            resource_dir=Path(str(d["resource_dir"])),
            argv=tuple(argv),
            display_name=str(d.get("display_name", d["name"])),
            language=str(d.get("language", "")),
            interrupt_mode="message" if d.get("interrupt_mode") == "message" else "signal",
            env=_str_map(d.get("env", {}), "spec env"),
            metadata=dict(d.get("metadata", {})),
            kernel_protocol_version=d.get("kernel_protocol_version"),
        )
    except KeyError as exc:
        raise ProvisioningError(f"nanny configuration: spec lacks {exc.args[0]!r}") from None


@dataclass(frozen=True, slots=True)
class NannyConfig:
    """Everything the nanny needs to launch and supervise one kernel.

    ``spec`` is the kernelspec itself, or None with ``spec_name``: the spec of that
    name on the nanny's machine (another host's kernels are its own). ``env`` is the
    kernel's environment, on top of the nanny's own with ``inherit_env``.
    ``options`` go to the :class:`~kernelkit.provisioning.LocalProvisioner` it runs
    (port mode, ip, runtime directory, timeouts, log file). ``owner_pid``: the process
    whose death stops the kernel (with the end of the nanny's stdin), after
    ``owner_grace`` seconds, unless ``detached`` or re-attached meanwhile.
    ``control_ip`` is where the control socket listens, on ``control_port`` if it is
    free there (0, or taken: a port of the system's choosing); ``control_encryption``
    (see :data:`CONTROL_ENCRYPTION`) whether it is CurveZMQ-encrypted.
    """

    kernel_id: str
    spec: KernelSpec | None
    env: dict[str, str]
    spec_name: str | None = None
    inherit_env: bool = False
    cwd: str | None = None
    extra_arguments: tuple[str, ...] = ()
    options: dict[str, Any] = field(default_factory=dict)
    owner_pid: int | None = None
    detached: bool = False
    owner_grace: float = 1.0
    control_ip: str = "127.0.0.1"
    control_port: int = 0
    control_encryption: str = "auto"

    def to_dict(self) -> dict[str, Any]:
        return {
            "kernel_id": self.kernel_id,
            "spec": spec_to_dict(self.spec) if self.spec is not None else None,
            "spec_name": self.spec_name,
            "inherit_env": self.inherit_env,
            "env": self.env,
            "cwd": self.cwd,
            "extra_arguments": list(self.extra_arguments),
            "options": self.options,
            "owner_pid": self.owner_pid,
            "detached": self.detached,
            "owner_grace": self.owner_grace,
            "control_ip": self.control_ip,
            "control_port": self.control_port,
            "control_encryption": self.control_encryption,
        }

    @classmethod
    def from_dict(cls, d: object) -> NannyConfig:
        """Read and check a configuration object.

        Raises:
            ProvisioningError: naming the field that is wrong.
        """
        if not isinstance(d, Mapping):
            raise ProvisioningError("nanny configuration: expected a JSON object")
        kernel_id = d.get("kernel_id")
        if not isinstance(kernel_id, str) or not kernel_id:
            raise ProvisioningError("nanny configuration: 'kernel_id' must be a non-empty string")
        spec, spec_name = d.get("spec"), d.get("spec_name")
        if spec is None and (not isinstance(spec_name, str) or not spec_name):
            raise ProvisioningError("nanny configuration: give 'spec' or 'spec_name'")
        if spec is not None and not isinstance(spec, Mapping):
            raise ProvisioningError("nanny configuration: 'spec' must be an object")
        owner = d.get("owner_pid")
        if owner is not None and (not isinstance(owner, int) or isinstance(owner, bool)):
            raise ProvisioningError("nanny configuration: 'owner_pid' must be an integer")
        grace = d.get("owner_grace", 1.0)
        if not isinstance(grace, (int, float)) or grace < 0:
            raise ProvisioningError("nanny configuration: 'owner_grace' must be >= 0 seconds")
        options = d.get("options", {})
        if not isinstance(options, Mapping):
            raise ProvisioningError("nanny configuration: 'options' must be an object")
        cwd = d.get("cwd")
        control_port = d.get("control_port", 0)
        if (
            not isinstance(control_port, int)
            or isinstance(control_port, bool)
            or not 0 <= control_port < 65536
        ):
            raise ProvisioningError("nanny configuration: 'control_port' must be a port or 0")
        extra = d.get("extra_arguments", [])
        if not isinstance(extra, list) or not all(isinstance(a, str) for a in extra):
            raise ProvisioningError("nanny configuration: 'extra_arguments' must be strings")
        return cls(
            kernel_id=kernel_id,
            spec=spec_from_dict(spec) if spec is not None else None,
            spec_name=spec_name if isinstance(spec_name, str) else None,
            inherit_env=bool(d.get("inherit_env", False)),
            env=_str_map(d.get("env", {}), "'env'"),
            cwd=cwd if isinstance(cwd, str) else None,
            extra_arguments=tuple(extra),
            options=dict(options),
            owner_pid=owner,
            detached=bool(d.get("detached", False)),
            owner_grace=float(grace),
            control_ip=str(d.get("control_ip", "127.0.0.1")),
            control_port=control_port,
            control_encryption=str(d.get("control_encryption", "auto")),
        )
