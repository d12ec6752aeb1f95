"""The ``--sandbox`` options of ``kernelkit run``: from command-line values to the
``sandbox=`` option of the manager (checked by the sandbox provisioner at start)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["SANDBOX_HELP", "sandbox_option"]

SANDBOX_HELP = (
    "Run the kernel in a sandbox (bubblewrap): the system read-only, a fresh work "
    "directory, a private /tmp, no home directory and no network. Any limit option "
    "implies it."
)


def sandbox_option(
    *,
    sandbox: bool,
    network: bool,
    memory: str | None = None,
    processes: int | None = None,
    cpu_time: float | None = None,
    file_size: str | None = None,
    wall_clock: float | None = None,
    work_dir: Path | None = None,
    ro: list[Path] | None = None,
    rw: list[Path] | None = None,
) -> dict[str, Any] | None:
    """The manager's ``sandbox=`` for these options; None when none asks for a sandbox."""
    config: dict[str, Any] = {
        key: value
        for key, value in (
            ("memory", memory),
            ("processes", processes),
            ("cpu_time", cpu_time),
            ("file_size", file_size),
            ("wall_clock", wall_clock),
            ("work_dir", str(work_dir.absolute()) if work_dir else None),
            ("ro_paths", [str(p.absolute()) for p in ro] if ro else None),
            ("rw_paths", [str(p.absolute()) for p in rw] if rw else None),
        )
        if value is not None
    }
    if not sandbox and not config and not network:
        return None
    config["network"] = network
    return config
