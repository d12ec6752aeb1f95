"""`kernelkit run` options: --env, --cwd, --timeout, --save-outputs, --json, piped input(),
and giving up on a kernel that goes idle after an interrupt without replying."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import pytest

from kernelkit.client import KernelClient

from .run_helpers import Running, make_env, run, runtime_files

# -- with the fake kernel (fast) --------------------------------------------------------


def test_timeout_interrupts_and_exits_124(tmp_path: Path) -> None:
    env = make_env(tmp_path)
    result = run("run", "-k", "fake", "--timeout", "0.5", "-c", "print a; sleep 30", env=env)
    assert result.returncode == 124, result.stderr
    assert result.stdout == "a\n"
    assert "ran past --timeout 0.5 s" in result.stderr
    assert "KeyboardInterrupt" in result.stderr
    assert runtime_files(env) == []


def test_timeout_stops_a_kernel_that_ignores_the_interrupt(tmp_path: Path) -> None:
    env = make_env(tmp_path, "--no-interrupt")
    t0 = time.monotonic()
    result = run("run", "-k", "fake", "--timeout", "0.5", "-c", "sleep 60", env=env)
    assert result.returncode == 124, result.stderr
    assert "did not stop after the interrupt; stopping it" in result.stderr
    assert time.monotonic() - t0 < 40  # far less than the 60 s sleep
    assert runtime_files(env) == []


def _wait_until_the_kernel_holds(runtime: Path) -> None:
    """Until the fake kernel has received the ``hold`` request (its history says so:
    "hold" leaves its shell free, so a second client may ask), bounded in time."""
    deadline = time.monotonic() + 60
    while True:  # bounded by the deadline
        files = list(runtime.glob("kernel-*.json"))
        if files and json.loads(files[0].read_text())["shell_port"]:  # ports written back
            break
        assert time.monotonic() < deadline, "the kernel did not start"
        time.sleep(0.05)
    with KernelClient.from_connection_file(files[0]) as probe:
        probe.wait_for_ready(timeout=30)
        while True:  # bounded by the deadline
            entries = probe.history(hist_access_type="tail", n=10, timeout=10).content["history"]
            if any(entry[2] == "hold" for entry in entries):
                return
            assert time.monotonic() < deadline, "the request never reached the kernel"
            time.sleep(0.05)


def test_idle_kernel_without_a_reply_after_ctrl_c_exits_130(tmp_path: Path) -> None:
    # "hold": the kernel answers nothing and stays idle, as some kernels do after an
    # interrupt; one Ctrl-C must be enough to get out.
    env = make_env(tmp_path)
    runtime = Path(env["JUPYTER_RUNTIME_DIR"])
    with Running("run", "-k", "fake", "-c", "hold", env=env) as cli:
        _wait_until_the_kernel_holds(runtime)
        t0 = time.monotonic()
        cli.signal(signal.SIGINT)
        cli.wait_for("interrupting the kernel", stream="err", timeout=10)
        assert cli.finish(timeout=30) == 130
        assert b"idle but sent no reply" in cli.err
        assert time.monotonic() - t0 < 25
        assert b"stopping the kernel" not in cli.err  # one Ctrl-C was enough
    assert runtime_files(env) == []


def test_json_lines_end_with_the_reply(tmp_path: Path) -> None:
    env = make_env(tmp_path)
    result = run("run", "-k", "fake", "--json", "-c", "print hi; result 42", env=env)
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    kinds = [(m["channel"], m["msg_type"]) for m in lines]
    assert ("iopub", "stream") in kinds
    assert ("iopub", "execute_result") in kinds
    assert kinds[-1] == ("shell", "execute_reply")
    assert lines[-1]["content"]["status"] == "ok"
    stream = next(m for m in lines if m["msg_type"] == "stream")
    assert stream["content"]["text"] == "hi\n"
    assert stream["parent_header"]["msg_type"] == "execute_request"


def test_piped_stdin_answers_input(tmp_path: Path) -> None:
    env = make_env(tmp_path)
    result = run(
        "run", "-k", "fake", "-c", "input name?; input again?", env=env, stdin="alice\nbob\n"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "name?aliceagain?bob"


def test_bad_env_and_cwd_are_usage_errors(tmp_path: Path) -> None:
    env = make_env(tmp_path)
    result = run("run", "-k", "fake", "--env", "NOVALUE", "-c", "1", env=env)
    assert result.returncode == 2
    assert "'NOVALUE' is not NAME=VALUE" in result.stderr
    result = run("run", "-k", "fake", "--cwd", str(tmp_path / "missing"), "-c", "1", env=env)
    assert result.returncode == 2
    assert "is not a directory" in result.stderr


def test_save_outputs_into_an_unwritable_place_fails_clearly(tmp_path: Path) -> None:
    env = make_env(tmp_path)
    blocker = tmp_path / "file"
    blocker.write_text("")
    result = run("run", "-k", "fake", "--save-outputs", str(blocker / "out"), "-c", "1", env=env)
    assert result.returncode == 1
    assert f"cannot create {blocker / 'out'}" in result.stderr


# -- with ipykernel ---------------------------------------------------------------------


@pytest.mark.integration
def test_env_cwd_and_eof(tmp_path: Path) -> None:
    env = make_env(tmp_path)
    workdir = tmp_path / "work"
    workdir.mkdir()
    code = (
        "import os\n"
        "print(os.getcwd(), os.environ['KK_A'], os.environ['KK_B'])\n"
        "print(input('say: '))\n"
        "try:\n    input()\nexcept EOFError:\n    print('eof')\n"
    )
    result = run(
        "run",
        "--env",
        "KK_A=1",
        "-e",
        "KK_B=x=y",
        "--cwd",
        str(workdir),
        "-c",
        code,
        env=env,
        stdin="hello\n",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"{workdir} 1 x=y\nsay: hello\neof\n"


@pytest.mark.integration
def test_save_outputs_writes_a_matplotlib_png(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib", reason="matplotlib is in the test extra")
    env = make_env(tmp_path)
    out = tmp_path / "out"
    code = (
        "import matplotlib\nmatplotlib.use('module://matplotlib_inline.backend_inline')\n"
        "import matplotlib.pyplot as plt\nplt.plot([1, 3, 2]); plt.show()\n"
        "from IPython.display import HTML, display\n"
        "display(HTML('<b>bold</b>'))\n"
        "display({'application/json': {'a': 1}}, raw=True)\n"
        "7"
    )
    result = run("run", "--save-outputs", str(out), "-c", code, env=env)
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in out.iterdir()) == ["001.png", "002.html", "003.json"]
    assert (out / "001.png").read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    assert (out / "002.html").read_text() == "<b>bold</b>"
    assert json.loads((out / "003.json").read_text()) == {"a": 1}
    assert f"saved {out / '001.png'}" in result.stderr
    assert result.stdout.endswith("7\n")


@pytest.mark.integration
def test_timeout_with_ipykernel(tmp_path: Path) -> None:
    env = make_env(tmp_path)
    code = "import time; print('go', flush=True); time.sleep(60)"
    result = run("run", "--timeout", "2", "-c", code, env=env)
    assert result.returncode == 124, result.stderr
    assert "KeyboardInterrupt" in result.stderr
    assert runtime_files(env) == []
