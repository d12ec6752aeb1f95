"""`kernelkit run` starts its kernel before it imports the rest of the command, and its
provisioner adopts that kernel (cli/_earlyrun.py): only in the common case, never leaving
a kernel or a file behind, and with the same result as a start by the manager."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from kernelkit.cli._earlyrun import EARLY_ENV, read_run_args

from .run_helpers import Running, StartGate, make_env, run, runtime_files

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
