"""Kernels on a second host (a network namespace with sshd), under a nanny there."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kernelkit import KernelDied, KernelError, KernelStartError, ProvisioningError
from kernelkit.manager import AsyncKernelManager
from kernelkit.nanny import Host, SSHProvisioner
from kernelkit.specs import KernelSpec
from tests.nanny.helpers import Relay, alive, gone, nanny_spec
from tests.nanny.sshhost import SecondHost, keygen, second_host, unavailable

pytestmark = [
    pytest.mark.integration,
    pytest.mark.timeout(180),
    pytest.mark.skipif(unavailable() is not None, reason=str(unavailable())),
]


@pytest.fixture(scope="module")
def host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecondHost]:
    with second_host(tmp_path_factory.mktemp("second")) as h:
        yield h


@pytest.fixture(autouse=True)
def runtime_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    d = tmp_path / "runtime"
    d.mkdir(mode=0o700)
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(d))
    return d


def ssh_spec(**config: object) -> KernelSpec:
    """This machine's python3 spec, launched by the ssh provisioner with ``config``."""
    spec = nanny_spec()
    metadata = dict(spec.metadata)
    metadata["kernel_provisioner"] = {"provisioner_name": "ssh-provisioner", "config": config}
    return dataclasses.replace(spec, metadata=metadata)


async def start(host: Host, **options: object) -> SSHProvisioner:
    from kernelkit.provisioning import launch_provisioner

    p = SSHProvisioner(
        kernel_id=os.urandom(8).hex(), kernel_spec=nanny_spec(), host=host, **options
    )  # type: ignore[arg-type]
    await launch_provisioner(p)
    return p


async def test_start_execute_stop_on_the_second_host(host: SecondHost, runtime_dir: Path) -> None:
    from kernelkit.client import AsyncKernelClient

    t0 = time.monotonic()
    p = await start(host.host)
    try:
        assert p.connection_info is not None
        assert p.connection_info.ip == "127.0.0.1"  # through the tunnel
        async with AsyncKernelClient.from_connection_info(p.connection_info) as kc:
            await kc.wait_for_ready(timeout=60)
            print(f"start-to-ready on the second host: {(time.monotonic() - t0) * 1000:.0f} ms")
            reply = await kc.execute("import socket; print(socket.gethostname())", timeout=30)
            assert reply.content["status"] == "ok"
        remote = host.pids()
        assert p.pid in remote  # the kernel runs in the namespace
        assert p.connection_file is not None
        assert p.connection_file.exists()
    finally:
        await p.stop(grace=1)
        await p.cleanup()
    assert await gone([p.pid or 0, p.nanny_pid or 0], within=15)
    assert os.listdir(runtime_dir) == []


async def test_kernel_killed_on_the_host_fails_pending_requests(
    host: SecondHost, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from kernelkit.nanny import HostRegistry

    monkeypatch.setenv("KERNELKIT_HOSTS_DIR", str(tmp_path / "hosts"))
    HostRegistry().add(host.host)
    km = AsyncKernelManager(kernel_spec=ssh_spec(host="second"))
    await km.start_kernel()
    try:
        p = km.provisioner
        assert isinstance(p, SSHProvisioner)
        async with km.client(heartbeat_timeout=30) as kc:
            await kc.wait_for_ready(timeout=60)
            pending = asyncio.ensure_future(kc.execute("import time; time.sleep(60)", timeout=60))
            await asyncio.sleep(0.3)
            assert p.pid is not None
            t0 = time.monotonic()
            os.kill(p.pid, signal.SIGKILL)  # on the host (the namespace shares our pids)
            with pytest.raises(KernelDied) as err:
                await asyncio.wait_for(pending, 10)
            elapsed = time.monotonic() - t0
            print(f"remote SIGKILL -> KernelDied through the manager: {elapsed * 1000:.0f} ms")
            assert elapsed < 5  # the goal is 1 s; generous for a busy machine
            assert err.value.exit_code == -signal.SIGKILL
            assert err.value.output_tail  # the kernel's last words, kept by the nanny
    finally:
        await km.shutdown_kernel(now=True)


async def test_connection_dropped_stops_the_kernel_after_the_grace(host: SecondHost) -> None:
    p = await start(host.host, owner_grace=1.0)
    kernel, nanny = p.pid or 0, p.nanny_pid or 0
    try:
        assert p._proc is not None
        p._proc.kill()  # the ssh connection dies (as when its owner is SIGKILLed)
        assert await gone([kernel, nanny], within=15)
    finally:
        await p.cleanup()


async def test_wrong_host_key_is_a_clear_error(host: SecondHost, tmp_path: Path) -> None:
    impostor = keygen(tmp_path / "impostor")
    other = tmp_path / "other_known_hosts"
    other.write_text(f"{host.address} {impostor}\n")
    cfg = host.ssh_config(identity=host.dir / "id_user", known_hosts=other)
    bad = dataclasses.replace(host.host, ssh_config=str(cfg))
    with pytest.raises(KernelStartError, match=r"host 'second'.*key"):
        await start(bad)


async def test_refused_login_is_a_clear_error(host: SecondHost, tmp_path: Path) -> None:

    keygen(tmp_path / "stranger")
    cfg = host.ssh_config(identity=tmp_path / "stranger", known_hosts=host.dir / "known_hosts")
    bad = dataclasses.replace(host.host, ssh_config=str(cfg))
    with pytest.raises(KernelStartError, match=r"host 'second'.*login refused"):
        await start(bad)


async def test_missing_python_is_a_clear_error(host: SecondHost) -> None:
    bad = dataclasses.replace(host.host, python="/nonexistent/python3")
    with pytest.raises(
        KernelStartError, match=r"host 'second'.*'/nonexistent/python3' is not there"
    ):
        await start(bad)


async def test_direct_network_is_curve_encrypted(host: SecondHost) -> None:
    """network="direct": the host's ipykernel (it declares curve) is given a keypair; the
    client here gets the public key only and talks to the host's address, encrypted."""
    from kernelkit.client import AsyncKernelClient

    with pytest.raises(ProvisioningError, match="must be 'tunnel' or 'direct'"):
        SSHProvisioner(kernel_id="x", kernel_spec=nanny_spec(), host=host.host, network="udp")  # type: ignore[arg-type]
    p = await start(host.host, network="direct")
    try:
        info = p.connection_info
        assert info is not None
        assert info.ip == host.host.hostname
        assert info.encrypted
        assert info.curve_secretkey == b""  # the secret stays on the host
        async with AsyncKernelClient.from_connection_info(info) as kc:
            reply = await kc.execute("6 * 7", timeout=30)
            assert reply.content["status"] == "ok"
        plain = dataclasses.replace(info, curve_publickey=b"")
        kc = AsyncKernelClient.from_connection_info(plain)
        try:
            with pytest.raises(KernelError, match="handshake failed"):  # noqa: PT012
                await kc.start()
                await kc.execute("1", timeout=20)
        finally:
            await kc.aclose()
    finally:
        await p.stop(grace=1)
        await p.cleanup()


async def test_link_cut_is_a_heartbeat_timeout_and_the_client_recovers(host: SecondHost) -> None:
    from kernelkit import HeartbeatTimeout
    from kernelkit.client import AsyncKernelClient

    p = await start(host.host)
    try:
        assert p.connection_info is not None
        kc = AsyncKernelClient.from_connection_info(
            p.connection_info,
            heartbeat_interval=0.5,
            heartbeat_timeout=1.0,
            # A missed beat is "unresponsive"; death by silence waits silence_timeout.
            silence_timeout=2.0,
        )
        async with kc:
            await kc.wait_for_ready(timeout=60)
            pending = asyncio.ensure_future(kc.execute("import time; time.sleep(4)", timeout=30))
            await asyncio.sleep(0.2)
            host.link(up=False)
            t0 = time.monotonic()
            try:
                with pytest.raises(HeartbeatTimeout):
                    await asyncio.wait_for(pending, 10)
                detected = time.monotonic() - t0
                print(f"link cut -> HeartbeatTimeout in {detected * 1000:.0f} ms")
                assert detected < 8  # limit: 2 s silence + 1 s timeout + 0.5 s interval; generous
            finally:
                host.link(up=True)
            # The kernel still lives (the connection came back before ssh gave up):
            # requests work again once the heartbeat answers.
            reply = None
            deadline = time.monotonic() + 30
            while reply is None:
                try:
                    reply = await kc.execute("6 * 7", timeout=10)
                except HeartbeatTimeout:
                    assert time.monotonic() < deadline, "the client never recovered"
                    await asyncio.sleep(0.5)
            assert reply.content["status"] == "ok"
    finally:
        host.link(up=True)
        await p.stop(grace=0)
        await p.cleanup()


async def test_the_hosts_kernelspecs_are_listed_and_launch_there(
    host: SecondHost, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from kernelkit.nanny import HostRegistry, SSHProvider

    monkeypatch.setenv("KERNELKIT_HOSTS_DIR", str(tmp_path / "hosts"))
    HostRegistry().add(host.host)
    listed = {t.name for t in await asyncio.to_thread(SSHProvider().refresh)}
    # Listing reads what the refresh kept: it runs no ssh (the link is cut meanwhile).
    host.link(False)
    try:
        types = {t.name: t for t in await asyncio.to_thread(SSHProvider().find_kernels)}
    finally:
        host.link(True)
    assert set(types) == listed
    assert "second/python3" in types, sorted(types)
    kt = types["second/python3"]
    assert kt.healthy, kt.problems
    assert kt.spec is not None
    km = AsyncKernelManager(kernel_spec=kt.spec)
    await km.start_kernel()
    try:
        assert isinstance(km.provisioner, SSHProvisioner)
        async with km.client() as kc:
            await kc.wait_for_ready(timeout=60)
            reply = await kc.execute("1 + 1", timeout=30)
            assert reply.content["status"] == "ok"
        await km.shutdown_kernel()
    finally:
        await km.shutdown_kernel(now=True)


async def test_an_unreachable_host_is_listed_with_its_reason(
    host: SecondHost, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from kernelkit.nanny import SSHProvider

    monkeypatch.setenv("KERNELKIT_HOSTS_DIR", str(tmp_path / "hosts"))
    gone_host = dataclasses.replace(host.host, name="nowhere", hostname="10.213.255.254")
    provider = SSHProvider(hosts=[gone_host], timeout=2.0)
    (kt,) = await asyncio.to_thread(provider.refresh)
    assert kt.name == "nowhere"
    assert not kt.healthy
    assert "host 'nowhere'" in kt.problems[0]
    (kept,) = await asyncio.to_thread(provider.find_kernels)
    assert kept.name == "nowhere"
    assert "when last asked" in kept.problems[0]


async def test_a_hosts_environments_are_listed_and_launch_there_activated(
    host: SecondHost, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An environment on the host (found there through KERNELKIT_ENV_PREFIXES, which ssh
    passes on) is listed as ssh/second/env/<env-id>/python3 and its kernel runs there
    in it, activated."""
    from kernelkit.nanny import HostRegistry, SSHProvider

    prefix = _venv_with_ipykernel(tmp_path / "hostenv")
    monkeypatch.setenv("KERNELKIT_ENV_PREFIXES", str(prefix))
    monkeypatch.setenv("KERNELKIT_HOSTS_DIR", str(tmp_path / "hosts"))
    HostRegistry().add(host.host)
    types = await asyncio.to_thread(SSHProvider().refresh)
    found = [
        t for t in types if t.name.startswith("second/env/") and t.spec is not None
        and t.spec.argv[0].startswith(str(prefix))
    ]  # fmt: skip
    assert len(found) == 1, [(t.name, t.spec and t.spec.argv) for t in types]
    (kt,) = found
    assert kt.healthy, kt.problems
    assert kt.spec is not None
    km = AsyncKernelManager(kernel_spec=kt.spec)
    await km.start_kernel()
    try:
        async with km.client() as kc:
            await kc.wait_for_ready(timeout=60)
            outputs: list[Any] = []
            reply = await kc.execute(
                "import os, sys; print(sys.prefix, os.environ.get('VIRTUAL_ENV'))",
                outputs=outputs,
                timeout=30,
            )
            assert reply.content["status"] == "ok"
        text = "".join(str(m.content.get("text", "")) for m in outputs)
        assert text.split() == [str(prefix), str(prefix)]
    finally:
        await km.shutdown_kernel(now=True)


def _venv_with_ipykernel(prefix: Path) -> Path:
    """A venv without pip that sees this one's packages (a .pth file) and says it has
    ipykernel (its dist-info, linked): an environment with a kernel, made in a second."""
    import site
    import sys

    subprocess.run(
        [sys.executable, "-m", "venv", "--without-pip", str(prefix)],
        check=True,
        capture_output=True,
        timeout=60,
    )
    ours = Path(site.getsitepackages()[0])
    (theirs,) = prefix.glob("lib/python3*/site-packages")
    (theirs / "_kk_parent.pth").write_text(f"{ours}\n")
    (info,) = ours.glob("ipykernel-*.dist-info")
    (theirs / info.name).symlink_to(info)
    return prefix


async def test_measure_start_to_ready_against_a_kernel_started_by_hand_over_ssh(
    host: SecondHost, tmp_path: Path
) -> None:
    """Figures for the report (printed, never asserted: the machine is shared).

    The floor: what a person does by hand: ``ssh HOST python -m ipykernel_launcher -f F``
    with ports 0 in F, the ports read back from F (the namespace shares our files, which
    favours the floor), then a client straight to the host's address (plain text).
    """
    import json
    import statistics

    from kernelkit import ConnectionInfo, read_connection_file
    from kernelkit.client import AsyncKernelClient

    async def ours() -> float:
        t0 = time.perf_counter()
        p = await start(host.host)
        try:
            assert p.connection_info is not None
            async with AsyncKernelClient.from_connection_info(p.connection_info) as kc:
                await kc.wait_for_ready(timeout=60)
                return time.perf_counter() - t0
        finally:
            await p.stop(grace=0)
            await p.cleanup()

    async def floor(n: int) -> float:
        f = tmp_path / f"floor-{n}.json"
        key = os.urandom(16).hex()
        info = {"ip": host.address, "transport": "tcp", "key": key}
        info.update({f"{c}_port": 0 for c in ("shell", "iopub", "stdin", "control", "hb")})
        info["signature_scheme"] = "hmac-sha256"
        f.write_text(json.dumps(info))
        f.chmod(0o600)
        t0 = time.perf_counter()
        remote = f"{host.host.python} -m ipykernel_launcher -f {f}"
        cmd = ["ssh", *host.host.ssh_args(), host.host.destination, "--", remote]
        proc = _spawn_quiet(cmd)
        try:
            pause = 0.002
            while True:
                try:
                    got: ConnectionInfo = read_connection_file(f)
                    if got.ports_chosen:
                        break
                except KernelError:
                    pass  # half written
                await asyncio.sleep(pause)
                pause = min(pause * 2, 0.02)
            async with AsyncKernelClient.from_connection_info(got) as kc:
                await kc.wait_for_ready(timeout=60)
                return time.perf_counter() - t0
        finally:
            for pid in host.pids():
                if pid != host.sshd.pid and _cmdline(pid).find(str(f)) >= 0:
                    os.kill(pid, signal.SIGKILL)
            proc.kill()
            proc.wait()

    ours_t, floor_t = [], []
    for n in range(3):
        floor_t.append(await floor(n))
        ours_t.append(await ours())
    a, b = statistics.median(ours_t), statistics.median(floor_t)
    print(
        f"\nstart-to-ready on the second host: kernelkit {a * 1000:.0f} ms, by hand over ssh "
        f"{b * 1000:.0f} ms, ratio {a / b:.2f}"
    )


def _spawn_quiet(cmd: list[str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


async def test_a_multi_kernel_manager_runs_one_here_and_one_on_the_host(
    host: SecondHost, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from kernelkit.manager import AsyncMultiKernelManager
    from kernelkit.nanny import HostRegistry, SSHProvider

    monkeypatch.setenv("KERNELKIT_HOSTS_DIR", str(tmp_path / "hosts"))
    HostRegistry().add(host.host)
    await asyncio.to_thread(SSHProvider().refresh)  # (what `kernelkit hosts add` does)
    mkm = AsyncMultiKernelManager()
    try:
        here, there = await asyncio.gather(
            mkm.start_kernel("python3"), mkm.start_kernel("ssh/second/python3")
        )
        remote = mkm.get_kernel(there)
        assert isinstance(remote.provisioner, SSHProvisioner)
        assert remote.provisioner.pid in host.pids()
        for kid in (here, there):
            async with mkm.get_kernel(kid).client() as kc:
                await kc.wait_for_ready(timeout=60)
                reply = await kc.execute("1 + 1", timeout=30)
                assert reply.content["status"] == "ok"
    finally:
        await mkm.shutdown_all(now=True)


async def test_direct_network_control_socket_is_curve_encrypted(host: SecondHost) -> None:
    """network="direct": the nanny's control socket is on the network too, so it is a
    CurveZMQ server with a keypair made on the host; the wire carries no plain text."""
    from kernelkit.client import AsyncKernelClient
    from kernelkit.nanny import AsyncAttachedKernel
    from kernelkit.transport import NannyControl

    p = await start(host.host, network="direct")
    relay = Relay(host.address, 0)
    try:
        info = p.connection_info
        assert info is not None
        assert info.nanny.startswith(f"tcp://{host.host.hostname}:")
        assert info.nanny_publickey  # its secret key never left the host
        relay.target = int(info.nanny.rsplit(":", 1)[1])
        port = await relay.start()
        relayed = dataclasses.replace(info, nanny=f"tcp://127.0.0.1:{port}")
        async with AsyncAttachedKernel(relayed) as k:
            assert await k.is_alive()
            await k.output_tail(20)
        assert b"CURVE" in relay.wire[:64]
        for plain in (b"nanny_reply", b"nanny_request", b"output", b"running"):
            assert plain not in relay.wire
        async with NannyControl(info.nanny, key=info.key) as plain_control:
            with pytest.raises(ProvisioningError, match="handshake failed"):
                await plain_control.request("status", timeout=30)
        # From the connection file alone: no tunnel, the host's addresses, encrypted.
        assert p.connection_file is not None
        async with AsyncAttachedKernel.from_connection_file(p.connection_file) as k:
            assert k.tunnel is None
            assert await k.is_alive()
        kc = AsyncKernelClient.from_connection_file(p.connection_file, silence_timeout=30.0)
        async with kc:
            await kc.wait_for_ready(timeout=60)
            pending = asyncio.ensure_future(kc.execute("import time; time.sleep(60)", timeout=60))
            await asyncio.sleep(0.3)
            t0 = time.monotonic()
            os.kill(p.pid or 0, signal.SIGKILL)  # on the host (the namespace shares our pids)
            with pytest.raises(KernelDied) as err:
                await asyncio.wait_for(pending, 10)
            elapsed = time.monotonic() - t0
            print(f"second host, direct: SIGKILL -> KernelDied in {elapsed * 1000:.1f} ms")
            assert elapsed < 5
            assert err.value.exit_code == -signal.SIGKILL
    finally:
        relay.close()
        await p.stop(grace=1)
        await p.cleanup()


@pytest.mark.parametrize("network", ["direct", "tunnel"])
async def test_stop_alone_leaves_no_ssh_process(host: SecondHost, network: str) -> None:
    """stop() without cleanup(): the nanny and the ssh connection carrying it exit too."""
    p = await start(host.host, network=network)
    assert p._proc is not None
    ssh_pid = p._proc.pid
    kernel, nanny = p.pid or 0, p.nanny_pid or 0
    try:
        await p.stop(grace=1)
        assert not alive(ssh_pid)  # exited and reaped by stop() itself
        assert await gone([kernel, nanny], within=15)
        assert p._proc is None
    finally:
        await p.cleanup()


async def test_a_new_process_reattaches_to_a_detached_kernel_through_its_own_tunnel(
    host: SecondHost, tmp_path: Path
) -> None:
    """The first owner's ssh connection (and its forwards) is gone; the connection file
    says where the kernel is, and a new process opens its own tunnel to control it."""
    import orjson

    from kernelkit.nanny import AsyncAttachedKernel

    p = await start(host.host, detached=True, owner_grace=0.3)
    kernel, nanny = p.pid or 0, p.nanny_pid or 0
    try:
        assert p.connection_file is not None
        saved = orjson.loads(p.connection_file.read_bytes())
        assert saved["kernelkit_ssh"]["host"]["name"] == "second"
        assert saved["kernelkit_ssh"]["nanny_port"] not in (saved["shell_port"], 0)
        copy = tmp_path / "kernel.json"
        copy.write_bytes(p.connection_file.read_bytes())
        copy.chmod(0o600)
        # The first owner's connection dies; the detached kernel outlives it.
        assert p._proc is not None
        p._proc.kill()
        await asyncio.wait_for(asyncio.to_thread(p._proc.wait), 15)
        await asyncio.sleep(1.0)  # past the grace: a kernel not detached would be stopping
        assert alive(kernel)
        with pytest.raises(ProvisioningError, match="cannot own it from here"):
            AsyncAttachedKernel.from_connection_file(copy, owner=True)
        # A login the host refuses is a clear error naming the host, not a hang.
        keygen(tmp_path / "stranger")
        cfg = host.ssh_config(identity=tmp_path / "stranger", known_hosts=host.dir / "known_hosts")
        refused = tmp_path / "refused.json"
        saved["kernelkit_ssh"]["host"]["ssh_config"] = str(cfg)
        refused.write_bytes(orjson.dumps(saved))
        refused.chmod(0o600)
        k = AsyncAttachedKernel.from_connection_file(refused)
        with pytest.raises(ProvisioningError, match=r"host 'second'.*Permission denied"):
            await k.start()
        await k.aclose()
        out = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "tests.nanny.reattach_script", str(copy),
            stdout=asyncio.subprocess.PIPE, cwd=str(Path(__file__).parents[2]),
        )  # fmt: skip
        stdout, _ = await asyncio.wait_for(out.communicate(), 120)
        assert out.returncode == 0
        seen = orjson.loads(stdout.splitlines()[-1])
        assert seen["alive"] is True
        assert seen["status"] == "ok"
        assert seen["ip"] == "127.0.0.1"
        assert not alive(seen["tunnel_pid"])  # its own tunnel ended with it
        assert await gone([kernel, nanny], within=15)  # stopped from the new process
    finally:
        await p.cleanup()


def test_hosts_add_lists_the_host_and_kernelkit_list_shows_it_without_ssh(
    host: SecondHost, tmp_path: Path
) -> None:
    """`kernelkit hosts add` asks the host for its kernels and keeps them; `kernelkit
    list` then shows them even with the host unreachable (it never runs ssh)."""
    import json
    import sys

    h = host.host
    env = {**os.environ, "KERNELKIT_HOSTS_DIR": str(tmp_path / "hosts")}

    def kk(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "kernelkit", *args],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
        )

    added = kk("hosts", "add", "second", h.url, "--python", h.python,
               "--ssh-config", str(h.ssh_config))  # fmt: skip
    assert added.returncode == 0, added.stderr
    assert "second: " in added.stdout, added.stdout
    assert "listed" in added.stdout, added.stdout
    host.link(False)
    try:
        listed = kk("list", "--json")
    finally:
        host.link(True)
    assert listed.returncode == 0, listed.stderr
    ids = json.loads(listed.stdout)["kernelspecs"]
    assert "ssh/second/python3" in ids, sorted(ids)
    assert ids["ssh/second/python3"]["healthy"]
    refreshed = kk("hosts", "refresh")
    assert refreshed.returncode == 0, refreshed.stderr
    assert kk("hosts", "remove", "second").returncode == 0
    assert not (tmp_path / "hosts" / "listings" / "second.json").exists()
