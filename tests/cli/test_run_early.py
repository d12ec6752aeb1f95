"""`kernelkit run` starts its kernel before it imports the rest of the command, and its
provisioner adopts that kernel (cli/_earlyrun.py): only in the common case, never leaving
a kernel or a file behind, and with the same result as a start by the manager."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kernelkit.cli._earlyrun import EARLY_ENV, read_run_args
from kernelkit.cli._status import EXIT_KERNEL_FAILED

from .run_helpers import (
    KERNELKIT,
    VENV_KERNELS,
    Running,
    StartGate,
    make_env,
    run,
    runtime_files,
)

pytestmark = pytest.mark.timeout(120)


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["-c", "1"], ("python3", {})),
        (["script.py"], ("python3", {})),
        (["-"], ("python3", {})),
        (["-k", "fake", "-c", "1"], ("fake", {})),
        (["--kernel=fake", "--code=1"], ("fake", {})),
        (["-kfake", "-c1"], ("fake", {})),
        (["-k", "a", "-k", "b", "-c", "1"], ("b", {})),  # the last one wins, as in click
        (
            ["-c", "1", "-e", "A=1", "--env", "B=x=y", "-eC="],
            ("python3", {"A": "1", "B": "x=y", "C": ""}),
        ),
        (["-e", "A=1", "-e", "A=2", "-c", "1"], ("python3", {"A": "2"})),
        (["-c", "-k"], ("python3", {})),  # "-k" is the code here
        (["--json", "--timeout", "5", "--startup-timeout=9", "-c", "1"], ("python3", {})),
        (["--", "-odd-name.py"], ("python3", {})),
        # Not the common case: the manager starts these.
        (["-k", "spec/python3", "-c", "1"], None),
        (["-k", "env/abc/python3", "-c", "1"], None),
        (["--server", "http://127.0.0.1:1", "-c", "1"], None),
        (["--sandbox", "-c", "1"], None),
        (["--existing", "abc", "-c", "1"], None),
        (["--cwd", "/tmp", "-c", "1"], None),
        (["notebook.ipynb"], None),
        (["a.py", "b.py"], None),
        (["--help"], None),
        (["-c"], None),  # a value is missing: the command says so
        (["-e", "NOEQUALS", "-c", "1"], None),
        (["-e", "=1", "-c", "1"], None),
        (["--save-outputs", "d", "-c", "1"], None),
        (["-x", "-c", "1"], None),
        (["-k", "", "-c", "1"], None),
    ],
)
def test_which_command_lines_start_early(
    args: list[str], expected: tuple[str, dict[str, str]] | None
) -> None:
    assert read_run_args(args) == expected


# prctl(PR_GET_PDEATHSIG): 9 when the kernel was started early (it dies with the
# command), 0 when the manager started it.
_PDEATHSIG = (
    "import ctypes; s = ctypes.c_int(); ctypes.CDLL(None).prctl(2, ctypes.byref(s)); "
    "print('pdeathsig', s.value)"
)


@pytest.mark.integration
@pytest.mark.parametrize("early", [True, False], ids=["early", "by-the-manager"])
def test_run_adopts_the_kernel_it_started_early(tmp_path: Path, early: bool) -> None:
    env = make_env(tmp_path)
    env[EARLY_ENV] = "1" if early else "0"
    env["KK_MARK"] = "seen"
    code = _PDEATHSIG + "; import os; print(os.environ['KK_MARK'], os.environ['KK_EXTRA'])"
    proc = run("run", "-c", code, "-e", "KK_EXTRA=1", env=env)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines == [f"pdeathsig {9 if early else 0}", "seen 1"]
    assert runtime_files(env) == []


def _processes_in(runtime: str) -> list[int]:
    """Processes whose environment names ``runtime`` as their runtime directory."""
    found = []
    needle = f"JUPYTER_RUNTIME_DIR={runtime}\0".encode()
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            environ = Path(f"/proc/{entry}/environ").read_bytes()
        except OSError:
            continue
        if needle in environ + b"\0":
            found.append(int(entry))
    return found


def _none_left(runtime: str, within: float = 10) -> list[int]:
    deadline = time.monotonic() + within
    while (left := _processes_in(runtime)) and time.monotonic() < deadline:
        time.sleep(0.05)
    return left


def test_a_kernel_the_command_never_uses_is_stopped(tmp_path: Path) -> None:
    # Early start, then the command rejects its arguments (code and a file): the kernel
    # started early goes, with its file.
    env = make_env(tmp_path)
    proc = run("run", "-k", "fake", "-c", "1", str(tmp_path / "also.py"), env=env)
    assert proc.returncode == 2, proc.stderr
    assert "either" in proc.stderr
    assert _none_left(env["JUPYTER_RUNTIME_DIR"]) == []
    assert runtime_files(env) == []


def test_an_early_kernel_for_an_unknown_name_leaves_nothing(tmp_path: Path) -> None:
    env = make_env(tmp_path)
    proc = run("run", "-k", "no-such-kernel", "-c", "1", env=env)
    assert proc.returncode != 0
    assert "no-such-kernel" in proc.stderr
    assert runtime_files(env) == []


def test_an_early_kernel_dies_with_a_killed_command(tmp_path: Path) -> None:
    with StartGate(tmp_path) as gate:
        env = make_env(tmp_path, gate.option)
        with Running("run", "-k", "fake", "-c", "1", env=env) as cli:
            # The kernel runs (held at the gate, before its ports), the command waits.
            deadline = time.monotonic() + 30
            while not set(_processes_in(env["JUPYTER_RUNTIME_DIR"])) - {cli.proc.pid}:
                assert time.monotonic() < deadline, "the kernel did not start"
                time.sleep(0.05)
            time.sleep(0.5)
            cli.signal(signal.SIGKILL)
            cli.proc.wait(timeout=10)
        assert _none_left(env["JUPYTER_RUNTIME_DIR"]) == []


def _python3_spec_with(tmp_path: Path, name: str, provisioner_config: dict[str, object]) -> None:
    """This venv's python3 kernelspec as ``name``, with options for its provisioner."""
    spec = json.loads((VENV_KERNELS / "python3" / "kernel.json").read_text())
    spec["argv"][0] = sys.executable
    spec["metadata"]["kernel_provisioner"] = {
        "provisioner_name": "local-provisioner",
        "config": provisioner_config,
    }
    directory = tmp_path / "jupyter" / "kernels" / name
    directory.mkdir(parents=True)
    (directory / "kernel.json").write_text(json.dumps(spec))


@pytest.mark.integration
@pytest.mark.parametrize("early", [True, False], ids=["early", "by-the-manager"])
def test_a_spec_with_provisioner_options_gets_them(tmp_path: Path, early: bool) -> None:
    # independent: no JPY_PARENT_PID, no death with the command (the early start gives
    # both, and must not be what runs).
    env = make_env(tmp_path)
    env[EARLY_ENV] = "1" if early else "0"
    _python3_spec_with(tmp_path, "alone", {"independent": True})
    code = _PDEATHSIG + "; import os; print(os.environ.get('JPY_PARENT_PID'))"
    proc = run("run", "-k", "alone", "-c", code, env=env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["pdeathsig 0", "None"]
    assert runtime_files(env) == []


@pytest.mark.parametrize("config", [{"transport": "bogus"}, {"port_mode": "bogus"}])
def test_a_spec_whose_provisioner_options_are_wrong_leaves_nothing(
    tmp_path: Path, config: dict[str, object]
) -> None:
    env = make_env(tmp_path)
    _python3_spec_with(tmp_path, "wrong", config)
    proc = run("run", "-k", "wrong", "-c", "1", env=env)
    assert proc.returncode == EXIT_KERNEL_FAILED, proc.stderr
    assert "bogus" in proc.stderr
    assert _none_left(env["JUPYTER_RUNTIME_DIR"]) == []
    assert runtime_files(env) == []


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP], ids=["TERM", "HUP"])
def test_a_signal_before_the_command_handles_signals_leaves_nothing(
    tmp_path: Path, signum: int
) -> None:
    # The command reads its code from stdin (still open): the early kernel runs, and the
    # command has no signal handlers yet. It ends as a command without an early start
    # would (killed by the signal), and takes the kernel and its file with it.
    env = make_env(tmp_path)
    runtime = env["JUPYTER_RUNTIME_DIR"]
    cli = subprocess.Popen(
        [str(KERNELKIT), "run", "-k", "fake", "-"],
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while not (set(_processes_in(runtime)) - {cli.pid} and runtime_files(env)):
            assert time.monotonic() < deadline, "the kernel did not start"
            time.sleep(0.05)
        cli.send_signal(signum)
        assert cli.wait(timeout=30) == -signum
    finally:
        if cli.poll() is None:
            cli.kill()
            cli.wait()
        assert cli.stdin is not None
        cli.stdin.close()
    assert _none_left(runtime) == []
    assert runtime_files(env) == []


# Ctrl-C just as the early kernel's process is made (right after its spawn returns, the
# process started, before the kernel is recorded).
_CTRL_C_IN_SPAWN = """
import os, signal
import kernelkit.nanny._first as first

spawn = first._spawn

def interrupted(*args, **kwargs):
    pid = spawn(*args, **kwargs)
    print(pid, flush=True)
    os.kill(os.getpid(), signal.SIGINT)
    return pid

first._spawn = interrupted
from kernelkit.cli._earlyrun import start_early
start_early(["-k", "fake", "-c", "1"])
print("not interrupted", flush=True)
"""


def test_ctrl_c_while_the_early_kernel_starts_leaves_nothing(tmp_path: Path) -> None:
    env = make_env(tmp_path)
    proc = subprocess.run(
        [sys.executable, "-c", _CTRL_C_IN_SPAWN],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert "KeyboardInterrupt" in proc.stderr, proc.stderr
    assert "not interrupted" not in proc.stdout
    assert _none_left(env["JUPYTER_RUNTIME_DIR"]) == []
    assert runtime_files(env) == []


@pytest.mark.parametrize(
    ("script", "error"),
    [
        ("#!/nonexistent/python3\nprint('hi')\n", "#! interpreter is missing"),
        ("echo started by sh >&2; exit 7\n", "Exec format error"),
    ],
    ids=["missing-interpreter", "no-interpreter-line"],
)
def test_a_kernel_that_cannot_be_executed_fails_as_without_an_early_start(
    tmp_path: Path, script: str, error: str
) -> None:
    env = make_env(tmp_path)
    program = tmp_path / "kernel-program"
    program.write_text(script)
    program.chmod(0o755)
    directory = tmp_path / "jupyter" / "kernels" / "noexec"
    directory.mkdir(parents=True)
    spec = {
        "argv": [str(program), "-f", "{connection_file}"],
        "display_name": "noexec",
        "language": "python",
        "metadata": {"kernelkit": {"ports": "write-back"}},
    }
    (directory / "kernel.json").write_text(json.dumps(spec))
    results = []
    for early in ("1", "0"):
        env[EARLY_ENV] = early
        proc = run("run", "-k", "noexec", "-c", "1", env=env)
        results.append((proc.returncode, proc.stdout, proc.stderr))
        assert error in proc.stderr
        assert runtime_files(env) == []
    assert results[0] == results[1]
