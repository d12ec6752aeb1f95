"""What a sandbox allows and limits: :class:`SandboxOptions`, parsed from keywords or a
kernelspec's ``metadata.kernel_provisioner.config`` (where every value is JSON)."""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kernelkit._errors import ProvisioningError

__all__ = [
    "DEFAULT_SANDBOX_UID",
    "SANDBOX_PROVISIONER",
    "SandboxChoice",
    "SandboxOptions",
    "check_sandbox_choice",
    "format_bytes",
    "parse_bytes",
    "sandboxed_launch",
]

#: The user a sandbox runs as when kernelkit runs as root ("nobody"): root inside a
#: sandbox would still own every root-owned file of the host.
DEFAULT_SANDBOX_UID = 65534

_UNITS = {
    "": 1,
    "b": 1,
    "k": 1 << 10,
    "kb": 1000,
    "kib": 1 << 10,
    "m": 1 << 20,
    "mb": 1000**2,
    "mib": 1 << 20,
    "g": 1 << 30,
    "gb": 1000**3,
    "gib": 1 << 30,
    "t": 1 << 40,
    "tb": 1000**4,
    "tib": 1 << 40,
}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$")


def parse_bytes(value: object, *, what: str) -> int:
    """``512M``, ``1.5GiB``, ``100MB`` or a plain number of bytes, as bytes (K, M, G, T
    are binary units, as ``ulimit`` and cgroups count them; KB/MB/GB decimal).

    Raises:
        ProvisioningError: not a size, or not positive.
    """
    if isinstance(value, bool):
        raise ProvisioningError(f"sandbox {what}: expected a size such as '512M', not {value!r}")
    if isinstance(value, int):
        size = value
    elif isinstance(value, str) and (m := _SIZE.match(value)):
        unit = _UNITS.get(m.group(2).lower())
        if unit is None:
            raise ProvisioningError(
                f"sandbox {what}: unknown unit {m.group(2)!r} in {value!r} "
                "(use K, M, G or T, e.g. '512M')"
            )
        size = int(float(m.group(1)) * unit)
    else:
        raise ProvisioningError(f"sandbox {what}: expected a size such as '512M', not {value!r}")
    if size <= 0:
        raise ProvisioningError(f"sandbox {what}: must be more than 0 bytes, not {value!r}")
    return size


def format_bytes(size: int) -> str:
    """``536870912`` -> ``512 MiB`` (the unit that gives a whole number, if any)."""
    for unit, factor in (("TiB", 1 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if size >= factor and size % factor == 0:
            return f"{size // factor} {unit}"
    for unit, factor in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if size >= factor:
            return f"{size / factor:.1f} {unit}"
    return f"{size} bytes"


def _seconds(value: object, *, what: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ProvisioningError(f"sandbox {what}: expected seconds (a number), not {value!r}")
    if not math.isfinite(value) or value <= 0:
        raise ProvisioningError(f"sandbox {what}: must be a positive number of seconds")
    return float(value)


def _paths(value: object, *, what: str) -> tuple[Path, ...]:
    if value is None:
        return ()
    if isinstance(value, (str, os.PathLike)):
        value = [value]
    if not isinstance(value, Sequence):
        raise ProvisioningError(f"sandbox {what}: expected a list of paths, not {value!r}")
    paths = []
    for item in value:
        if not isinstance(item, (str, os.PathLike)):
            raise ProvisioningError(f"sandbox {what}: {item!r} is not a path")
        path = Path(item).expanduser()
        if not path.is_absolute():
            raise ProvisioningError(f"sandbox {what}: {str(path)!r} must be an absolute path")
        if not path.exists():
            raise ProvisioningError(
                f"sandbox {what}: {str(path)!r} does not exist (create it, or drop it)"
            )
        paths.append(path)
    return tuple(paths)


def _env(value: object) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise ProvisioningError(f"sandbox env: expected a mapping of strings, not {value!r}")
    return dict(value)


@dataclass(frozen=True, slots=True)
class SandboxOptions:
    """What one sandbox allows (paths, network, environment) and its limits.

    ``memory``/``file_size`` in bytes, ``cpu_time``/``wall_clock`` in seconds,
    ``processes`` a count; None means unlimited. ``wall_clock`` limits each execute
    request; ``cpu_time`` the CPU time of each process.
    """

    network: bool = False
    work_dir: Path | None = None
    ro_paths: tuple[Path, ...] = ()
    rw_paths: tuple[Path, ...] = ()
    hide_paths: tuple[Path, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    memory: int | None = None
    processes: int | None = None
    cpu_time: float | None = None
    file_size: int | None = None
    wall_clock: float | None = None
    uid: int | None = None

    @classmethod
    def parse(
        cls,
        *,
        network: object = False,
        work_dir: object = None,
        ro_paths: object = None,
        rw_paths: object = None,
        hide_paths: object = None,
        env: object = None,
        memory: object = None,
        processes: object = None,
        cpu_time: object = None,
        file_size: object = None,
        wall_clock: object = None,
        uid: object = None,
    ) -> SandboxOptions:
        """Check and convert options as a kernelspec or a caller gives them.

        Raises:
            ProvisioningError: an option has a bad value (the message names it).
        """
        if not isinstance(network, bool):
            raise ProvisioningError(f"sandbox network: expected true or false, not {network!r}")
        if processes is not None and (
            isinstance(processes, bool) or not isinstance(processes, int) or processes < 1
        ):
            raise ProvisioningError(
                f"sandbox processes: expected a count of at least 1, not {processes!r}"
            )
        if uid is not None and (isinstance(uid, bool) or not isinstance(uid, int) or uid < 0):
            raise ProvisioningError(f"sandbox uid: expected a user id (>= 0), not {uid!r}")
        wd: Path | None = None
        if work_dir is not None:
            if not isinstance(work_dir, (str, os.PathLike)):
                raise ProvisioningError(f"sandbox work_dir: {work_dir!r} is not a path")
            wd = Path(work_dir).expanduser().absolute()
            if not wd.is_dir():
                raise ProvisioningError(
                    f"sandbox work_dir: {str(wd)!r} is not a directory (create it first)"
                )
        return cls(
            network=network,
            work_dir=wd,
            ro_paths=_paths(ro_paths, what="ro_paths"),
            rw_paths=_paths(rw_paths, what="rw_paths"),
            hide_paths=_paths(hide_paths, what="hide_paths"),
            env=_env(env),
            memory=parse_bytes(memory, what="memory") if memory is not None else None,
            processes=processes,
            cpu_time=_seconds(cpu_time, what="cpu_time"),
            file_size=parse_bytes(file_size, what="file_size") if file_size is not None else None,
            wall_clock=_seconds(wall_clock, what="wall_clock"),
            uid=uid,
        )

    def describe(self) -> dict[str, Any]:
        """The options as JSON-able values (for provisioner info and messages)."""
        return {
            "network": self.network,
            "work_dir": str(self.work_dir) if self.work_dir else None,
            "ro_paths": [str(p) for p in self.ro_paths],
            "rw_paths": [str(p) for p in self.rw_paths],
            "hide_paths": [str(p) for p in self.hide_paths],
            "memory": self.memory,
            "processes": self.processes,
            "cpu_time": self.cpu_time,
            "file_size": self.file_size,
            "wall_clock": self.wall_clock,
        }


#: What a manager's or pool's ``sandbox=`` option takes: None or False (launch as the
#: kernel type says), True (sandboxed, default options), or the sandbox's options.
SandboxChoice = bool | Mapping[str, Any] | None

SANDBOX_PROVISIONER = "sandbox"
# Options of the local provisioner a sandbox sets itself (dropped when sandboxing a kernel
# whose spec configured the local provisioner).
_LOCAL_ONLY = frozenset({"transport", "ip", "port_mode", "runtime_dir", "independent"})


def check_sandbox_choice(sandbox: object) -> SandboxChoice:
    """Check a ``sandbox=`` option.

    Raises:
        ProvisioningError: not None, a bool or a mapping with string keys.
    """
    if sandbox is None or isinstance(sandbox, bool):
        return sandbox
    if isinstance(sandbox, Mapping) and all(isinstance(k, str) for k in sandbox):
        return dict(sandbox)
    raise ProvisioningError(
        "sandbox= takes True, False, None or a mapping of sandbox options "
        f"({{'memory': '512M', 'network': False, ...}}), not {sandbox!r}"
    )


def sandboxed_launch(
    sandbox: SandboxChoice,
    *,
    kernel_name: str,
    provisioner_name: str,
    config: Mapping[str, Any],
    local_provisioner: str,
) -> tuple[str, Mapping[str, Any]]:
    """The provisioner and config of a launch, with ``sandbox=`` applied: a local kernel
    becomes a sandboxed one (its local options kept, the sandbox's on top); a sandboxed
    kernel gets the given options on top of its own.

    Raises:
        ProvisioningError: the kernel runs with another provisioner (remote, another
            host): only local kernels can be sandboxed.
    """
    if sandbox is None or sandbox is False:
        return provisioner_name, config
    extra = {} if sandbox is True else dict(sandbox)
    if provisioner_name == SANDBOX_PROVISIONER:
        return provisioner_name, {**config, **extra}
    if provisioner_name != local_provisioner:
        raise ProvisioningError(
            f"kernel {kernel_name!r} runs with provisioner {provisioner_name!r}; only local "
            "kernels can be sandboxed (drop sandbox=, or choose a local kernel)"
        )
    kept = {k: v for k, v in config.items() if k not in _LOCAL_ONLY}
    return SANDBOX_PROVISIONER, {**kept, **extra}
