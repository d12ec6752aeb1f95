"""What the nanny and its peers say to each other: the launch configuration it reads from
its stdin, the line it answers on its stdout, and the control messages (Jupyter messages
signed with the kernel's key, over a ZeroMQ ROUTER socket).

Control requests are ``nanny_request`` messages whose content names an ``action``
(:data:`ACTIONS`); each is answered by one ``nanny_reply`` with ``status`` "ok" or
"error" (with ``message``). Subscribers (``subscribe``) also get events, unasked:
``kernel_died`` (``exit_status``, ``output_tail``, ``expected``, ``restarting``: a
restart follows) the moment the kernel exits, and ``kernel_restarted`` (``connection``,
without the key) after a restart.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kernelkit._errors import ProvisioningError
from kernelkit.specs import KernelSpec

__all__ = [
    "ACTIONS",
    "EVENT_DIED",
    "EVENT_RESTARTED",
    "REPLY",
    "REQUEST",
    "NannyConfig",
    "spec_from_dict",
    "spec_to_dict",
]

REQUEST = "nanny_request"
REPLY = "nanny_reply"
EVENT_DIED = "kernel_died"
EVENT_RESTARTED = "kernel_restarted"

#: What a control request may ask.
ACTIONS = frozenset(
    {
        "status",  # state, pid, exit status, detached, owner
        "interrupt",  # SIGINT to the kernel's process group
        "signal",  # {signum}
        "terminate",
        "kill",
        "shutdown_requested",  # pin the kernel's descendants before it exits by itself
        "restart",  # {grace}: stop and start again on the same ports where free
        "stop",  # {grace}: stop the kernel and everything it started; the nanny exits
        "output",  # {lines}: the last lines the kernel wrote
        "subscribe",  # events from now on
        "detach",  # the kernel outlives its owner
        "attach",  # {owner_pid?, detached?}: a new owner (re-attach)
    }
)


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
        )
