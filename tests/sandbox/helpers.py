"""Running code in a sandboxed kernel and looking at what it left."""

from __future__ import annotations

from kernelkit.client import AsyncKernelClient
from kernelkit.manager import AsyncKernelManager
from kernelkit.protocol import Message
from kernelkit.provisioning import SandboxProvisioner
from kernelkit.provisioning._procfs import descendants


async def run(kc: AsyncKernelClient, code: str, *, timeout: float = 60) -> tuple[Message, str]:
    """Execute ``code``; the reply and everything written to stdout and stderr."""
    outputs: list[Message] = []
    reply = await kc.execute(code, outputs=outputs, timeout=timeout)
    text = "".join(str(m.content.get("text", "")) for m in outputs if m.msg_type == "stream")
    return reply, text


def sandbox(km: AsyncKernelManager) -> SandboxProvisioner:
    p = km.provisioner
    assert isinstance(p, SandboxProvisioner)
    return p


def sandbox_pids(km: AsyncKernelManager) -> list[int]:
    """The sandbox's processes as the host sees them: bubblewrap and all below it."""
    pid = sandbox(km).pid
    assert pid is not None
    return [pid, *(p.pid for p in descendants(pid))]
