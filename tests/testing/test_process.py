"""The fake kernel process (``python -m kernelkit.testing``) with the real manager and client."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kernelkit._connection import ConnectionInfo, allocate_ports, new_key, write_connection_file
from kernelkit.client import AsyncKernelClient
from kernelkit.manager import AsyncKernelManager, start_new_async_kernel
from kernelkit.protocol import Message
from kernelkit.testing import fake_kernel_argv, fake_kernel_spec


@pytest.fixture(autouse=True)
def runtime_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    d = tmp_path / "runtime"
    d.mkdir(mode=0o700)
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(d))
    return d


def _pid(km: AsyncKernelManager) -> int:
    pid = getattr(km.provisioner, "pid", None)
    assert isinstance(pid, int)
    return pid


class _Process:
    """The fake kernel started by hand on a connection file (no manager)."""

    def __init__(self, path: Path, *options: str) -> None:
        argv = [a.replace("{connection_file}", str(path)) for a in fake_kernel_argv(*options)]
        self.path = path
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def wait_bound(self, timeout: float = 10) -> dict[str, object]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            info = json.loads(self.path.read_text())
            if info["shell_port"]:
                return dict(info)
            assert self.proc.poll() is None, self.proc.communicate()
            time.sleep(0.005)
        raise AssertionError("the fake kernel did not write its ports back")

    def finish(self, timeout: float = 10) -> tuple[int, str, str]:
        out, err = self.proc.communicate(timeout=timeout)
        return self.proc.returncode, out.decode(), err.decode()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.communicate()


@pytest.fixture
def connection_file(tmp_path: Path) -> Path:
    return write_connection_file(ConnectionInfo(key=new_key()), tmp_path / "kernel.json")


async def test_start_execute_interrupt_restart_shutdown() -> None:
    t0 = time.monotonic()
    km, kc = await start_new_async_kernel(kernel_spec=fake_kernel_spec(), startup_timeout=10)
    started = time.monotonic() - t0
    try:
        assert started < 3.0, f"the fake kernel took {started:.2f} s to be ready"
        outputs: list[Message] = []
        reply = await kc.execute("print hello; result 42; pid", outputs=outputs, timeout=10)
        assert reply.content["status"] == "ok"
        texts = [m.content.get("text") or m.content["data"]["text/plain"] for m in outputs[1:]]
        assert texts == ["hello\n", "42", str(_pid(km))]
        info = await kc.kernel_info(timeout=10)
        assert info.content["supported_features"] == ["kernel subshells"]

        busy = asyncio.ensure_future(kc.execute("sleep 30", timeout=10))
        await asyncio.sleep(0.2)
        await km.interrupt_kernel()
        assert (await busy).content["ename"] == "KeyboardInterrupt"

        first = _pid(km)
        await km.restart_kernel()
        assert _pid(km) != first
        await kc.wait_for_ready(timeout=10)
        reply = await kc.execute("check", timeout=10)
        assert reply.content["status"] == "ok"  # the client broke no rule
    finally:
        await kc.aclose()
        t0 = time.monotonic()
        await km.shutdown_kernel()
    assert time.monotonic() - t0 < 1.0


async def test_subshell_answers_while_main_shell_sleeps() -> None:
    km, kc = await start_new_async_kernel(kernel_spec=fake_kernel_spec(), startup_timeout=10)
    try:
        busy = asyncio.ensure_future(kc.execute("sleep 30", timeout=20))
        async with await kc.create_subshell() as sub:
            t0 = time.monotonic()
            reply = await sub.execute("result 2", timeout=10)
            assert reply.content["status"] == "ok"
            assert time.monotonic() - t0 < 1.0
        await km.interrupt_kernel()
        assert (await busy).content["ename"] == "KeyboardInterrupt"
    finally:
        await kc.aclose()
        await km.shutdown_kernel()


async def test_interrupt_by_message() -> None:
    spec = fake_kernel_spec(interrupt_mode="message")
    km, kc = await start_new_async_kernel(kernel_spec=spec, startup_timeout=10)
    try:
        busy = asyncio.ensure_future(kc.execute("sleep 30", timeout=10))
        await asyncio.sleep(0.2)
        await km.interrupt_kernel()
        assert (await busy).content["ename"] == "KeyboardInterrupt"
    finally:
        await kc.aclose()
        await km.shutdown_kernel()


async def test_ports_given_are_bound(tmp_path: Path) -> None:
    ports = allocate_ports(5)
    names = ("shell_port", "iopub_port", "stdin_port", "control_port", "hb_port")
    info = ConnectionInfo(key=new_key(), **dict(zip(names, ports, strict=True)))
    path = write_connection_file(info, tmp_path / "given.json")
    kernel = _Process(path)
    try:
        async with AsyncKernelClient.from_connection_file(path) as kc:
            await kc.wait_for_ready(timeout=10)
            await kc.shutdown(timeout=10)
        code, _, err = kernel.finish()
        assert code == 0, err
    finally:
        kernel.kill()
    assert json.loads(path.read_text())["shell_port"] == ports[0]  # not rewritten


async def test_protocol_errors_go_to_stderr_and_the_exit_code(connection_file: Path) -> None:
    kernel = _Process(connection_file)
    try:
        bound = kernel.wait_bound()
        assert os.stat(connection_file).st_mode & 0o077 == 0  # written back holding the key
        assert bound["key"]
        async with AsyncKernelClient.from_connection_file(connection_file) as kc:
            await kc.wait_for_ready(timeout=10)
            kc.transport.send("control", kc.session.msg("execute_request", {"code": "1"}))
            await kc.interrupt(timeout=10)  # on control too: after the misrouted one
            reply = await kc.execute("check", timeout=10)
            assert reply.content["ename"] == "ProtocolViolation"
            await kc.shutdown(timeout=10)
        code, _, err = kernel.finish()
    finally:
        kernel.kill()
    assert code == 70
    assert "execute_request arrived on control; it belongs on shell" in err


async def test_bad_signature_is_reported(connection_file: Path) -> None:
    kernel = _Process(connection_file)
    try:
        info = kernel.wait_bound()
        info["key"] = "not the key"
        forged = connection_file.with_name("forged.json")
        forged.write_text(json.dumps(info))
        forged.chmod(0o600)
        async with AsyncKernelClient.from_connection_file(forged) as kc:
            with pytest.raises(Exception, match="ready"):
                await kc.wait_for_ready(timeout=0.5)
        kernel.proc.send_signal(signal.SIGTERM)
        _, _, err = kernel.finish()
    finally:
        kernel.kill()
    assert "signature error on shell" in err


def test_options_at_start(connection_file: Path) -> None:
    kernel = _Process(connection_file, "--say", "hi there", "--exit-at-start", "3")
    code, out, err = kernel.finish()
    assert code == 3
    assert out == "hi there\nfake kernel: exiting at start\n"
    assert err == "fake kernel: stderr line\n"


def test_die_after(connection_file: Path) -> None:
    kernel = _Process(connection_file, "--die-after=0.2")
    code, out, _ = kernel.finish()
    assert code == 7
    assert "fake kernel: dying" in out


def test_usage_errors(connection_file: Path) -> None:
    for options in (("--bogus",), ("--die-after",), ("--start-delay", "soon")):
        code, _, err = _Process(connection_file, *options).finish()
        assert code == 2
        assert "error:" in err
    argv = [a for a in fake_kernel_argv("--help") if a != "{connection_file}"]
    result = subprocess.run(argv, capture_output=True, text=True, check=False)
    assert result.returncode == 0
    assert "--ignore-shutdown" in result.stdout


def test_import_cost_stays_small() -> None:
    # What `python -m kernelkit.testing` imports: not asyncio, not the kernelspec code.
    code = (
        "import sys, kernelkit.testing._process as p; "
        "print(sorted(m for m in ('asyncio', 'kernelkit.specs', 'jupyter_core', 'argparse') "
        "if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=os.environ
    )
    assert result.stdout.strip() == "[]"
