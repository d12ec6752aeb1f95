"""CurveZMQ: kernels given a keypair (ipykernel 7.4), clients that encrypt to them."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import orjson
import pytest
import zmq

from kernelkit import ConnectionFileError, ConnectionInfo, KernelError, ProvisioningError
from kernelkit.client import AsyncKernelClient
from kernelkit.provisioning import LocalProvisioner, launch_provisioner
from kernelkit.provisioning._encryption import wants_curve
from kernelkit.specs import KernelSpec, load_kernel_spec

pytestmark = pytest.mark.skipif(not zmq.has("curve"), reason="libzmq without CURVE")

MARKER = "kernelkit_curve_marker_7d1f"


def ipykernel_spec(**metadata: object) -> KernelSpec:
    spec = load_kernel_spec(Path(sys.prefix) / "share" / "jupyter" / "kernels" / "python3")
    argv = (sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}")
    return dataclasses.replace(spec, argv=argv, metadata={**spec.metadata, **metadata})


# --------------------------------------------------------------------------- pure rules


def test_connection_info_carries_curve_keys_hidden(tmp_path: Path) -> None:
    public, secret = zmq.curve_keypair()
    info = ConnectionInfo(
        shell_port=1, iopub_port=2, stdin_port=3, control_port=4, hb_port=5, key=b"k" * 64,
        curve_publickey=public, curve_secretkey=secret,
    )  # fmt: skip
    assert info.encrypted
    d = info.to_dict()
    assert d["curve_publickey"] == public.decode()
    assert d["curve_secretkey"] == secret.decode()
    assert ConnectionInfo.from_dict(d) == info
    assert public.decode() not in repr(info)
    assert secret.decode() not in repr(info)
    assert "curve=<hidden>" in repr(info)
    # A client may hold the public key alone; a secret key alone is a mistake.
    client = ConnectionInfo.from_dict({**d, "curve_secretkey": None})
    assert client.encrypted
    assert client.curve_secretkey == b""
    with pytest.raises(ConnectionFileError, match="without 'curve_publickey'"):
        ConnectionInfo.from_dict({k: v for k, v in d.items() if k != "curve_publickey"})
    with pytest.raises(ConnectionFileError, match="not a CurveZMQ key") as err:
        ConnectionInfo.from_dict({**d, "curve_publickey": "short"})
    assert "short" not in str(err.value)
    plain = dataclasses.replace(info, curve_publickey=b"", curve_secretkey=b"")
    assert not plain.encrypted
    assert "curve_publickey" not in plain.to_dict()


def test_encryption_option() -> None:
    spec = ipykernel_spec()
    assert not wants_curve(spec, "auto", ip="127.0.0.1", transport="tcp")  # loopback
    assert wants_curve(spec, "auto", ip="10.0.0.2", transport="tcp")
    assert wants_curve(spec, "curve", ip="127.0.0.1", transport="tcp")
    assert not wants_curve(spec, "none", ip="10.0.0.2", transport="tcp")
    bare = dataclasses.replace(spec, metadata={})
    assert not wants_curve(bare, "auto", ip="10.0.0.2", transport="tcp")
    with pytest.raises(ProvisioningError, match="does not declare CurveZMQ"):
        wants_curve(bare, "curve", ip="127.0.0.1", transport="tcp")
    with pytest.raises(ProvisioningError, match="must be one of auto, curve, none"):
        wants_curve(spec, "tls", ip="127.0.0.1", transport="tcp")


# --------------------------------------------------------------------------- real ipykernel


@pytest.fixture
async def curve_kernel(tmp_path: Path) -> AsyncIterator[LocalProvisioner]:
    runtime = tmp_path / "runtime"
    p = LocalProvisioner(
        kernel_id=os.urandom(6).hex(), kernel_spec=ipykernel_spec(), runtime_dir=runtime,
        encryption="curve", startup_timeout=60,
    )  # fmt: skip
    try:
        await launch_provisioner(p)
        yield p
    finally:
        await p.stop(grace=2)
        await p.cleanup()


class _Tap:
    """A TCP relay in front of one kernel port that keeps every byte the client sent."""

    def __init__(self, target: int) -> None:
        self.target = target
        self.sent = bytearray()
        self.tasks: set[asyncio.Task[None]] = set()

    async def _pipe(self, r: asyncio.StreamReader, w: asyncio.StreamWriter, keep: bool) -> None:
        try:
            while data := await r.read(65536):
                if keep:
                    self.sent += data
                w.write(data)
                await w.drain()
        except ConnectionError:
            pass  # the other side went away: the relay just ends
        finally:
            w.close()

    async def serve(self, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        kr, kw = await asyncio.open_connection("127.0.0.1", self.target)
        for task in (self._pipe(r, kw, True), self._pipe(kr, w, False)):
            t = asyncio.ensure_future(task)
            self.tasks.add(t)
            t.add_done_callback(self.tasks.discard)


async def test_curve_kernel_executes_and_the_wire_is_not_plaintext(
    curve_kernel: LocalProvisioner,
) -> None:
    info = curve_kernel.connection_info
    assert info is not None
    assert info.encrypted
    assert info.curve_secretkey
    assert curve_kernel.connection_file is not None
    on_disk = orjson.loads(curve_kernel.connection_file.read_bytes())
    assert on_disk["curve_publickey"] == info.curve_publickey.decode()
    # The client needs only the public key.
    client_info = dataclasses.replace(info, curve_secretkey=b"")
    tap = _Tap(info.shell_port)
    server = await asyncio.start_server(tap.serve, "127.0.0.1", 0)
    try:
        port = server.sockets[0].getsockname()[1]
        tapped = client_info.with_ports(shell_port=port)
        async with AsyncKernelClient.from_connection_info(tapped) as kc:
            await kc.wait_for_ready(timeout=60)
            reply = await kc.execute(f"{MARKER} = 6 * 7\nprint({MARKER})", timeout=30)
            assert reply.content["status"] == "ok"
    finally:
        server.close()
        for t in list(tap.tasks):
            t.cancel()
    assert b"CURVE" in tap.sent[:64]  # the ZMTP greeting names the mechanism
    assert len(tap.sent) > 200
    assert MARKER.encode() not in tap.sent
    assert b"execute_request" not in tap.sent


async def test_wrong_server_key_and_plaintext_clients_get_nothing(
    curve_kernel: LocalProvisioner,
) -> None:
    info = curve_kernel.connection_info
    assert info is not None
    wrong = dataclasses.replace(info, curve_publickey=zmq.curve_keypair()[0], curve_secretkey=b"")
    plain = dataclasses.replace(info, curve_publickey=b"", curve_secretkey=b"")
    for bad, why in ((wrong, "public key in the connection info is wrong"),
                     (plain, "has no curve_publickey")):  # fmt: skip
        kc = AsyncKernelClient.from_connection_info(bad)
        try:
            with pytest.raises(KernelError, match=f"handshake failed .*{why}"):  # noqa: PT012
                await kc.start()  # may already fail, or the request does
                await kc.execute("1 + 1", timeout=20)
        finally:
            await kc.aclose()
    # The kernel is unharmed: a right client still runs code.
    async with AsyncKernelClient.from_connection_info(info) as kc:
        reply = await kc.execute("1 + 1", timeout=30)
        assert reply.content["status"] == "ok"


async def test_restart_keeps_the_keypair_and_the_client_follows(
    curve_kernel: LocalProvisioner,
) -> None:
    """A restart (same ports, confirmed by an encrypted heartbeat probe) keeps the keys,
    so a client made before it talks to the new kernel."""
    first = curve_kernel.connection_info
    assert first is not None
    async with AsyncKernelClient.from_connection_info(first) as kc:
        await curve_kernel.stop(grace=2)
        await curve_kernel.cleanup(restart=True)
        await launch_provisioner(curve_kernel)
        assert curve_kernel.port_mode == "parent"  # the heartbeat probe got its echo
        assert curve_kernel.connection_info == first
        reply = await kc.execute("1 + 1", timeout=30)
        assert reply.content["status"] == "ok"
