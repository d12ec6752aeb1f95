"""LocalProvisioner with fake kernels: ports, exit, output, shutdown, leaks."""

from __future__ import annotations

import asyncio
import io
import os
import signal
import time
from pathlib import Path

import orjson
import pytest

from kernelkit import (
    ConnectionInfo,
    KernelDied,
    KernelSpecError,
    KernelStartError,
    ProvisioningError,
)
from kernelkit.provisioning import EXIT_STATUS_UNKNOWN, LocalProvisioner
from tests.provisioning.conftest import MakeProvisioner
from tests.provisioning.helpers import (
    fake_spec,
    files_in,
    launch,
    launch_in_another_process,
    read_json,
)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _children_printed(p: LocalProvisioner) -> list[int]:
    return [int(line.split()[1]) for line in p.output_tail(50) if line.startswith("child ")]


async def _until(predicate: object, timeout: float = 5.0) -> None:
    """Wait for output to arrive (the capture reads it on the loop, as events)."""
    end = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        if time.monotonic() > end:
            raise AssertionError("condition not reached")
        await asyncio.sleep(0.01)


# ---------------------------------------------------------------- the port paths


async def test_write_back_reads_ports_the_kernel_chose(
    make_provisioner: MakeProvisioner, runtime_dir: Path
) -> None:
    p = make_provisioner(fake_spec("writeback"))
    info = await launch(p)
    assert p.port_mode == "write-back"
    assert info.ports_chosen
    assert p.connection_info == info
    on_disk = read_json(runtime_dir / "kernel-k0.json")
    assert on_disk["shell_port"] == info.shell_port
    assert info.key == on_disk["key"].encode()
    assert (runtime_dir / "kernel-k0.json").stat().st_mode & 0o777 == 0o600
    assert p.connection_file == runtime_dir / "kernel-k0.json"
    assert await p.poll() is None
    await p.cleanup()
    assert p.connection_file is None


async def test_handshake_registers_and_writes_a_connection_file(
    make_provisioner: MakeProvisioner, runtime_dir: Path
) -> None:
    p = make_provisioner(fake_spec("register", ports="handshake"))
    params = await p.pre_launch()
    reg_file = runtime_dir / "registration-k0.json"
    assert str(reg_file) in params.cmd
    reg = read_json(reg_file)
    assert isinstance(reg["registration_port"], str)  # xeus-python 0.19 needs a string
    info = await p.launch_kernel(params.cmd, env=params.env)
    assert info.ports_chosen
    assert not reg_file.exists()  # the key-bearing registration file is gone at once
    written = ConnectionInfo.from_dict(read_json(runtime_dir / "kernel-k0.json"))
    assert written == info


@pytest.mark.parametrize("action", ["register", "writeback"])
async def test_auto_accepts_either_report(make_provisioner: MakeProvisioner, action: str) -> None:
    p = make_provisioner(fake_spec(action, ports="auto"))
    info = await launch(p)
    assert p.port_mode == "auto"
    assert p.ports_source == {"register": "registration", "writeback": "write-back"}[action]
    assert info.ports_chosen


async def test_parent_ports_confirmed_by_heartbeat(make_provisioner: MakeProvisioner) -> None:
    p = make_provisioner(fake_spec("hb", ports="parent"))
    info = await launch(p)
    assert p.port_mode == "parent"
    assert p.ports_source == "heartbeat"
    assert info.ports_chosen


async def test_parent_ports_retry_after_a_bind_failure(
    make_provisioner: MakeProvisioner, tmp_path: Path
) -> None:
    marker = tmp_path / "failed-once"
    p = make_provisioner(fake_spec(f"bindfail-once:{marker}", "hb", ports="parent"))
    info = await launch(p)
    assert marker.exists()
    assert info.ports_chosen
    assert any("Address already in use" in line for line in p.output_tail())


async def test_parent_ports_give_up_after_the_retries(
    make_provisioner: MakeProvisioner, runtime_dir: Path
) -> None:
    # The kernel's first port is always taken (by us): every attempt fails to bind.
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        p = make_provisioner(fake_spec("hb", ports="parent"), bind_retries=2, port_mode="parent")
        params = await p.pre_launch()
        # Point the kernel's shell port at the taken one for every attempt.
        p._parent_ports = lambda base: base.with_ports(  # type: ignore[method-assign]
            shell_port=taken.getsockname()[1], iopub_port=0, stdin_port=0, control_port=0,
            hb_port=0,
        )  # fmt: skip
        p._prepare_files("parent")
        with pytest.raises(KernelStartError, match="after 3 attempts") as caught:
            await p.launch_kernel(params.cmd, env=params.env)
    assert caught.value.exit_code == 1
    assert files_in(runtime_dir) == []


async def test_restart_keeps_key_and_ports(make_provisioner: MakeProvisioner) -> None:
    p = make_provisioner(fake_spec("writeback"))
    first = await launch(p)
    await p.stop(grace=2)
    await p.cleanup(restart=True)
    second = await launch(p)
    assert p.port_mode == "parent"  # the old ports, confirmed by heartbeat
    assert second == first


async def test_restart_falls_back_when_the_old_ports_are_taken(
    make_provisioner: MakeProvisioner,
) -> None:
    import socket

    p = make_provisioner(fake_spec("writeback"))
    first = await launch(p)
    await p.stop(grace=2)
    await p.cleanup(restart=True)
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", first.shell_port))
        squatter.listen()
        second = await launch(p)
    assert p.port_mode == "write-back"
    assert second.key == first.key
    assert second.shell_port != first.shell_port


# ---------------------------------------------------------------- failures at start


async def test_exit_at_once_reports_code_and_output_fast(
    make_provisioner: MakeProvisioner, runtime_dir: Path
) -> None:
    p = make_provisioner(fake_spec("exit:3"))
    start = time.monotonic()
    with pytest.raises(KernelStartError) as caught:
        await launch(p)
    assert time.monotonic() - start < 1.0
    err = caught.value
    assert err.exit_code == 3
    assert err.kernel_name == "fake"
    assert "fake kernel: fatal error, giving up" in err.output_tail
    assert "fake kernel: starting" in err.output_tail
    assert "exit code 3" in str(err)
    assert "'fake'" in str(err)
    assert not p.has_process
    assert files_in(runtime_dir) == []  # no connection file with the key left behind


async def test_never_reporting_times_out_with_advice(
    make_provisioner: MakeProvisioner, runtime_dir: Path
) -> None:
    p = make_provisioner(fake_spec("silent", ports="auto"), startup_timeout=0.3)
    with pytest.raises(KernelStartError, match="neither registered") as caught:
        await launch(p)
    assert '"ports": "parent"' in str(caught.value)
    assert files_in(runtime_dir) == []
    pid = p.pid
    assert pid is not None
    assert not _alive(pid)


async def test_a_failed_start_leaks_no_fd(make_provisioner: MakeProvisioner) -> None:
    from tests.provisioning.helpers import fd_count

    warm = make_provisioner(fake_spec("exit:3", ports="auto"))
    with pytest.raises(KernelStartError):
        await launch(warm)  # first use opens zmq's context: not a leak
    before = fd_count()
    for ports in ("auto", "handshake", "write-back", "parent"):
        p = make_provisioner(fake_spec("exit:3", ports=ports))
        with pytest.raises(KernelStartError):
            await launch(p)
    # Closed zmq sockets give back their fds from zmq's reaper thread, a moment later.
    await _until(lambda: fd_count() <= before, timeout=2)


async def test_missing_program_names_kernel_and_cause(make_provisioner: MakeProvisioner) -> None:
    spec = fake_spec("writeback")
    from dataclasses import replace

    p = make_provisioner(replace(spec, argv=("no-such-kernel-binary", "{connection_file}")))
    with pytest.raises(KernelStartError, match="'no-such-kernel-binary': not found on PATH"):
        await launch(p)


async def test_empty_argv(make_provisioner: MakeProvisioner, runtime_dir: Path) -> None:
    from dataclasses import replace

    p = make_provisioner(replace(fake_spec(), argv=()))
    with pytest.raises(KernelStartError, match=r"kernel 'fake': the kernel's argv is empty"):
        await launch(p)
    assert files_in(runtime_dir) == []


async def test_unknown_port_mode_in_metadata(make_provisioner: MakeProvisioner) -> None:
    p = make_provisioner(fake_spec("writeback", ports="magic"))
    with pytest.raises(KernelSpecError, match=r"metadata\.kernelkit\.ports is 'magic'"):
        await p.pre_launch()


async def test_launch_without_pre_launch(make_provisioner: MakeProvisioner) -> None:
    p = make_provisioner(fake_spec("writeback"))
    with pytest.raises(ProvisioningError, match="call pre_launch"):
        await p.launch_kernel(["true"])


async def test_launching_twice_is_refused(make_provisioner: MakeProvisioner) -> None:
    p = make_provisioner(fake_spec("writeback"))
    await launch(p)
    with pytest.raises(ProvisioningError, match="already running"):
        await p.pre_launch()


async def test_cancelled_launch_leaves_nothing(
    make_provisioner: MakeProvisioner, runtime_dir: Path
) -> None:
    p = make_provisioner(fake_spec("silent"))
    task = asyncio.ensure_future(launch(p))
    await _until(lambda: p.pid is not None)
    pid = p.pid
    assert pid is not None
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not _alive(pid)
    assert files_in(runtime_dir) == []


# ---------------------------------------------------------------- lifetime


async def test_exit_is_noticed_as_an_event(make_provisioner: MakeProvisioner) -> None:
    p = make_provisioner(fake_spec("writeback"))
    await launch(p)
    assert p.pgid == p.pid
    assert os.getpgid(p.pid or 0) == p.pid  # its own group...
    assert os.getsid(p.pid or 0) == p.pid  # ...and its own session
    start = time.monotonic()
    await p.send_signal(signal.SIGTERM)
    assert await asyncio.wait_for(p.wait(), 2) == -signal.SIGTERM
    assert time.monotonic() - start < 0.5
    assert await p.poll() == -signal.SIGTERM
    err = p.died_error(await p.poll())
    assert err.exit_code == -signal.SIGTERM
    assert "killed by signal 15" in str(err)


async def test_death_after_start_carries_code_and_last_words(
    make_provisioner: MakeProvisioner,
) -> None:
    p = make_provisioner(fake_spec("writeback", "exit:5"))
    err: KernelStartError | KernelDied
    try:
        await launch(p)
    except KernelStartError as exc:  # the exit was seen before the written-back ports
        err = exc
    else:
        err = p.died_error(await asyncio.wait_for(p.wait(), 5))
    assert err.exit_code == 5
    assert err.output_tail[-1] == "fake kernel: fatal error, giving up"


async def test_sigterm_ignored_then_killed_within_grace(make_provisioner: MakeProvisioner) -> None:
    p = make_provisioner(fake_spec("ignore-term", "writeback"))
    await launch(p)
    start = time.monotonic()
    status = await p.stop(grace=0.5)
    elapsed = time.monotonic() - start
    assert status == -signal.SIGKILL
    assert 0.5 <= elapsed < 0.7


async def test_stop_reaches_grandchildren_in_and_out_of_the_group(
    make_provisioner: MakeProvisioner,
) -> None:
    p = make_provisioner(fake_spec("child", "setsid-child", "writeback"))
    await launch(p)
    await _until(lambda: len(_children_printed(p)) == 2)
    kids = _children_printed(p)
    assert os.getsid(kids[1]) == kids[1]  # left the kernel's session
    assert all(_alive(k) for k in kids)
    await p.stop(grace=2)
    await _until(lambda: not any(_alive(k) for k in kids), timeout=2)


async def test_kill_reaches_a_setsid_grandchild(make_provisioner: MakeProvisioner) -> None:
    p = make_provisioner(fake_spec("setsid-child", "ignore-term", "writeback"))
    await launch(p)
    await _until(lambda: len(_children_printed(p)) == 1)
    (kid,) = _children_printed(p)
    await p.kill()
    assert await asyncio.wait_for(p.wait(), 2) == -signal.SIGKILL
    await _until(lambda: not _alive(kid), timeout=2)


async def test_graceful_exit_stops_children_in_and_out_of_the_group(
    make_provisioner: MakeProvisioner,
) -> None:
    p = make_provisioner(fake_spec("child", "setsid-child", "exit-on-usr1", "writeback"))
    await launch(p)
    await _until(lambda: len(_children_printed(p)) == 2)
    kids = _children_printed(p)
    assert p.pid is not None
    await p.shutdown_requested()
    os.kill(p.pid, signal.SIGUSR1)  # the kernel exits by itself, leaving its children
    assert await asyncio.wait_for(p.wait(), 5) == 0
    # Stopped once the exit is seen (SIGTERM works on them): before any cleanup.
    start = time.monotonic()
    await _until(lambda: not any(_alive(k) for k in kids), timeout=2)
    assert time.monotonic() - start < 0.5
    await p.cleanup()


async def test_cleanup_kills_a_leftover_that_ignores_sigterm_after_a_grace(
    make_provisioner: MakeProvisioner,
) -> None:
    # The child inherits the ignored SIGTERM.
    p = make_provisioner(fake_spec("ignore-term", "setsid-child", "exit-on-usr1", "writeback"))
    await launch(p)
    await _until(lambda: len(_children_printed(p)) == 1)
    (kid,) = _children_printed(p)
    assert p.pid is not None
    await p.shutdown_requested()
    start = time.monotonic()
    os.kill(p.pid, signal.SIGUSR1)
    assert await asyncio.wait_for(p.wait(), 5) == 0
    assert _alive(kid)
    await p.cleanup()  # waits for the stop that the exit started: SIGTERM, 1 s, SIGKILL
    elapsed = time.monotonic() - start
    assert not _alive(kid)
    assert 1.0 <= elapsed < 1.5, elapsed


async def test_without_shutdown_requested_an_exit_leaves_pins_alone(
    make_provisioner: MakeProvisioner,
) -> None:
    # A crash is not a shutdown: the group is cleaned up by cleanup, as before.
    p = make_provisioner(fake_spec("child", "exit-on-usr1", "writeback"))
    await launch(p)
    await _until(lambda: len(_children_printed(p)) == 1)
    (kid,) = _children_printed(p)
    assert p.pid is not None
    os.kill(p.pid, signal.SIGUSR1)
    assert await asyncio.wait_for(p.wait(), 5) == 0
    assert _alive(kid)
    await p.cleanup()
    await _until(lambda: not _alive(kid), timeout=2)


async def test_interrupt_goes_to_the_whole_group(make_provisioner: MakeProvisioner) -> None:
    p = make_provisioner(fake_spec("child", "writeback"))
    await launch(p)
    await _until(lambda: len(_children_printed(p)) == 1)
    (kid,) = _children_printed(p)
    assert p.interrupt_mode == "signal"
    await p.send_signal(signal.SIGINT)
    # Python's default SIGINT handler raises KeyboardInterrupt in both: both exit.
    assert await asyncio.wait_for(p.wait(), 2) != 0
    await _until(lambda: not _alive(kid), timeout=2)


async def test_cleanup_kills_a_running_kernel_and_removes_its_file(
    make_provisioner: MakeProvisioner, runtime_dir: Path
) -> None:
    p = make_provisioner(fake_spec("writeback"))
    await launch(p)
    pid = p.pid
    assert pid is not None
    await p.cleanup()
    assert not _alive(pid)
    assert not p.has_process
    assert files_in(runtime_dir) == []
    assert await p.poll() == -signal.SIGKILL


async def test_parent_pid_and_spec_env_reach_the_kernel(make_provisioner: MakeProvisioner) -> None:
    spec = fake_spec("echo-env:JPY_PARENT_PID", "echo-env:FAKE_VAR", "writeback",
                     env={"FAKE_VAR": "from-${FAKE_BASE}"})  # fmt: skip
    p = make_provisioner(spec)
    await launch(p, env={"FAKE_BASE": "caller"})
    await _until(lambda: len(p.output_tail()) >= 2)
    assert f"JPY_PARENT_PID={os.getpid()}" in p.output_tail()
    assert "FAKE_VAR=from-caller" in p.output_tail()


async def test_a_complete_environment_is_not_merged_with_ours(
    make_provisioner: MakeProvisioner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KK_LAUNCHER_ONLY", "1")
    p = make_provisioner(fake_spec("echo-env:KK_LAUNCHER_ONLY", "echo-env:KK_GIVEN", "writeback"))
    await launch(p, env={"KK_GIVEN": "yes"}, inherit_env=False)
    await _until(lambda: len(p.output_tail()) >= 2)
    assert p.output_tail()[:2] == ["KK_LAUNCHER_ONLY=None", "KK_GIVEN=yes"]


async def test_independent_kernels_get_no_parent_pid(make_provisioner: MakeProvisioner) -> None:
    p = make_provisioner(fake_spec("echo-env:JPY_PARENT_PID", "writeback"), independent=True)
    await launch(p)
    await _until(lambda: bool(p.output_tail()))
    assert "JPY_PARENT_PID=None" in p.output_tail()


# ---------------------------------------------------------------- output


async def test_output_is_bounded_and_logged(
    make_provisioner: MakeProvisioner, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    log = tmp_path / "kernel.log"
    p = make_provisioner(fake_spec("spam:5000", "writeback"), output_lines=100, log_file=log)
    await launch(p)
    await _until(lambda: p.output_tail(1) == ["line 4999 " + "x" * 50])
    assert len(p.output_tail(1000)) == 100
    await p.stop(grace=2)
    await p.cleanup()
    assert log.read_text().count("\n") == 5000
    out, err = capfd.readouterr()
    assert "line 4999" not in out + err  # never on our terminal


async def test_output_can_be_echoed(make_provisioner: MakeProvisioner) -> None:
    echo = io.BytesIO()
    p = make_provisioner(fake_spec("spam:3", "writeback"), echo_output=echo)
    await launch(p)
    await _until(lambda: len(p.output_tail()) == 3)
    assert echo.getvalue().count(b"line ") == 3


# ---------------------------------------------------------------- re-attach


async def test_reattach_in_a_new_provisioner(make_provisioner: MakeProvisioner) -> None:
    spec = fake_spec("writeback")
    a = make_provisioner(spec, independent=True)
    info = await launch(a)
    saved = orjson.loads(orjson.dumps(await a.get_provisioner_info()))
    assert saved["pid"] == a.pid
    b = make_provisioner(spec)
    await b.load_provisioner_info(saved)
    assert b.has_process
    assert b.connection_info == info
    assert await b.poll() is None
    await b.terminate()
    # b is not the parent: the status is unknowable to it, but the exit is seen at once.
    assert await asyncio.wait_for(b.wait(), 2) == EXIT_STATUS_UNKNOWN
    assert await asyncio.wait_for(a.wait(), 2) == -signal.SIGTERM


async def test_reattach_from_a_new_process(
    make_provisioner: MakeProvisioner, runtime_dir: Path, tmp_path: Path
) -> None:
    log = tmp_path / "detached.log"
    saved = launch_in_another_process(runtime_dir, log)
    pid = saved["pid"]
    assert _alive(pid)  # its launcher is gone; the kernel is nobody's child of ours
    p = make_provisioner(fake_spec("writeback"))
    await p.load_provisioner_info(saved)
    assert p.has_process
    assert p.connection_info is not None
    assert p.connection_info.ports_chosen
    assert await p.poll() is None
    await p.send_signal(0)
    # Its output went to the log file too, so the tail survives the launcher.
    assert p.output_tail() == ["JPY_PARENT_PID=None"]
    await p.send_signal(signal.SIGTERM)
    start = time.monotonic()
    assert await asyncio.wait_for(p.wait(), 2) == EXIT_STATUS_UNKNOWN
    assert time.monotonic() - start < 0.5
    await p.cleanup()
    assert not _alive(pid)
    assert files_in(runtime_dir) == []  # the connection file it left is removed too


async def test_reattach_to_a_kernel_that_is_gone(make_provisioner: MakeProvisioner) -> None:
    spec = fake_spec("writeback")
    a = make_provisioner(spec)
    await launch(a)
    saved = await a.get_provisioner_info()
    await a.stop(grace=2)
    await a.cleanup()
    b = make_provisioner(spec)
    await b.load_provisioner_info(saved)
    assert not b.has_process
    assert await b.poll() == EXIT_STATUS_UNKNOWN


@pytest.mark.parametrize(
    ("info", "message"),
    [
        ({}, "'kernel_id' must be a non-empty string"),
        ({"kernel_id": "x", "pid": "12"}, "'pid' must be an integer"),
        ({"kernel_id": "x", "connection_info": []}, "'connection_info' must be an object"),
        ({"kernel_id": "x", "connection_file": 3}, "'connection_file' must be a path"),
    ],
)
async def test_reattach_rejects_bad_info(
    make_provisioner: MakeProvisioner, info: dict[str, object], message: str
) -> None:
    p = make_provisioner(fake_spec())
    with pytest.raises(ProvisioningError, match=message):
        await p.load_provisioner_info(info)


# ---------------------------------------------------------------- many cycles


async def test_concurrent_launches_share_one_watcher(
    make_provisioner: MakeProvisioner, runtime_dir: Path
) -> None:
    provs = [make_provisioner(fake_spec("writeback" if i % 2 else "register", ports="auto"))
             for i in range(16)]  # fmt: skip
    infos = await asyncio.gather(*(launch(p) for p in provs))
    ports = [i.port(c) for i in infos for c in ("shell", "iopub", "stdin", "control", "hb")]
    assert len(set(ports)) == len(ports)  # the kernels chose them: no collision possible
    assert {p.ports_source for p in provs} == {"registration", "write-back"}
    await asyncio.gather(*(p.stop(grace=2) for p in provs))
    await asyncio.gather(*(p.cleanup() for p in provs))
    assert files_in(runtime_dir) == []


async def test_start_stop_cycles_leave_nothing(
    make_provisioner: MakeProvisioner, runtime_dir: Path
) -> None:
    from tests.provisioning.helpers import fd_count

    cycles = int(os.environ.get("KERNELKIT_STRESS_CYCLES", "50"))
    spec = fake_spec("writeback")
    warm = make_provisioner(spec)
    await launch(warm)
    await warm.stop(grace=2)
    await warm.cleanup()
    fds = fd_count()
    pids = []
    start = time.monotonic()
    for _ in range(cycles):
        p = make_provisioner(spec)
        await launch(p)
        pids.append(p.pid)
        await p.stop(grace=2)
        await p.cleanup()
    assert time.monotonic() - start < max(20.0, cycles * 0.25)
    assert fd_count() == fds
    assert files_in(runtime_dir) == []
    assert not [pid for pid in pids if pid is not None and _alive(pid)]
