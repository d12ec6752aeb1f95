"""Running kernels: `kernelkit ps` (and --clean), `stop`, `interrupt`, `run --existing`."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kernelkit import ConnectionInfo, write_connection_file
from kernelkit._connection import new_key
from kernelkit.cli._running import UnknownKernel, pid_alive, resolve_kernel

from .run_helpers import Running, make_env, run


def _start(env: dict[str, str]) -> tuple[Running, str]:
    """A `kernelkit start -k fake`, and its kernel id once it runs."""
    cli = Running("start", "-k", "fake", env=env)
    cli.wait_for(".json\n", timeout=60)
    path = Path(cli.out.decode().splitlines()[0])
    return cli, path.name.removeprefix("kernel-").removesuffix(".json")


def _ps_json(env: dict[str, str], *args: str) -> dict[str, dict[str, object]]:
    result = run("ps", "--json", *args, env=env)
    assert result.returncode == 0, result.stderr
    return {k["id"]: k for k in json.loads(result.stdout)["kernels"]}


def _record(env: dict[str, str], kernel_id: str) -> dict[str, object]:
    path = Path(env["JUPYTER_RUNTIME_DIR"]) / f"kernelkit-{kernel_id}.json"
    data: dict[str, object] = json.loads(path.read_text())
    return data


def test_ps_shows_live_and_dead_kernels_and_clean_removes_the_dead(tmp_path: Path) -> None:
    env = make_env(tmp_path)
    with Running("start", "-k", "fake", env=env) as a, Running("start", "-k", "fake", env=env) as b:
        a.wait_for(".json\n", timeout=60)
        b.wait_for(".json\n", timeout=60)
        a_id = Path(a.out.decode().split()[0]).stem.removeprefix("kernel-")
        b_id = Path(b.out.decode().split()[0]).stem.removeprefix("kernel-")
        # b's owner and kernel are killed outright: their files stay behind.
        kernel_pid = _record(env, b_id)["kernel_pid"]
        assert isinstance(kernel_pid, int)
        b.proc.kill()
        b.proc.wait()
        os.kill(kernel_pid, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while pid_alive(kernel_pid):  # bounded: a SIGKILLed orphan is reaped at once
            assert time.monotonic() < deadline
            time.sleep(0.05)
        listing = _ps_json(env)
        assert listing[a_id]["state"] == "idle"
        assert listing[a_id]["kernel_type"] == "spec/fake"
        assert listing[a_id]["owner_command"] == "start"
        assert listing[b_id]["state"] == "dead"
        assert listing[b_id]["owner_alive"] is False
        human = run("ps", env=env)
        assert human.returncode == 0
        assert "dead" in human.stdout
        assert "idle" in human.stdout
        assert "its process has exited" in human.stdout
        cleaned = run("ps", "--clean", env=env)
        assert "removed the files of 1 dead kernel" in cleaned.stderr
        assert list(_ps_json(env)) == [a_id]
        assert not (Path(env["JUPYTER_RUNTIME_DIR"]) / f"kernelkit-{b_id}.json").exists()
        a.signal(signal.SIGINT)  # its kernel goes with it
        assert a.finish(timeout=30) == 0


def test_stop_goes_through_the_supervising_command(tmp_path: Path) -> None:
    env = make_env(tmp_path)
    cli, kernel_id = _start(env)
    with cli:
        result = run("stop", kernel_id[:8], env=env)
        assert result.returncode == 0, result.stderr
        assert "stopped" in result.stderr
        assert cli.finish(timeout=30) == 0
    assert os.listdir(env["JUPYTER_RUNTIME_DIR"]) == []


def test_existing_runs_code_and_interrupt_stops_it(tmp_path: Path) -> None:
    env = make_env(tmp_path)
    cli, kernel_id = _start(env)
    with cli:
        first = run("run", "--existing", kernel_id, "-c", "print one", env=env)
        assert first.returncode == 0, first.stderr
        assert first.stdout == "one\n"
        with Running("run", "--existing", kernel_id, "-c", "print zz; sleep 30", env=env) as r:
            r.wait_for("zz\n", timeout=30)
            assert _ps_json(env)[kernel_id]["state"] == "busy"
            result = run("interrupt", kernel_id, env=env)
            assert result.returncode == 0, result.stderr
            assert "SIGINT to process" in result.stderr
            assert r.finish(timeout=30) == 1
            assert b"KeyboardInterrupt" in r.err
        assert _ps_json(env)[kernel_id]["state"] == "idle"  # still running
        cli.signal(signal.SIGINT)
        assert cli.finish(timeout=30) == 0


def test_stop_and_interrupt_a_kernel_kernelkit_did_not_start(tmp_path: Path) -> None:
    env = make_env(tmp_path)
    runtime = Path(env["JUPYTER_RUNTIME_DIR"])
    path = write_connection_file(
        ConnectionInfo(key=new_key()), runtime_dir=runtime, kernel_id="foreign"
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "kernelkit.testing", str(path)], start_new_session=True
    )
    try:
        deadline = time.monotonic() + 60
        while not json.loads(path.read_text())["shell_port"]:  # written back when bound
            assert time.monotonic() < deadline, "the fake kernel did not bind"
            time.sleep(0.05)
        listing = _ps_json(env)
        assert listing["foreign"]["state"] == "idle"
        assert listing["foreign"]["owner_pid"] is None
        assert run("interrupt", "foreign", env=env).returncode == 0
        result = run("stop", str(path), env=env)
        assert result.returncode == 0, result.stderr
        assert proc.wait(timeout=30) == 0
        assert not path.exists()
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def test_existing_on_dead_foreign_and_unknown_kernels(tmp_path: Path) -> None:
    env = make_env(tmp_path)
    runtime = Path(env["JUPYTER_RUNTIME_DIR"])
    # Dead: a connection file nobody listens at.
    write_connection_file(
        ConnectionInfo(
            key=new_key(), shell_port=1, iopub_port=2, stdin_port=3, control_port=4, hb_port=5
        ),
        runtime_dir=runtime,
        kernel_id="deadbeef",
    )
    result = run("run", "--existing", "deadbeef", "-c", "1", env=env)
    assert result.returncode == 3
    assert "kernel deadbeef is not answering" in result.stderr
    # Foreign: readable by others, or not a connection file at all.
    loose = tmp_path / "loose.json"
    loose.write_text(json.dumps({"ip": "127.0.0.1", "key": "k"}))
    loose.chmod(0o644)
    result = run("run", "--existing", str(loose), "-c", "1", env=env)
    assert result.returncode == 3
    assert "gives group or others access to the key" in result.stderr
    loose.chmod(0o600)
    result = run("run", "--existing", str(loose), "-c", "1", env=env)
    assert result.returncode == 3
    assert "missing key" in result.stderr
    result = run("run", "--existing", "nosuch", "-c", "1", env=env)
    assert result.returncode == 3
    assert "no running kernel 'nosuch'" in result.stderr
    assert run("stop", "nosuch", env=env).returncode == 3
    assert run("interrupt", "nosuch", env=env).returncode == 3
    # --env/--cwd are for new kernels
    result = run("run", "--existing", "deadbeef", "--env", "A=1", "-c", "1", env=env)
    assert result.returncode == 2


def test_resolve_kernel_prefixes(tmp_path: Path) -> None:
    for kernel_id in ("abc1", "abc2", "xyz"):
        write_connection_file(ConnectionInfo(key=b"k"), runtime_dir=tmp_path, kernel_id=kernel_id)
    assert resolve_kernel("xy", tmp_path).kernel_id == "xyz"
    assert resolve_kernel("abc1", tmp_path).kernel_id == "abc1"
    with pytest.raises(UnknownKernel, match="start of several kernel ids"):
        resolve_kernel("abc", tmp_path)
    with pytest.raises(UnknownKernel, match="no running kernel"):
        resolve_kernel("q", tmp_path)
    with pytest.raises(UnknownKernel, match="no connection file"):
        resolve_kernel(str(tmp_path / "kernel-none.json"), tmp_path)


def test_a_kernel_still_choosing_its_ports_is_starting(tmp_path: Path) -> None:
    env = make_env(tmp_path)
    write_connection_file(
        ConnectionInfo(key=new_key()), runtime_dir=env["JUPYTER_RUNTIME_DIR"], kernel_id="new"
    )
    assert _ps_json(env)["new"]["state"] == "starting"
    run("ps", "--clean", env=env)
    assert "new" in _ps_json(env)  # not removed: it may yet start
