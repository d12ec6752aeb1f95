"""AsyncKernelManager with the fake kernel: lifecycle, clients, faults, auto-restart."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import time
from pathlib import Path

import pytest

from kernelkit import (
    KernelDied,
    KernelError,
    KernelSpecError,
    KernelStartError,
    KernelTimeout,
    ManagerError,
    NoSuchKernel,
)
from kernelkit.manager import AsyncKernelManager, start_new_async_kernel
from kernelkit.protocol import Message
from kernelkit.specs import KernelSpec
from kernelkit.transport import ZMQTransport

from .conftest import (
    MakeManager,
    fake_spec,
    fd_count,
    files_in,
    gone,
    proc_cwd,
    proc_file,
    real_path,
    settled_fd_count,
)


def pid_of(km: AsyncKernelManager) -> int:
    pid = getattr(km.provisioner, "pid", None)
    assert isinstance(pid, int)
    return pid


async def ready_client(km: AsyncKernelManager, **kw: float) -> object:
    kc = km.client(**kw)  # type: ignore[arg-type]
    await kc.start()
    await kc.wait_for_ready(timeout=10)
    return kc


# -- lifecycle --------------------------------------------------------------------------


async def test_start_execute_shutdown_leaves_nothing(
    make_manager: MakeManager, runtime_dir: Path, baseline_fds: int
) -> None:
    fds = baseline_fds
    km = make_manager()
    assert km.state == "new"
    await km.start_kernel()
    assert km.state == "running"
    assert await km.is_alive()
    assert km.connection_file is not None
    assert km.connection_file.parent == runtime_dir
    assert km.connection_info is not None
    assert km.connection_info.ports_chosen
    pid = pid_of(km)
    async with km.client() as kc:
        await kc.wait_for_ready(timeout=10)
        outputs: list[Message] = []
        reply = await kc.execute("print hello", outputs=outputs, timeout=10)
        assert reply.content["status"] == "ok"
        assert [m.content.get("text") for m in outputs if m.msg_type == "stream"] == ["hello\n"]
    t0 = time.monotonic()
    await km.shutdown_kernel()
    elapsed = time.monotonic() - t0
    assert elapsed < 1.0, f"a kernel that answers shutdown_request took {elapsed:.3f} s"
    assert km.state == "stopped"
    assert not await km.is_alive()
    assert gone(pid)
    assert files_in(runtime_dir) == []
    assert await settled_fd_count(fds) <= fds


async def test_async_with_starts_and_stops(runtime_dir: Path) -> None:
    async with AsyncKernelManager(kernel_spec=fake_spec()) as km:
        pid = pid_of(km)
        assert await km.is_alive()
    assert km.state == "stopped"
    assert gone(pid)
    assert files_in(runtime_dir) == []


async def test_start_new_async_kernel_returns_a_ready_client() -> None:
    km, kc = await start_new_async_kernel(kernel_spec=fake_spec(), startup_timeout=10)
    try:
        assert kc.kernel_info_reply is not None
        reply = await kc.execute("result 42", timeout=10)
        assert reply.content["status"] == "ok"
    finally:
        await kc.aclose()
        await km.shutdown_kernel()
    assert km.state == "stopped"


async def test_two_clients_get_their_own_replies(make_manager: MakeManager) -> None:
    km = make_manager()
    await km.start_kernel()
    async with km.client() as a, km.client() as b:
        await asyncio.gather(a.wait_for_ready(timeout=10), b.wait_for_ready(timeout=10))
        out_a: list[Message] = []
        out_b: list[Message] = []
        ra, rb = await asyncio.gather(
            a.execute("result from-a", outputs=out_a, timeout=10),
            b.execute("result from-b", outputs=out_b, timeout=10),
        )
        assert ra.parent_id != rb.parent_id
        assert [m.content["data"]["text/plain"] for m in out_a[1:]] == ["from-a"]
        assert [m.content["data"]["text/plain"] for m in out_b[1:]] == ["from-b"]


async def test_misuse_is_a_manager_error(make_manager: MakeManager) -> None:
    km = make_manager()
    with pytest.raises(ManagerError, match="call start_kernel"):
        km.client()
    with pytest.raises(ManagerError, match="not running"):
        await km.interrupt_kernel()
    with pytest.raises(ManagerError, match="call start_kernel"):
        await km.restart_kernel()
    await km.shutdown_kernel()  # nothing to do
    await km.start_kernel()
    with pytest.raises(ManagerError, match="already running"):
        await km.start_kernel()
    with pytest.raises(ManagerError, match="disagree"):
        AsyncKernelManager("other", kernel_spec=fake_spec())


async def test_start_again_after_shutdown(make_manager: MakeManager) -> None:
    km = make_manager()
    await km.start_kernel()
    first = pid_of(km)
    await km.shutdown_kernel()
    with pytest.raises(ManagerError, match="stopped"):
        km.client()
    await km.start_kernel()
    assert pid_of(km) != first
    async with km.client() as kc:
        await kc.wait_for_ready(timeout=10)


async def test_env_cwd_and_extra_arguments_are_kept_for_restarts(
    make_manager: MakeManager, tmp_path: Path
) -> None:
    km = make_manager()
    await km.start_kernel(env={"FAKE_VAR": "x"}, cwd=str(tmp_path), extra_arguments=["--say=extra"])
    await km.restart_kernel()
    pid = pid_of(km)
    assert proc_cwd(pid) == real_path(tmp_path)
    assert b"FAKE_VAR=x" in proc_file(pid, "environ").split(b"\0")
    assert b"--say=extra" in proc_file(pid, "cmdline")


# -- shutdown escalation ----------------------------------------------------------------


async def test_kernel_ignoring_shutdown_and_sigterm_is_gone_within_wait_time(
    make_manager: MakeManager, runtime_dir: Path
) -> None:
    wait_time = 1.0
    km = make_manager("--ignore-shutdown", "--ignore-term", shutdown_wait_time=wait_time)
    await km.start_kernel()
    pid = pid_of(km)
    await asyncio.sleep(0.2)  # let it install its SIGTERM handler
    t0 = time.monotonic()
    await km.shutdown_kernel()
    elapsed = time.monotonic() - t0
    assert elapsed <= wait_time + 0.2, elapsed
    assert elapsed >= wait_time - 0.05  # it did wait before killing
    assert gone(pid)
    assert files_in(runtime_dir) == []


async def test_now_skips_the_request(make_manager: MakeManager) -> None:
    km = make_manager("--ignore-shutdown", "--ignore-term", shutdown_wait_time=5.0)
    await km.start_kernel()
    pid = pid_of(km)
    t0 = time.monotonic()
    await km.shutdown_kernel(now=True)
    assert time.monotonic() - t0 < 0.5
    assert gone(pid)


async def test_shutdown_of_a_busy_kernel_interrupts_it_first(make_manager: MakeManager) -> None:
    km = make_manager(shutdown_wait_time=10.0)
    await km.start_kernel()
    async with km.client() as kc:
        await kc.wait_for_ready(timeout=10)
        busy = asyncio.ensure_future(kc.execute("sleep 30"))
        await asyncio.sleep(0.2)
        t0 = time.monotonic()
        await km.shutdown_kernel()
        assert time.monotonic() - t0 < 2.0
        reply = await busy  # interrupted before the kernel went away
        assert reply.content["ename"] == "KeyboardInterrupt"


# -- interrupt --------------------------------------------------------------------------


async def test_interrupt_by_signal(make_manager: MakeManager) -> None:
    km = make_manager()
    await km.start_kernel()
    async with km.client() as kc:
        await kc.wait_for_ready(timeout=10)
        busy = asyncio.ensure_future(kc.execute("sleep 30", timeout=10))
        await asyncio.sleep(0.3)
        t0 = time.monotonic()
        await km.interrupt_kernel()
        reply = await busy
        assert time.monotonic() - t0 < 1.0
        assert reply.content["ename"] == "KeyboardInterrupt"
        assert await km.is_alive()


async def test_interrupt_by_message(make_manager: MakeManager) -> None:
    spec = fake_spec(interrupt_mode="message")
    km = make_manager(spec=spec)
    await km.start_kernel()
    await km.interrupt_kernel()  # the fake kernel answers interrupt_request
    assert await km.is_alive()


# -- bad input --------------------------------------------------------------------------


async def test_missing_kernel_name_lists_the_available_ones(make_manager: MakeManager) -> None:
    km = AsyncKernelManager("no-such-kernel-here")
    with pytest.raises(NoSuchKernel, match="no-such-kernel-here") as info:
        await km.start_kernel()
    assert "available:" in str(info.value)
    assert km.state == "new"


@pytest.mark.parametrize(
    ("argv", "match"),
    [
        ((), "argv is empty"),
        (("/nonexistent/bin/kernel", "{connection_file}"), "no such file"),
        (("no-such-kernel-binary-xyz", "{connection_file}"), "not found on PATH"),
    ],
)
async def test_bad_argv_is_a_clear_start_error(
    argv: tuple[str, ...], match: str, runtime_dir: Path
) -> None:
    fds = fd_count()
    spec = KernelSpec(
        name="broken", resource_dir=runtime_dir, argv=argv, display_name="B", language="x"
    )
    km = AsyncKernelManager(kernel_spec=spec)
    with pytest.raises(KernelStartError, match=match) as info:
        await km.start_kernel()
    assert "'broken'" in str(info.value)
    assert km.state == "new"
    assert not km.has_kernel
    assert files_in(runtime_dir) == []
    assert await settled_fd_count(fds) <= fds


async def test_spec_with_problems_is_refused(runtime_dir: Path) -> None:
    spec = KernelSpec(
        name="sick",
        resource_dir=runtime_dir,
        argv=("x",),
        display_name="S",
        language="x",
        problems=("kernel.json: argv[0] 'x' not found",),
    )
    with pytest.raises(KernelSpecError, match="argv"):
        await AsyncKernelManager(kernel_spec=spec).start_kernel()


async def test_kernel_exiting_at_once_reports_code_and_output(
    make_manager: MakeManager, runtime_dir: Path
) -> None:
    fds = fd_count()
    km = make_manager("--exit-at-start=3")
    t0 = time.monotonic()
    with pytest.raises(KernelStartError) as info:
        await km.start_kernel()
    assert time.monotonic() - t0 < 5
    err = info.value
    assert err.exit_code == 3
    assert err.kernel_name == "fake"
    assert "fake kernel: exiting at start" in err.output_tail
    assert "exit code 3" in str(err)
    assert km.state == "new"
    assert files_in(runtime_dir) == []
    assert await settled_fd_count(fds) <= fds


async def test_kernel_that_never_answers_times_out_and_is_cleaned_up(
    runtime_dir: Path, baseline_fds: int
) -> None:
    fds = baseline_fds
    t0 = time.monotonic()
    with pytest.raises(KernelTimeout, match="did not become ready within 1 s"):
        await start_new_async_kernel(
            kernel_spec=fake_spec("--mute", "--say=muted"), startup_timeout=1
        )
    assert time.monotonic() - t0 < 3
    assert files_in(runtime_dir) == []
    assert await settled_fd_count(fds) <= fds


async def test_kernel_dying_before_ready_is_a_start_error() -> None:
    with pytest.raises(KernelStartError, match="died before it was ready") as info:
        await start_new_async_kernel(
            kernel_spec=fake_spec("--mute", "--die-after=0.3"), startup_timeout=10
        )
    assert info.value.exit_code == 7
    assert "fake kernel: dying" in info.value.output_tail


# -- death and auto-restart -------------------------------------------------------------


@pytest.mark.parametrize("timeout", [None, 20.0])
async def test_sigkill_during_execute_fails_within_a_second(
    make_manager: MakeManager, timeout: float | None
) -> None:
    km = make_manager("--say=kernel-output", autorestart=False)
    dead: list[KernelError] = []
    dead_event = asyncio.Event()
    km.add_restart_callback(dead.append, "dead")
    km.add_restart_callback(lambda e: dead_event.set(), "dead")
    await km.start_kernel()
    async with km.client() as kc:
        await kc.wait_for_ready(timeout=10)
        busy = asyncio.ensure_future(kc.execute("sleep 30", timeout=timeout))
        await asyncio.sleep(0.2)
        t0 = time.monotonic()
        os.kill(pid_of(km), signal.SIGKILL)
        with pytest.raises(KernelDied) as info:
            await busy
        assert time.monotonic() - t0 < 1.0
    err = info.value
    assert err.exit_code == -9
    assert "kernel-output" in err.output_tail
    assert "killed by signal 9" in str(err)
    await asyncio.wait_for(dead_event.wait(), 5)
    assert km.state == "dead"
    assert km.last_error is err
    assert dead == [err]
    # A client made now fails at once with the same error.
    kc2 = km.client()
    await kc2.start()
    with pytest.raises(KernelDied):
        await kc2.kernel_info()
    await kc2.aclose()


async def test_auto_restart_begins_at_once_and_clients_keep_working(
    make_manager: MakeManager, runtime_dir: Path
) -> None:
    died: list[float] = []
    restarted = asyncio.Event()
    km = make_manager(
        on_died=lambda e: died.append(time.monotonic()),
        on_restarted=lambda e: restarted.set(),
    )
    await km.start_kernel()
    first = pid_of(km)
    info = km.connection_info
    async with km.client() as kc:
        await kc.wait_for_ready(timeout=10)
        t0 = time.monotonic()
        os.kill(first, signal.SIGKILL)
        await asyncio.wait_for(restarted.wait(), 10)
        assert died
        assert died[0] - t0 < 0.2
        assert pid_of(km) != first
        assert gone(first)
        assert km.connection_info == info  # same ports: the client follows by itself
        await kc.wait_for_ready(timeout=10)
        reply = await kc.execute("result again", timeout=10)
        assert reply.content["status"] == "ok"
    assert km.state == "running"
    assert files_in(runtime_dir) == [f"kernel-{km.kernel_id}.json"]


async def test_restart_limit_then_dead(make_manager: MakeManager, runtime_dir: Path) -> None:
    events: list[str] = []
    dead = asyncio.Event()
    km = make_manager("--die-after=0.4", restart_limit=2)
    km.add_restart_callback(lambda e: events.append("died"), "died")
    km.add_restart_callback(lambda e: events.append("restart"), "restart")
    km.add_restart_callback(lambda e: (events.append("dead"), dead.set()), "dead")
    await km.start_kernel()
    await asyncio.wait_for(dead.wait(), 15)
    assert events == ["died", "restart", "died", "restart", "died", "dead"]
    assert km.state == "dead"
    assert isinstance(km.last_error, KernelDied)
    assert km.last_error.exit_code == 7
    assert "3 times in a row" in str(km.last_error)
    assert not km.has_kernel
    assert files_in(runtime_dir) == []
    # A manual restart brings it back (and it dies again: that is the kernel).
    await km.restart_kernel()
    assert km.state == "running"


async def test_callback_errors_are_logged_not_raised(
    make_manager: MakeManager, caplog: pytest.LogCaptureFixture
) -> None:
    dead = asyncio.Event()

    def bad(error: KernelError) -> None:
        raise RuntimeError("callback bug")

    km = make_manager(autorestart=False, on_died=bad, on_dead=lambda e: dead.set())
    await km.start_kernel()
    os.kill(pid_of(km), signal.SIGKILL)
    await asyncio.wait_for(dead.wait(), 5)
    assert "callback failed" in caplog.text
    km.remove_restart_callback(bad, "died")
    with pytest.raises(ManagerError, match="unknown restart event"):
        km.add_restart_callback(bad, "nope")  # type: ignore[arg-type]


async def test_manual_restart_keeps_clients_working(make_manager: MakeManager) -> None:
    km = make_manager()
    await km.start_kernel()
    first = pid_of(km)
    async with km.client() as kc:
        await kc.wait_for_ready(timeout=10)
        await km.restart_kernel()
        assert pid_of(km) != first
        assert gone(first)
        await kc.wait_for_ready(timeout=10)
        reply = await kc.execute("pid", outputs=(out := []), timeout=10)
        assert reply.content["status"] == "ok"
        assert out[-1].content["data"]["text/plain"] == str(pid_of(km))


async def test_shutdown_tells_clients(make_manager: MakeManager) -> None:
    km = make_manager()
    await km.start_kernel()
    async with km.client() as kc:
        await kc.wait_for_ready(timeout=10)
        await km.shutdown_kernel()
        with pytest.raises(KernelDied, match="shut down"):
            await kc.kernel_info()


async def test_restart_on_new_ports_takes_the_clients_along(make_manager: MakeManager) -> None:
    km = make_manager(autorestart=False)
    await km.start_kernel()
    info = km.connection_info
    assert info is not None
    async with km.client() as kc:
        await kc.wait_for_ready(timeout=10)
        transport = kc.transport
        assert isinstance(transport, ZMQTransport)
        identity = transport.identity
        await km.shutdown_kernel(restart=True)
        # Someone takes the old shell port meanwhile: the new kernel gets new ports.
        with socket.socket() as squatter:
            squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            squatter.bind((info.ip, info.shell_port))
            squatter.listen()
            await km.start_kernel()
        moved = km.connection_info
        assert moved is not None
        assert moved.shell_port != info.shell_port
        # The client reconnected, with its identity, and works.
        assert transport.connection_info == moved
        assert transport.identity == identity
        await kc.wait_for_ready(timeout=10)
        reply = await kc.execute("pid", outputs=(out := []), timeout=10)
        assert out[-1].content["data"]["text/plain"] == str(pid_of(km))
        assert reply.content["status"] == "ok"


async def test_auto_restart_on_new_ports_fails_pending_then_follows(
    make_manager: MakeManager,
) -> None:
    km = make_manager()
    squatters: list[socket.socket] = []

    def squat(error: KernelError) -> None:
        # Called once the dead kernel is gone and before the relaunch: take its hb port.
        info = km.connection_info
        assert info is not None
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((info.ip, info.hb_port))
        sock.listen()
        squatters.append(sock)

    km.add_restart_callback(squat, "died")
    restarted = asyncio.Event()
    km.add_restart_callback(lambda e: restarted.set(), "restart")
    await km.start_kernel()
    old = km.connection_info
    assert old is not None
    try:
        async with km.client() as kc:
            await kc.wait_for_ready(timeout=10)
            pending = asyncio.create_task(kc.execute("sleep 30"))
            await asyncio.sleep(0.1)
            os.kill(pid_of(km), signal.SIGKILL)
            with pytest.raises(KernelDied):
                await asyncio.wait_for(pending, 5)
            await asyncio.wait_for(restarted.wait(), 20)
            new = km.connection_info
            assert new is not None
            assert new.hb_port != old.hb_port
            await kc.wait_for_ready(timeout=10)
            reply = await kc.execute("print moved", outputs=(out := []), timeout=10)
            assert reply.content["status"] == "ok"
            assert out[-1].content["text"] == "moved\n"
    finally:
        for sock in squatters:
            sock.close()


def _environ_of(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return dict(item.decode().split("=", 1) for item in raw if b"=" in item)


@pytest.mark.parametrize("inherit_env", [True, False])
async def test_start_kernel_env_added_or_complete(
    make_manager: MakeManager, monkeypatch: pytest.MonkeyPatch, inherit_env: bool
) -> None:
    # inherit_env=False: `env` is the whole environment (an activated one), so a variable
    # of the launcher that the activation removed does not come back.
    monkeypatch.setenv("KK_LAUNCHER_ONLY", "1")
    env = {k: v for k, v in os.environ.items() if k != "KK_LAUNCHER_ONLY"}
    env["KK_ACTIVATED"] = "yes"
    km = make_manager()
    await km.start_kernel(env=env, inherit_env=inherit_env)
    try:
        seen = _environ_of(pid_of(km))
        assert seen["KK_ACTIVATED"] == "yes"
        assert ("KK_LAUNCHER_ONLY" in seen) is inherit_env
    finally:
        await km.shutdown_kernel(now=True)
