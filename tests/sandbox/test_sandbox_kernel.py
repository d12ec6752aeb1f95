"""A real ipykernel in the sandbox: it starts, runs code over ipc, is interrupted,
restarts, sees only what the sandbox allows, and leaves nothing behind."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from kernelkit import ProvisioningError
from kernelkit.manager import AsyncKernelManager, AsyncKernelPool, AsyncMultiKernelManager
from kernelkit.provisioning import SandboxProvisioner, sandboxed_launch
from kernelkit.specs import load_kernel_spec

from .conftest import KERNELS, Sandboxed, alive, needs_bwrap
from .helpers import run, sandbox, sandbox_pids

pytestmark = [pytest.mark.integration, needs_bwrap]


async def test_runs_code_over_ipc_in_its_work_dir(sandboxed: Sandboxed) -> None:
    async with AsyncKernelManager(kernel_spec=sandboxed(), autorestart=False) as km:
        p = sandbox(km)
        info = km.connection_info
        assert info is not None
        assert info.transport == "ipc"
        assert info.ip.startswith(str(p.sandbox_dir))
        async with km.client() as kc:
            await kc.wait_for_ready(timeout=60)
            reply, out = await run(
                kc,
                "import os; open('made.txt', 'w').write('hi'); "
                "print(os.getcwd(), os.getpid(), os.getuid(), os.environ['HOME'])",
            )
            assert reply.content["status"] == "ok"
            cwd, pid, uid, home = out.split()
            assert cwd == home == str(p.work_dir)
            assert pid == "2"  # its own PID namespace: bubblewrap's init is 1
            if os.geteuid() == 0:
                assert uid == "65534"  # root's sandbox runs as nobody
            assert (p.work_dir / "made.txt").read_text() == "hi"
        pids = sandbox_pids(km)
        sandbox_dir = p.sandbox_dir
    assert not [pid for pid in pids if alive(pid)]
    assert not sandbox_dir.exists()


async def test_interrupt_reaches_the_kernel_not_bubblewrap(sandboxed: Sandboxed) -> None:
    km = AsyncKernelManager(kernel_spec=sandboxed(), autorestart=False)
    async with km, km.client() as kc:
        await kc.wait_for_ready(timeout=60)
        running = asyncio.create_task(run(kc, "import time; time.sleep(60)"))
        await asyncio.sleep(1.0)
        await km.interrupt_kernel()
        reply, _ = await asyncio.wait_for(running, 30)
        assert reply.content["ename"] == "KeyboardInterrupt"
        reply, out = await run(kc, "print(6 * 7)")
        assert out.strip() == "42"


async def test_restart_keeps_the_endpoints(sandboxed: Sandboxed) -> None:
    async with AsyncKernelManager(kernel_spec=sandboxed(), autorestart=False) as km:
        before = km.connection_info
        old = sandbox_pids(km)
        await km.restart_kernel()
        assert km.connection_info == before
        assert not [pid for pid in old if alive(pid)]
        async with km.client() as kc:
            await kc.wait_for_ready(timeout=60)
            _, out = await run(kc, "print('again')")
            assert out.strip() == "again"


async def test_network_and_extra_paths_when_allowed(sandboxed: Sandboxed, tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "in.txt").write_text("input")
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    out_dir.chmod(0o777)
    spec = sandboxed(
        network=True, ro_paths=[str(data)], rw_paths=[str(out_dir)], env={"GREETING": "hello"}
    )
    async with AsyncKernelManager(kernel_spec=spec, autorestart=False) as km, km.client() as kc:
        await kc.wait_for_ready(timeout=60)
        code = (
            "import os, socket\n"
            f"print(open({str(data / 'in.txt')!r}).read(), os.environ['GREETING'])\n"
            f"open({str(out_dir / 'o.txt')!r}, 'w').write('x')\n"
            f"try:\n    open({str(data / 'w.txt')!r}, 'w')\nexcept OSError as e:\n"
            "    print('ro', e.errno)\n"
            "print(sorted(n for _, n in socket.if_nameindex()) != ['lo'])\n"
        )
        reply, out = await run(kc, code)
        assert reply.content["status"] == "ok", reply.content
        assert out.split() == ["input", "hello", "ro", "30", "True"]
    assert (out_dir / "o.txt").read_text() == "x"


def test_bad_config_is_refused_with_the_reason() -> None:
    from kernelkit.specs import KernelSpec

    spec = KernelSpec(
        name="k", resource_dir=Path("/"), argv=("python",), display_name="k", language="python"
    )
    with pytest.raises(ProvisioningError, match="sets transport"):
        SandboxProvisioner(kernel_id="a", kernel_spec=spec, transport="tcp")
    with pytest.raises(ProvisioningError, match="unknown unit"):
        SandboxProvisioner(kernel_id="a", kernel_spec=spec, memory="12 parsecs")
    with pytest.raises(ProvisioningError, match="must be an absolute path"):
        SandboxProvisioner(kernel_id="a", kernel_spec=spec, ro_paths=["relative"])
    with pytest.raises(ProvisioningError, match="positive number of seconds"):
        SandboxProvisioner(kernel_id="a", kernel_spec=spec, wall_clock=-1)


async def test_manager_option_sandboxes_a_plain_kernelspec(runtime_dir: Path) -> None:
    spec = load_kernel_spec(KERNELS / "python3")
    env = {"KERNELKIT_TEST_SESSION": os.environ["KERNELKIT_TEST_SESSION"]}
    km = AsyncKernelManager(
        kernel_spec=spec, autorestart=False, sandbox={"memory": "300M", "env": env}
    )
    async with km, km.client() as kc:
        await kc.wait_for_ready(timeout=60)
        p = sandbox(km)
        assert p.options.memory == 300 << 20
        _, out = await run(kc, "import os; print(os.getcwd())")
        assert out.strip() == str(p.work_dir)


def test_sandbox_option_is_checked() -> None:
    with pytest.raises(ProvisioningError, match="sandbox= takes"):
        AsyncKernelManager("python3", sandbox="yes please")  # type: ignore[arg-type]
    with pytest.raises(ProvisioningError, match="only local kernels can be sandboxed"):
        sandboxed_launch(
            True,
            kernel_name="k",
            provisioner_name="remote-provisioner",
            config={},
            local_provisioner="local-provisioner",
        )
    name, config = sandboxed_launch(
        {"memory": "1G"},
        kernel_name="k",
        provisioner_name="local-provisioner",
        config={"transport": "tcp", "startup_timeout": 5},
        local_provisioner="local-provisioner",
    )
    assert (name, dict(config)) == ("sandbox", {"startup_timeout": 5, "memory": "1G"})


async def test_pool_hands_out_each_sandboxed_kernel_once(runtime_dir: Path) -> None:
    env = {"KERNELKIT_TEST_SESSION": os.environ["KERNELKIT_TEST_SESSION"]}
    async with AsyncKernelPool("python3", size=1, sandbox={"env": env}) as pool:
        await pool.start()
        first = await pool.acquire(timeout=60)
        second = await pool.acquire(timeout=60)
        try:
            dirs = {sandbox(k.manager).sandbox_dir for k in (first, second)}
            assert len(dirs) == 2
            _, out = await run(first.client, "print('pooled')")
            assert out.strip() == "pooled"
        finally:
            await first.aclose()
            await second.aclose()
        assert not any(d.exists() for d in dirs)


async def test_the_multi_kernel_manager_sandboxes_one_kernel_and_not_the_other(
    runtime_dir: Path,
) -> None:
    env = {"KERNELKIT_TEST_SESSION": os.environ["KERNELKIT_TEST_SESSION"]}
    async with AsyncMultiKernelManager() as mkm:
        boxed = await mkm.start_kernel("python3", sandbox={"env": env})
        plain = await mkm.start_kernel("python3")
        assert isinstance(mkm.get_kernel(boxed).provisioner, SandboxProvisioner)
        assert not isinstance(mkm.get_kernel(plain).provisioner, SandboxProvisioner)
        async with mkm.get_kernel(boxed).client() as kc:
            await kc.wait_for_ready(timeout=60)
            _, out = await run(kc, "import os; print(os.getuid() != 0 or os.getcwd())")
            assert out.strip()


def cgroups_of(kernel_id: str) -> list[Path]:
    return list(Path("/sys/fs/cgroup").glob(f"*/kernelkit/{kernel_id}-*"))


async def test_missing_bubblewrap_is_named_and_nothing_is_left(
    sandboxed: Sandboxed, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    km = AsyncKernelManager(kernel_spec=sandboxed(), autorestart=False)
    with pytest.raises(ProvisioningError, match="'bwrap' is not installed; install bubblewrap"):
        await km.start_kernel()
    p = sandbox(km)
    assert not p.sandbox_dir.exists()
    assert not cgroups_of(km.kernel_id)
