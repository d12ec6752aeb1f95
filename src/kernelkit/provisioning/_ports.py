"""Which way a kernel's ports get chosen: the rule, as one pure function.

Four ways (PROTOCOL.md, "Kernel-chosen ports"):

``handshake``
    JEP 66: the kernel gets a registration file, binds its own ports and reports them on
    our registration socket. No race: nobody picks a port for someone else.
``write-back``
    ipykernel: the kernel gets a connection file whose ports are 0, binds random ports
    and rewrites the file; we watch the file. No race either.
``auto``
    One file that is both: ports 0 *and* the registration fields. A kernel that speaks
    JEP 66 registers (xeus reads a file with ``registration_ip`` as a registration file),
    an ipykernel-like kernel writes the file back; whichever happens first wins. This is
    the probe, and it costs nothing: the kernel's own behaviour answers. A kernel that
    does neither is reported after the start timeout, with advice to set ``parent``.
``parent``
    The last resort: we pick free ports (racy by nature); a kernel that dies at start
    with "Address already in use" is relaunched on new ports a few times.

The rule, first match wins:

1. An explicit choice: the kernelspec's ``metadata.kernelkit.ports`` (or the flat key
   ``metadata["kernelkit.ports"]``), else the provisioner's ``port_mode`` option.
2. The ``ipc`` transport: ``parent`` (ipc "ports" are unique file names, no race).
3. The spec declares JEP 66: ``kernel_protocol_version`` >= 5.6 → ``handshake``.
4. The argv runs ipykernel (``ipykernel_launcher`` / ``ipykernel`` in it) → ``write-back``.
5. argv[0] is a Python interpreter (``python``, ``python3.11``, ``/env/bin/python``,
   ``pypy3``...) → ``auto``: Python kernels are nearly all ipykernel-based (bash_kernel,
   metakernel kernels) or xeus-python, which registers.
6. Anything else → ``parent``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any, Literal, get_args

from kernelkit._errors import KernelSpecError

__all__ = [
    "PORT_MODES",
    "PortMode",
    "choose_port_mode",
]

PortMode = Literal["handshake", "write-back", "auto", "parent"]
PORT_MODES: tuple[PortMode, ...] = get_args(PortMode)

_HANDSHAKE_VERSION = (5, 6)
_PYTHON = re.compile(r"^(python|pypy)(\d+(\.\d+)*)?[tw]?(\.exe)?$", re.IGNORECASE)
_IPYKERNEL = re.compile(r"(^|[\\/.])ipykernel(_launcher)?(\.py)?$")


def _version(text: str | None) -> tuple[int, ...] | None:
    if not text:
        return None
    try:
        return tuple(int(part) for part in text.strip().split("."))
    except ValueError:
        return None


def _declared(metadata: Mapping[str, Any]) -> object:
    nested = metadata.get("kernelkit")
    if isinstance(nested, Mapping) and "ports" in nested:
        return nested["ports"]
    return metadata.get("kernelkit.ports")


def choose_port_mode(
    *,
    kernel_name: str,
    argv: Sequence[str],
    metadata: Mapping[str, Any],
    kernel_protocol_version: str | None,
    transport: str = "tcp",
    override: str | None = None,
) -> tuple[PortMode, str]:
    """Apply the rule above; returns the mode and the reason (for logs and errors).

    Raises:
        KernelSpecError: an explicit choice names no known mode.
    """
    for source, value in (
        ("the kernelspec's metadata.kernelkit.ports", _declared(metadata)),
        ("the provisioner's port_mode option", override),
    ):
        if value is None:
            continue
        if value not in PORT_MODES:
            raise KernelSpecError(
                f"kernel {kernel_name!r}: {source} is {value!r}; use one of "
                + ", ".join(repr(m) for m in PORT_MODES)
            )
        mode: PortMode = value
        return mode, f"set by {source}"
    if transport == "ipc":
        return "parent", "the ipc transport (its endpoints are unique file names)"
    version = _version(kernel_protocol_version)
    if version is not None and version >= _HANDSHAKE_VERSION:
        return "handshake", f"kernel_protocol_version {kernel_protocol_version} (JEP 66)"
    if any(_IPYKERNEL.search(arg) for arg in argv):
        return "write-back", "the kernel runs ipykernel"
    if argv and _PYTHON.match(re.split(r"[\\/]", argv[0])[-1]):
        return "auto", "a Python kernel: registration or write-back, whichever it does"
    return "parent", "no sign the kernel chooses its own ports"
