"""A kernel on a second host started from the host's cached listing: the owner prepares
the launch (the host's launch recipe), the nanny there starts the kernel before its own
imports, with every guarantee of a start it prepares itself."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kernelkit import KernelStartError
from kernelkit.client import AsyncKernelClient
from kernelkit.nanny import HostRegistry, SSHProvider, SSHProvisioner
from kernelkit.nanny._ssh_listing import cached_recipe
from kernelkit.provisioning import launch_provisioner
from tests.nanny.helpers import alive, gone, nanny_spec
from tests.nanny.sshhost import SecondHost, second_host, unavailable
from tests.nanny.test_ssh import _venv_with_ipykernel

pytestmark = [
    pytest.mark.integration,
    pytest.mark.timeout(180),
    pytest.mark.skipif(unavailable() is not None, reason=str(unavailable())),
]

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecondHost]:
    with second_host(tmp_path_factory.mktemp("second")) as h:
        yield h


@pytest.fixture(autouse=True)
def registered(host: SecondHost, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The host registered in a registry of the test's own; this side's runtime
    directory the test's own too (what is left there is checked)."""
    runtime = tmp_path / "runtime"
    runtime.mkdir(mode=0o700)
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(runtime))
    monkeypatch.setenv("KERNELKIT_HOSTS_DIR", str(tmp_path / "hosts"))
    HostRegistry().add(host.host)
    yield
    assert os.listdir(runtime) == []


async def _refresh() -> dict[str, Any]:
    types = await asyncio.to_thread(SSHProvider().refresh)
    return {t.name: t for t in types}


async def _start(remote_kernel: str = "python3") -> SSHProvisioner:
    p = SSHProvisioner(
        kernel_id=os.urandom(8).hex(),
        kernel_spec=nanny_spec(),
        host="second",
        remote_kernel=remote_kernel,
    )
    try:
        await launch_provisioner(p)
    except BaseException:
        await p.cleanup()
        raise
    return p


async def _run(p: SSHProvisioner, code: str) -> str:
    """What ``code`` prints in the kernel."""
    assert p.connection_info is not None
    async with AsyncKernelClient.from_connection_info(p.connection_info) as kc:
        await kc.wait_for_ready(timeout=60)
        outputs: list[Any] = []
        reply = await kc.execute(code, outputs=outputs, timeout=30)
        assert reply.content["status"] == "ok", reply.content
    return "".join(str(m.content.get("text", "")) for m in outputs)


async def _stop(p: SSHProvisioner) -> None:
    pids = [p.pid or 0, p.nanny_pid or 0]
    await p.stop(grace=1)
    await p.cleanup()
    assert await gone(pids, within=15)


def _env_kernel(types: dict[str, Any], prefix: Path) -> str:
    """The id on the host of the environment's own kernel (python3)."""
    (name,) = [
        n for n, t in types.items() if n.startswith("second/env/") and t.spec is not None
        and t.spec.argv[0].startswith(str(prefix))
    ]  # fmt: skip
    return str(name).removeprefix("second/")


def _parent(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


async def test_a_listed_kernel_is_started_by_the_nanny_first_thing(host: SecondHost) -> None:
    await _refresh()
    found = cached_recipe(host.host, "python3")
    assert found is not None
    recipe, _ = found
    p = await _start()
    try:
        assert p._started_early
        assert p.pid is not None
        assert p.pid in host.pids()  # on the host
        # The nanny's child (setpriv execs the kernel), in a session of its own.
        assert _parent(p.pid) == p.nanny_pid
        assert os.getsid(p.pid) == p.pid
        # Where the host's listing said, under this kernel's id.
        runtime = Path(recipe["connection_file"]).parent
        assert (runtime / f"kernel-{p.kernel_id}.json").exists()
        assert (await _run(p, "print(6 * 7)")).strip() == "42"
    finally:
        await _stop(p)
    assert not (runtime / f"kernel-{p.kernel_id}.json").exists()


async def test_an_environments_kernel_starts_from_its_recipe_activated(
    host: SecondHost, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    prefix = _venv_with_ipykernel(tmp_path / "hostenv")
    monkeypatch.setenv("KERNELKIT_ENV_PREFIXES", str(prefix))
    remote = _env_kernel(await _refresh(), prefix)
    p = await _start(remote)
    try:
        assert p._started_early
        text = await _run(p, "import os, sys; print(sys.prefix, os.environ.get('VIRTUAL_ENV'))")
        assert text.split() == [str(prefix), str(prefix)]
    finally:
        await _stop(p)


async def test_a_kernel_gone_from_the_host_is_a_clear_error_and_relisted(
    host: SecondHost, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    prefix = _venv_with_ipykernel(tmp_path / "goneenv")
    monkeypatch.setenv("KERNELKIT_ENV_PREFIXES", str(prefix))
    remote = _env_kernel(await _refresh(), prefix)
    assert cached_recipe(host.host, remote) is not None
    shutil.rmtree(prefix)  # removed on the host since it was listed
    pids_before = set(host.pids())
    with pytest.raises(KernelStartError, match=r"host 'second'.*refreshed"):
        await _start(remote)
    assert cached_recipe(host.host, remote) is None  # the listing is the host's again
    assert await gone(list(set(host.pids()) - pids_before - {host.sshd.pid}), within=15)


async def test_a_kernelspec_changed_on_the_host_starts_as_it_is_now(
    host: SecondHost, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Edited after the listing: the nanny starts the kernelspec as it is (not the stale
    recipe), the listing is refreshed, and the next start is prepared again."""
    prefix = _venv_with_ipykernel(tmp_path / "editedenv")
    spec_dir = prefix / "share" / "jupyter" / "kernels" / "kkedited"
    spec_dir.mkdir(parents=True)

    def write(mark: str) -> None:
        argv = [str(prefix / "bin" / "python"), "-m", "ipykernel_launcher", "-f"]
        doc = {"argv": [*argv, "{connection_file}"], "env": {"KK_MARK": mark},
               "display_name": "edited", "language": "python"}  # fmt: skip
        (spec_dir / "kernel.json").write_text(json.dumps(doc))

    write("listed")
    monkeypatch.setenv("KERNELKIT_ENV_PREFIXES", str(prefix))
    types = await _refresh()
    (name,) = [n for n in types if n.endswith("/kkedited")]
    remote = name.removeprefix("second/")
    write("edited since")
    printed = "import os; print(os.environ['KK_MARK'])"
    p = await _start(remote)
    try:
        assert not p._started_early
        assert (await _run(p, printed)).strip() == "edited since"
    finally:
        await _stop(p)
    found = cached_recipe(host.host, remote)
    assert found is not None
    assert ["set", "KK_MARK", "edited since"] in found[0]["env_changes"]
    p = await _start(remote)
    try:
        assert p._started_early
        assert (await _run(p, printed)).strip() == "edited since"
    finally:
        await _stop(p)


def test_owner_killed_while_the_kernel_starts_leaves_nothing(
    host: SecondHost, tmp_path: Path
) -> None:
    """SIGKILL to the owner the moment the nanny on the host has started the kernel it
    prepared: within the owner grace the kernel and the nanny stop, and no file is left,
    there or here."""
    asyncio.run(_refresh())
    found = cached_recipe(host.host, "python3")
    assert found is not None
    runtime = Path(found[0]["connection_file"]).parent
    out = tmp_path / "owner.json"
    owner = subprocess.Popen(
        [sys.executable, "-m", "tests.nanny.ssh_owner_script", str(out)], cwd=ROOT
    )
    try:
        deadline = time.monotonic() + 60
        while not out.exists():
            assert owner.poll() is None, "the owner script failed"
            assert time.monotonic() < deadline, "the owner script did not start"
            time.sleep(0.005)
        record = json.loads(out.read_text())
        kernel_file = runtime / f"kernel-{record['kernel_id']}.json"
        # The nanny writes the kernel's file just before it starts the kernel.
        while not kernel_file.exists():
            assert owner.poll() is None, "the owner script failed"
            assert time.monotonic() < deadline, "the nanny never started the kernel"
            time.sleep(0.002)
        owner.send_signal(signal.SIGKILL)
        owner.wait()
        deadline = time.monotonic() + 20
        while set(host.pids()) - {host.sshd.pid}:
            assert time.monotonic() < deadline, [_cmdline(p) for p in host.pids()]
            time.sleep(0.05)
        assert not kernel_file.exists()
        assert not os.path.exists(record["ctl_sock"])
    finally:
        if owner.poll() is None:
            owner.kill()
            owner.wait()
        for pid in set(host.pids()) - {host.sshd.pid}:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


async def test_the_nannys_control_port_is_forwarded_with_the_connection(
    host: SecondHost,
) -> None:
    """Tunnel: the owner picks the nanny's port on the host and forwards it on the ssh
    command line (its login nudge connects there); only the kernel's ports are forwarded
    once they are known. A refused nudge is not taken for a failure's cause."""
    p = await _start()
    try:
        assert p._control_forward is not None
        remote, local = p._control_forward
        assert p._route is not None
        assert p._route.nanny_port == remote
        assert p.nanny_address == f"tcp://127.0.0.1:{local}"
        assert (await _run(p, "print('up')")).strip() == "up"
        assert p._stderr is not None
        # ssh's lines for the nudges (the nanny was not listening yet) are no failure's
        # cause: "Connection refused" there is not the host's sshd refusing us.
        nudged = [line for line in p._stderr.tail(20) if "open failed" in line]
        said = p._describe_failure("it failed")
        assert not nudged or "no ssh server answers" not in said
    finally:
        await _stop(p)
