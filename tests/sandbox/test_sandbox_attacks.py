"""Code that attacks its sandbox, as an attacker would write it. Each attack is refused
(an error in the kernel) or stopped (the kernel dies with a KernelDied that names the
limit), and nothing the kernel started survives its shutdown."""

from __future__ import annotations

import asyncio
import os
import socket
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from kernelkit import KernelDied, KernelError
from kernelkit.client import AsyncKernelClient
from kernelkit.manager import AsyncKernelManager

from .conftest import Sandboxed, alive, needs_bwrap
from .helpers import run, sandbox, sandbox_pids

pytestmark = [pytest.mark.integration, needs_bwrap]


@asynccontextmanager
async def kernel(
    sandboxed: Sandboxed, **config: Any
) -> AsyncIterator[tuple[AsyncKernelManager, AsyncKernelClient]]:
    """A sandboxed ipykernel and a ready client; afterwards, checks that every process
    the sandbox ever held (seen at the end) is gone."""
    km = AsyncKernelManager(kernel_spec=sandboxed(**config), autorestart=False)
    seen: set[int] = set()
    try:
        await km.start_kernel()
        async with km.client() as kc:
            await kc.wait_for_ready(timeout=60)
            try:
                yield km, kc
            finally:
                if km.has_kernel:
                    seen.update(sandbox_pids(km))
    finally:
        await km.shutdown_kernel()
    assert not [pid for pid in seen if alive(pid)], "a sandboxed process survived shutdown"


async def refused(kc: AsyncKernelClient, code: str) -> str:
    """Run ``code`` (which prints what happened); the kernel must still be fine."""
    reply, out = await run(kc, code)
    assert reply.content["status"] == "ok", reply.content
    return out.strip()


async def died_of(km: AsyncKernelManager, kc: AsyncKernelClient, code: str) -> KernelError:
    """Run ``code``, which must get the kernel stopped (while it runs, or, for a limit
    seen when the request ends, right after its reply); the owner's error."""
    dead: asyncio.Future[KernelError] = asyncio.get_running_loop().create_future()

    def on_dead(error: KernelError) -> None:
        if not dead.done():
            dead.set_result(error)

    km.add_restart_callback(on_dead, "dead")
    try:
        await run(kc, code, timeout=90)
    except KernelDied as exc:
        raised: KernelError | None = exc
    else:
        raised = None
    error = await asyncio.wait_for(dead, 60)
    assert isinstance(error, KernelDied)
    assert km.last_error is error
    if raised is not None:
        assert str(raised) == str(error)
    return error


def exists(path: str) -> bool:
    return Path(path).exists()


async def test_write_outside_the_work_dir(sandboxed: Sandboxed, tmp_path: Path) -> None:
    targets = ["/etc/kernelkit-attack", "/usr/kernelkit-attack", str(tmp_path / "x")]
    targets.append(str(Path(__file__).parent / "kernelkit-attack"))
    code = (
        "import errno\n"
        f"for t in {targets!r}:\n"
        "    try:\n"
        "        open(t, 'w').write('owned')\n"
        "        print('WROTE', t)\n"
        "    except OSError as e:\n"
        "        print(errno.errorcode[e.errno])\n"
    )
    async with kernel(sandboxed) as (_, kc):
        out = await refused(kc, code)
    assert "WROTE" not in out
    # /tmp is the sandbox's own: writing there works, and never reaches the host's.
    assert not any(map(exists, targets))


async def test_read_the_home_dir(sandboxed: Sandboxed) -> None:
    secret = Path.home() / f".kernelkit-secret-{uuid.uuid4().hex}"
    secret.write_text("s3cret")
    secret.chmod(0o644)  # readable by anyone on the host: only hiding protects it
    try:
        code = (
            "import os\n"
            f"try:\n    print(open({str(secret)!r}).read())\n"
            "except OSError as e:\n    print(type(e).__name__)\n"
            f"print(os.listdir({str(Path.home())!r}))\n"
        )
        async with kernel(sandboxed) as (_, kc):
            out = await refused(kc, code)
    finally:
        secret.unlink()
    assert "s3cret" not in out
    assert out.splitlines()[0] == "FileNotFoundError"
    assert secret.name not in out


@pytest.mark.skipif(os.geteuid() != 0, reason="run by another user, the kernel is that user")
async def test_read_root_owned_secrets_when_run_by_root(sandboxed: Sandboxed) -> None:
    # Run by root, the kernel runs as nobody without capabilities: root's files stay closed.
    code = (
        "import glob\n"
        "for path in ['/etc/shadow', *glob.glob('/etc/ssh/ssh_host_*_key')]:\n"
        "    try:\n"
        "        open(path).read()\n"
        "        print('READ', path)\n"
        "    except OSError as e:\n"
        "        print(type(e).__name__)\n"
    )
    async with kernel(sandboxed) as (_, kc):
        out = await refused(kc, code)
    assert "READ" not in out
    assert out.splitlines()[0] == "PermissionError"


async def test_hide_paths_hides_more(sandboxed: Sandboxed, tmp_path: Path) -> None:
    private = Path(__file__).parent  # readable by anyone on the host; hidden on request
    code = f"import os; print(os.listdir({str(private)!r}))"
    async with kernel(sandboxed, hide_paths=[str(private)]) as (_, kc):
        out = await refused(kc, code)
    assert out == "[]"


async def test_read_another_kernels_connection_file(sandboxed: Sandboxed) -> None:
    async with kernel(sandboxed) as (victim, _):
        theirs = victim.connection_file
        assert theirs is not None
        assert theirs.is_file()
        code = (
            "import os\n"
            f"try:\n    print(open({str(theirs)!r}).read())\n"
            "except OSError as e:\n    print(type(e).__name__)\n"
            f"print(os.listdir({str(theirs.parent.parent)!r}))\n"
        )
        async with kernel(sandboxed) as (attacker, kc):
            out = await refused(kc, code)
            own = sandbox(attacker).sandbox_dir.name
    first, listing = out.splitlines()
    assert first == "FileNotFoundError"
    assert sandbox(victim).sandbox_dir.name not in listing
    assert listing == repr([own])


async def test_read_the_host_runtime_dir(sandboxed: Sandboxed, runtime_dir: Path) -> None:
    planted = runtime_dir / "kernel-someone-else.json"
    planted.write_text('{"key": "their-key"}')
    real = Path.home() / ".local" / "share" / "jupyter" / "runtime"
    code = (
        "import os\n"
        f"for d in {[str(runtime_dir), str(real), '/run/user']!r}:\n"
        "    try:\n"
        "        print(d, [n for n in os.listdir(d) if n.endswith('.json')])\n"
        "    except OSError as e:\n"
        "        print(d, type(e).__name__)\n"
    )
    async with kernel(sandboxed) as (_, kc):
        out = await refused(kc, code)
    assert "their-key" not in out
    assert "kernel-someone-else" not in out
    for line in out.splitlines():
        assert line.endswith(("FileNotFoundError", "[]")), line


async def test_connect_to_a_host_port_on_loopback(sandboxed: Sandboxed) -> None:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    port = server.getsockname()[1]
    code = (
        "import socket\n"
        "try:\n"
        f"    socket.create_connection(('127.0.0.1', {port}), timeout=5)\n"
        "    print('CONNECTED')\n"
        "except OSError as e:\n"
        "    print(type(e).__name__)\n"
    )
    try:
        async with kernel(sandboxed) as (_, kc):
            out = await refused(kc, code)
    finally:
        server.close()
    assert out == "ConnectionRefusedError"


async def test_fork_bomb(sandboxed: Sandboxed) -> None:
    bomb = (
        "import subprocess, sys, time\n"
        "subprocess.Popen([sys.executable, '-c', "
        "'import os\\nwhile True:\\n    try: os.fork()\\n    except OSError: pass'])\n"
        "time.sleep(3)\n"
    )
    async with kernel(sandboxed, processes=30) as (km, kc):
        error = await died_of(km, kc, bomb)
    assert "process limit 30 reached" in str(error)


async def test_allocate_past_the_memory_limit(sandboxed: Sandboxed) -> None:
    async with kernel(sandboxed, memory="200M") as (km, kc):
        error = await died_of(km, kc, "hog = b'x' * (400 * 2**20)")
    assert "memory limit 200 MiB reached" in str(error)


async def test_infinite_loop_past_the_wall_clock_limit(sandboxed: Sandboxed) -> None:
    async with kernel(sandboxed, wall_clock=2) as (km, kc):
        reply, _ = await run(kc, "import time; time.sleep(0.5)")  # under the limit: fine
        assert reply.content["status"] == "ok"
        error = await died_of(km, kc, "while True: pass")
    assert "wall-clock limit 2 s reached" in str(error)


async def test_cpu_time_limit(sandboxed: Sandboxed) -> None:
    async with kernel(sandboxed, cpu_time=1) as (km, kc):
        error = await died_of(km, kc, "while True: pass")
    assert "CPU time limit 1 s reached" in str(error)


async def test_write_past_the_file_size_limit(sandboxed: Sandboxed) -> None:
    code = (
        "import errno\n"
        "try:\n"
        "    open('big', 'wb').write(b'x' * 2 * 2**20)\n"
        "    print('WROTE')\n"
        "except OSError as e:\n"
        "    print(errno.errorcode[e.errno])\n"
    )
    async with kernel(sandboxed, file_size="1M") as (_, kc):
        out = await refused(kc, code)
    assert out == "EFBIG"


async def test_double_forked_child_does_not_outlive_the_kernel(sandboxed: Sandboxed) -> None:
    code = (
        "import os, time\n"
        "if os.fork() == 0:\n"
        "    os.setsid()\n"
        "    if os.fork() == 0:\n"
        "        time.sleep(300)\n"
        "    os._exit(0)\n"
        "time.sleep(0.5)\n"
        "print('forked')\n"
    )
    async with kernel(sandboxed) as (km, kc):
        out = await refused(kc, code)
        assert out == "forked"
        pids = sandbox_pids(km)
        # bubblewrap (2), the kernel, and the daemon re-parented to the namespace's init.
        assert len(pids) >= 4
        await km.shutdown_kernel()
        await asyncio.sleep(0)
    assert not [pid for pid in pids if alive(pid)]
    assert os.getpid() not in pids
