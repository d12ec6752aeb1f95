"""The nanny's control socket, CurveZMQ-encrypted: the wire, and wrong or missing keys."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import signal
import time
from collections.abc import AsyncIterator
from pathlib import Path

import orjson
import pytest
import zmq

from kernelkit import KernelDied, ProvisioningError, read_connection_file
from kernelkit.manager import AsyncKernelManager
from kernelkit.nanny import AsyncAttachedKernel, NannyConfig, NannyProvisioner
from kernelkit.nanny._wire import control_wants_curve
from kernelkit.transport import NannyControl
from tests.nanny.helpers import Relay, gone, kill_all, nanny_spec

pytestmark = [
    pytest.mark.integration,
    pytest.mark.timeout(120),
    pytest.mark.skipif(not zmq.has("curve"), reason="libzmq without CURVE"),
]

MARKER = "kernelkit_nanny_curve_marker_5c2e"


@pytest.fixture(autouse=True)
def runtime_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    d = tmp_path / "runtime"
    d.mkdir(mode=0o700)
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(d))
    return d


def test_when_the_control_socket_is_encrypted() -> None:
    assert not control_wants_curve("auto", "127.0.0.1")
    assert not control_wants_curve("auto", "::1")
    assert not control_wants_curve("auto", "localhost")
    assert control_wants_curve("auto", "0.0.0.0")
    assert control_wants_curve("auto", "10.1.2.3")
    assert control_wants_curve("auto", "gpu-box")
    assert control_wants_curve("curve", "127.0.0.1")
    assert not control_wants_curve("none", "10.1.2.3")  # asked for explicitly
    with pytest.raises(ProvisioningError, match="must be one of auto, curve, none"):
        control_wants_curve("tls", "10.1.2.3")
    config = NannyConfig(kernel_id="k", spec=None, spec_name="python3", env={})
    assert config.control_encryption == "auto"
    again = NannyConfig.from_dict({**config.to_dict(), "control_encryption": "curve"})
    assert again.control_encryption == "curve"


@pytest.fixture
async def curve_km() -> AsyncIterator[AsyncKernelManager]:
    """A kernel under a nanny whose control socket is encrypted (on loopback, by request:
    the tests talk to 127.0.0.1 only)."""
    km = AsyncKernelManager(kernel_spec=nanny_spec(control_encryption="curve"))
    await km.start_kernel()
    p = km.provisioner
    assert isinstance(p, NannyProvisioner)
    pids = [p.nanny_pid or 0, p.pid or 0]
    try:
        yield km
    finally:
        await km.shutdown_kernel(now=True)
        assert await gone(pids, within=15)
        kill_all(pids)


async def test_the_control_wire_is_encrypted_and_carries_no_output(
    curve_km: AsyncKernelManager,
) -> None:
    assert curve_km.connection_file is not None
    info = read_connection_file(curve_km.connection_file)
    assert info.nanny_publickey  # the public key only
    on_disk = orjson.loads(curve_km.connection_file.read_bytes())
    assert "kernelkit_nanny_secretkey" not in on_disk
    assert set(on_disk) & {"kernelkit_nanny", "kernelkit_nanny_publickey"} == {
        "kernelkit_nanny",
        "kernelkit_nanny_publickey",
    }
    relay = Relay("127.0.0.1", int(info.nanny.rsplit(":", 1)[1]))
    port = await relay.start()
    tapped = dataclasses.replace(info, nanny=f"tcp://127.0.0.1:{port}")
    try:
        async with AsyncAttachedKernel(tapped) as k:
            async with k.client(heartbeat_timeout=30.0) as kc:
                await kc.wait_for_ready(timeout=60)
                # Written to the process's own stderr (not IOPub): the nanny keeps it.
                code = f"import os, time; os.write(2, b'{MARKER}\\n'); time.sleep(60)"
                pending = asyncio.ensure_future(kc.execute(code, timeout=60))
                await asyncio.sleep(0.3)
                tail = await k.output_tail(50)
                assert k.pid is not None
                os.kill(k.pid, signal.SIGKILL)
                with pytest.raises(KernelDied):
                    await asyncio.wait_for(pending, 10)
            assert await k.wait() == -signal.SIGKILL
    finally:
        relay.close()
    # What the nanny said went through the relay: the kernel's output, to us, encrypted.
    assert any(MARKER in line for line in tail + k.output_at_death)
    assert b"CURVE" in relay.wire[:64]  # the ZMTP greeting names the mechanism
    assert len(relay.to_client) > 300
    assert MARKER.encode() not in relay.wire
    for plain in (b"kernel_died", b"nanny_reply", b"nanny_request", b"output_tail"):
        assert plain not in relay.wire


async def test_a_wrong_or_missing_key_is_a_clear_error_not_a_hang(
    curve_km: AsyncKernelManager,
) -> None:
    assert curve_km.connection_file is not None
    info = read_connection_file(curve_km.connection_file)
    cases = (
        (zmq.curve_keypair()[0], "public key in the connection file is wrong"),
        (b"", "has no kernelkit_nanny_publickey"),
    )
    for server_key, why in cases:
        t0 = time.monotonic()
        async with NannyControl(info.nanny, key=info.key, server_key=server_key) as control:
            with pytest.raises(ProvisioningError, match=f"nanny tcp://.*handshake failed .*{why}"):
                await control.request("status", timeout=30)
        assert time.monotonic() - t0 < 20  # not the request's own timeout
    # The nanny is unharmed: the right key still works, through the attached kernel too.
    async with AsyncAttachedKernel(info) as k:
        assert await k.is_alive()
