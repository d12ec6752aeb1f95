"""A kernel's launch prepared as :class:`~kernelkit.provisioning.LocalProvisioner`
would make it, for a start before the provisioner exists (the nanny's early start,
:mod:`kernelkit.nanny._early`; ``kernelkit run``'s, :mod:`kernelkit.cli._earlyrun`).

Light on purpose: it runs before the kernel starts. No dataclasses, no typing at run
time, the standard json (orjson loads uuid, datetime and platform).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from kernelkit._errors import KernelError
from kernelkit._jupyterpaths import jupyter_runtime_dir
from kernelkit.nanny._first import EarlyKernel, spawn_early
from kernelkit.provisioning._ports import choose_port_mode

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from typing import Any

    from kernelkit.specs import KernelSpec

__all__ = ["EarlyLaunch", "connection_text", "prepare_launch", "writes_ports_back"]


class EarlyLaunch:
    """An early start, prepared: the command, environment and directory of the kernel,
    its key, and its connection file (ports 0) with the text to write there (the nanny
    writes it, just before it starts the kernel)."""

    __slots__ = ("cmd", "connection_file", "content", "cwd", "env", "key")

    def __init__(
        self,
        cmd: list[str],
        env: dict[str, str],
        cwd: str | None,
        key: bytes,
        connection_file: Path,
        content: str,
    ) -> None:
        self.cmd = cmd
        self.env = env
        self.cwd = cwd
        self.key = key
        self.connection_file = connection_file
        self.content = content

    def start(self, kernel_id: str) -> EarlyKernel | None:
        """Write the connection file and start the kernel now
        (:func:`~kernelkit.nanny._first.spawn_early`); None if it cannot start here."""
        return spawn_early(
            self.cmd,
            self.env,
            cwd=self.cwd,
            key=self.key,
            connection_file=str(self.connection_file),
            content=self.content,
            kernel_id=kernel_id,
        )

    def to_dict(self, kernel_id: str) -> dict[str, Any]:
        """The ``"early"`` block of the nanny's request (:mod:`kernelkit.nanny._first`)."""
        return {
            "cmd": self.cmd,
            "env": self.env,
            "cwd": self.cwd,
            "key": self.key.decode("ascii"),
            "connection_file": str(self.connection_file),
            "content": self.content,
            "kernel_id": kernel_id,
        }


def writes_ports_back(spec: KernelSpec, *, port_mode: str | None = None) -> bool:
    """True when ``spec``'s kernel can start early: it has a command naming its
    connection file, and writes the ports it chose back into that file (over tcp)."""
    if not spec.argv or not any("{connection_file}" in arg for arg in spec.argv):
        return False  # the provisioner says what is wrong with such a spec
    try:
        mode, _ = choose_port_mode(
            kernel_name=spec.name,
            argv=spec.argv,
            metadata=spec.metadata,
            kernel_protocol_version=spec.kernel_protocol_version,
            transport="tcp",
            override=port_mode,
        )
    except KernelError:
        return False  # (the same error comes from the provisioner, in its answer)
    return mode == "write-back"


def prepare_launch(
    spec: KernelSpec,
    *,
    kernel_id: str,
    base_env: Mapping[str, str],
    cwd: str | None = None,
    extra_arguments: Sequence[str] = (),
    ip: str = "127.0.0.1",
    runtime_dir: Path | None = None,
) -> EarlyLaunch | None:
    """The launch :class:`~kernelkit.provisioning.LocalProvisioner` would make of
    ``spec`` (in write-back mode, :func:`writes_ports_back`) over the environment
    ``base_env``: a new key, the connection file ``kernel-<kernel_id>.json`` in the
    runtime directory (ports 0), the spec's command and environment. None for an unsafe
    kernel id."""
    if "/" in kernel_id or kernel_id in ("", ".", ".."):
        return None
    path = (runtime_dir or Path(jupyter_runtime_dir())) / f"kernel-{kernel_id}.json"
    key = os.urandom(32).hex().encode("ascii")
    env = spec.format_env(base_env)
    cmd = [os.path.expanduser(a) for a in spec.format_argv(connection_file=path)]
    cmd.extend(extra_arguments)
    content = connection_text(ip=ip, key=key, kernel_name=spec.name)
    return EarlyLaunch(cmd, env, cwd, key, path, content)


def connection_text(*, ip: str, key: bytes, kernel_name: str) -> str:
    """The connection file as LocalProvisioner writes it in write-back mode: ports 0."""
    info = {
        "shell_port": 0,
        "iopub_port": 0,
        "stdin_port": 0,
        "control_port": 0,
        "hb_port": 0,
        "ip": ip,
        "key": key.decode("ascii"),
        "transport": "tcp",
        "signature_scheme": "hmac-sha256",
        "kernel_name": kernel_name,
    }
    return json.dumps(info, indent=2)
