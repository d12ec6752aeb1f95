"""Connection information for a kernel, and the files that carry it."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Literal

__all__ = [
    "CHANNELS",
    "ConnectionInfo",
]

#: The five kernel channels, in the order ports are listed in a connection file.
CHANNELS = ("shell", "iopub", "stdin", "control", "hb")

Transport = Literal["tcp", "ipc"]


@dataclass(frozen=True, slots=True)
class ConnectionInfo:
    """Where a kernel listens and how its messages are signed.

    A port of 0 means "not chosen yet" (the kernel picks it and writes it back).
    For the ipc transport, ``ip`` is a path prefix and each "port" is a suffix.
    """

    ip: str = "127.0.0.1"
    transport: Transport = "tcp"
    shell_port: int = 0
    iopub_port: int = 0
    stdin_port: int = 0
    control_port: int = 0
    hb_port: int = 0
    key: bytes = b""
    signature_scheme: str = "hmac-sha256"
    kernel_name: str = ""

    def port(self, channel: str) -> int:
        """The port of a channel: one of :data:`CHANNELS`."""
        return int(getattr(self, f"{channel}_port"))

    def url(self, channel: str) -> str:
        """The ZeroMQ endpoint of a channel, e.g. ``tcp://127.0.0.1:5555``."""
        port = self.port(channel)
        if self.transport == "ipc":
            return f"ipc://{self.ip}-{port}"
        return f"tcp://{self.ip}:{port}"

    @property
    def ports_chosen(self) -> bool:
        """True when every channel has a real port."""
        return all(self.port(c) > 0 for c in CHANNELS)

    def with_ports(self, **ports: int) -> ConnectionInfo:
        """A copy with some ``<channel>_port`` values replaced."""
        return replace(self, **ports)  # type: ignore[arg-type]

    def to_dict(self) -> dict[str, Any]:
        """The JSON object of a connection file (key as text, as Jupyter writes it)."""
        return {
            "shell_port": self.shell_port,
            "iopub_port": self.iopub_port,
            "stdin_port": self.stdin_port,
            "control_port": self.control_port,
            "hb_port": self.hb_port,
            "ip": self.ip,
            "key": self.key.decode("utf-8", "surrogateescape"),
            "transport": self.transport,
            "signature_scheme": self.signature_scheme,
            "kernel_name": self.kernel_name,
        }
