"""The client against a real xeus-python 0.19 (no subshells): UnsupportedFeature, at once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from kernelkit import UnsupportedFeature
from kernelkit._connection import ConnectionInfo, allocate_ports, new_key, write_connection_file
from kernelkit.client import AsyncKernelClient, KernelClient
from kernelkit.protocol import Message

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def xeus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ConnectionInfo]:
    pytest.importorskip("xpython_launcher", reason="xeus-python is not installed")
    tmp = tmp_path_factory.mktemp("xeus")
    ports = allocate_ports(5)
    info = ConnectionInfo(
        shell_port=ports[0],
        iopub_port=ports[1],
        stdin_port=ports[2],
        control_port=ports[3],
        hb_port=ports[4],
        key=new_key(),
        kernel_name="xpython",
    )
    path = write_connection_file(info, Path(tmp) / "kernel.json")
    # The kernelspec's argv is `python3.11 -m xpython_launcher -f {connection_file}`, with
    # the interpreter of the environment holding it: that is this one.
    with (Path(tmp) / "kernel.log").open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "xpython_launcher", "-f", str(path)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        yield info
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)


async def test_no_subshells_on_xeus(xeus: ConnectionInfo) -> None:
    async with AsyncKernelClient.from_connection_info(xeus) as client:
        reply = await client.wait_for_ready(timeout=60)
        assert "kernel subshells" not in reply.content.get("supported_features", [])
        outputs: list[Message] = []
        assert (await client.execute("print(1 + 1)", outputs=outputs)).content["status"] == "ok"
        assert "".join(m.content.get("text", "") for m in outputs) == "2\n"
        started = time.monotonic()
        with pytest.raises(UnsupportedFeature, match=r"xpython.*kernel subshells"):
            await client.create_subshell()
        with pytest.raises(UnsupportedFeature):
            await client.list_subshells()
        assert time.monotonic() - started < 0.1  # at once: nothing was sent, nothing awaited
        assert client.pending_requests == 0


def test_no_subshells_on_xeus_blocking(xeus: ConnectionInfo) -> None:
    with KernelClient.from_connection_info(xeus) as kc:
        kc.wait_for_ready(timeout=60)
        with pytest.raises(UnsupportedFeature):
            kc.create_subshell()
