"""`kernelkit start` as a subprocess: announce, supervise (death, restart), stop on Ctrl-C."""

from __future__ import annotations

import os
import signal
from pathlib import Path

from kernelkit.client import KernelClient
from kernelkit.protocol import Message

from .run_helpers import Running, make_env, runtime_files


def kernel_pid(kc: KernelClient) -> int:
    outputs: list[Message] = []
    kc.execute("pid", outputs=outputs, timeout=10)
    return int(outputs[-1].content["data"]["text/plain"])


def test_start_supervises_until_ctrl_c(tmp_path: Path) -> None:
    env = make_env(tmp_path, "--say=supervised")
    with Running("start", "--kernel", "fake", env=env) as cli:
        cli.wait_for(".json\n", timeout=30)
        path = Path(cli.out.decode().splitlines()[0])
        assert path.parent == Path(env["JUPYTER_RUNTIME_DIR"])
        cli.wait_for("jupyter console --existing", stream="err", timeout=5)
        with KernelClient.from_connection_file(path) as kc:
            kc.wait_for_ready(timeout=10)
            first = kernel_pid(kc)
            os.kill(first, signal.SIGKILL)
            cli.wait_for("killed by signal 9", stream="err", timeout=10)
            cli.wait_for("kernel restarted", stream="err", timeout=20)
            assert b"supervised" in cli.err  # the dead kernel's last output
        # What the command promises: the connection file it printed still works (a new
        # client, as `jupyter console --existing` would be). Whether a client connected
        # across the restart keeps working is the client's and manager's business.
        with KernelClient.from_connection_file(path) as kc:
            kc.wait_for_ready(timeout=10)
            assert kernel_pid(kc) != first
        cli.signal(signal.SIGINT)
        assert cli.finish(timeout=15) == 0
    assert runtime_files(env) == []


def test_start_reports_a_kernel_that_cannot_start(tmp_path: Path) -> None:
    env = make_env(tmp_path, "--exit-at-start=3")
    with Running("start", "-k", "fake", env=env) as cli:
        assert cli.finish(timeout=30) == 3
        assert b"exit code 3" in cli.err
        assert cli.out == b""
    assert runtime_files(env) == []
