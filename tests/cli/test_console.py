"""`kernelkit console` as a person uses it: in a terminal (tmux), keys in, screen out."""

from __future__ import annotations

import json
import shlex
import signal
import time
from pathlib import Path

import pytest

from .run_helpers import KERNELKIT, Running, StartGate, make_env, run
from .tmux_helpers import Tmux, need_tmux

pytestmark = pytest.mark.timeout(180)


def _env(tmp_path: Path, *fake_options: str) -> dict[str, str]:
    env = make_env(tmp_path, *fake_options)
    env["JUPYTER_DATA_DIR"] = str(tmp_path / "data")  # the local history file goes here
    return env


def _console(*args: str) -> str:
    command = shlex.join([str(KERNELKIT), "console", *args])
    return f"{command}; echo EXIT=$?; sleep 600"


def _runtime(env: dict[str, str]) -> list[str]:
    return sorted(p.name for p in Path(env["JUPYTER_RUNTIME_DIR"]).iterdir())


def test_a_session_with_the_fake_kernel(tmp_path: Path) -> None:
    env = _env(tmp_path)
    with Tmux(_console("-k", "fake"), env=env) as term:
        term.wait_for("In [1]:")
        assert "Ctrl-D leaves and stops it" in term.screen()
        term.wait_for("(started by this console)")  # the prompt shows before it
        assert any(name.startswith("kernelkit-") for name in _runtime(env))  # for ps
        term.type("print hello")
        term.send("Enter")
        term.wait_for("In [2]:")
        term.type("result 42")
        term.send("Enter")
        screen = term.wait_for("In [3]:")
        assert "hello" in screen
        assert "Out[2]: 42" in screen
        # Completion from the kernel: "resu" + Tab completes the command word.
        term.type("resu")
        term.send("Tab")
        term.wait_for("In [3]: result")
        term.send("C-u")
        # Multi-line input: the kernel says a trailing backslash is incomplete.
        term.type("print a \\")
        term.send("Enter")
        term.wait_for("...:")
        term.send("C-c")  # clears the input, back to a fresh prompt
        term.wait_for("In [3]:", count=2)
        # input() is asked at the terminal.
        term.type("input name?")
        term.send("Enter")
        term.wait_for("name?")
        term.type("bob")
        term.send("Enter")
        screen = term.wait_for("In [4]:")
        assert "bob" in screen.split("name?")[-1]
        # Ctrl-C interrupts running code.
        term.type("print slow; sleep 60")
        term.send("Enter")
        term.wait_for("slow")
        term.send("C-c")
        screen = term.wait_for("In [5]:", timeout=30)
        assert "KeyboardInterrupt" in screen
        # Errors show their traceback.
        term.type("error ValueError nope")
        term.send("Enter")
        screen = term.wait_for("In [6]:")
        assert "ValueError: nope" in screen
        term.send("C-d")
        screen = term.wait_for("EXIT=0")
        assert "shutting the kernel down" in screen
    assert _runtime(env) == []


def test_keys_typed_ahead_go_to_the_next_input(tmp_path: Path) -> None:
    env = _env(tmp_path)
    with Tmux(_console("-k", "fake"), env=env) as term:
        term.wait_for("In [1]:")
        # All at once: each Enter is decided by the kernel while the next keys arrive.
        term.send("print first", "Enter", "print second", "Enter", "result 3", "Enter")
        screen = term.wait_for("In [4]:")
        assert "In [1]: print first\nfirst\n" in screen
        assert "In [2]: print second\nsecond\n" in screen
        assert "Out[3]: 3" in screen
        term.send("C-d")
        term.wait_for("EXIT=0")


def test_code_typed_before_the_kernel_is_ready_runs_when_it_is(tmp_path: Path) -> None:
    gate = StartGate(tmp_path)
    env = _env(tmp_path, gate.option)
    with gate, Tmux(_console("-k", "fake"), env=env) as term:
        # The prompt shows at once; the bottom bar says the kernel is starting (it may
        # be drawn a moment after the prompt).
        screen = term.wait_for("starting kernel fake...")
        assert "In [1]:" in screen
        assert "(started by this console)" not in screen
        term.type("print early")
        term.send("Enter")
        term.wait_for("waiting for the kernel to start")  # typed before it was ready
        gate.open()
        screen = term.wait_for("In [2]:")
        assert "In [1]: print early\n" in screen
        assert "early\n" in screen.split("print early")[-1]
        assert "starting kernel fake..." not in screen  # the bar is gone
        assert "(started by this console)" in screen
        term.send("C-d")
        term.wait_for("EXIT=0")
    assert _runtime(env) == []


def test_ctrl_c_stops_waiting_for_a_starting_kernel(tmp_path: Path) -> None:
    gate = StartGate(tmp_path)
    env = _env(tmp_path, gate.option)
    with gate, Tmux(_console("-k", "fake"), env=env) as term:
        term.wait_for("In [1]:")
        term.type("print never")
        term.send("Enter")
        term.wait_for("waiting for the kernel to start")
        term.send("C-c")
        term.wait_for("not waiting: the input was not run")
        term.wait_for("In [1]:", count=2)
        gate.open()
        term.wait_for("(started by this console)", timeout=60)
        term.type("print later")
        term.send("Enter")
        screen = term.wait_for("In [2]:")
        assert "never\n" not in screen.replace("print never", "")
        assert "later\n" in screen.split("print later")[-1]
        term.send("C-d")
        term.wait_for("EXIT=0")
    assert _runtime(env) == []


def test_a_kernel_that_fails_to_start_ends_the_console(tmp_path: Path) -> None:
    env = _env(tmp_path, "--exit-at-start=5")
    with Tmux(_console("-k", "fake"), env=env) as term:
        screen = term.wait_for("EXIT=3")
        assert "cannot start kernel" in screen
        assert "exit code 5" in screen
    assert _runtime(env) == []


def test_history_is_kept_between_sessions(tmp_path: Path) -> None:
    env = _env(tmp_path)
    with Tmux(_console("-k", "fake"), env=env) as term:
        term.wait_for("In [1]:")
        term.type("print remembered")
        term.send("Enter")
        term.wait_for("In [2]:")
        term.send("C-d")
        term.wait_for("EXIT=0")
    with Tmux(_console("-k", "fake"), env=env) as term:
        # The history file is per language: it is read once the kernel says its own.
        term.wait_for("(started by this console)")
        term.send("Up")
        term.wait_for("In [1]: print remembered")
        term.send("C-u")  # Ctrl-D leaves only from an empty line
        term.send("C-d")
        term.wait_for("EXIT=0")
    assert _runtime(env) == []


def test_a_kernel_that_dies_is_reported_and_restarted(tmp_path: Path) -> None:
    env = _env(tmp_path, "--say=dying-words")
    with Tmux(_console("-k", "fake"), env=env) as term:
        term.wait_for("In [1]:")
        term.type("exit 3")
        term.send("Enter")
        screen = term.wait_for("Restart the kernel? [Y/n]")
        assert "the kernel died" in screen
        assert "exit code 3" in screen
        assert "dying-words" in screen
        term.send("Enter")
        term.wait_for("kernel restarted")
        term.type("result after")
        term.send("Enter")
        term.wait_for("Out[1]: after")
        term.type("exit 4")
        term.send("Enter")
        term.wait_for("Restart the kernel? [Y/n]", count=2)
        term.type("n")
        term.send("Enter")
        term.wait_for("EXIT=4")
    assert _runtime(env) == []


def test_existing_kernel_is_left_running(tmp_path: Path) -> None:
    need_tmux()
    env = _env(tmp_path)
    with Running("start", "-k", "fake", env=env) as server:
        server.wait_for(".json\n", timeout=60)
        kernel_id = Path(server.out.decode().split()[0]).stem.removeprefix("kernel-")
        ran = run("run", "--existing", kernel_id, "-c", "print from-elsewhere", env=env)
        assert ran.returncode == 0, ran.stderr
        with Tmux(_console("--existing", kernel_id[:6]), env=env) as term:
            term.wait_for("In [1]:")
            assert "already running" in term.screen()
            term.send("Up")  # the kernel's own history: run by another client
            term.wait_for("print from-elsewhere")
            term.send("C-u")
            term.type("result 7")
            term.send("Enter")
            term.wait_for("Out[2]: 7")  # the kernel counts the run before
            term.send("C-d")
            screen = term.wait_for("EXIT=0")
            assert "shutting the kernel down" not in screen
        listing = json.loads(run("ps", "--json", env=env).stdout)["kernels"]
        assert [(k["id"], k["state"]) for k in listing] == [(kernel_id, "idle")]
        server.signal(signal.SIGINT)
        assert server.finish(timeout=30) == 0


def test_existing_on_a_dead_or_unknown_kernel(tmp_path: Path) -> None:
    env = _env(tmp_path)
    result = run("console", "--existing", "nosuch", env=env)
    assert result.returncode == 3
    assert "no running kernel 'nosuch'" in result.stderr
    bad = tmp_path / "kernel-bad.json"
    bad.write_text("{}")
    bad.chmod(0o600)
    result = run("console", "--existing", str(bad), env=env)
    assert result.returncode == 3
    assert "missing key" in result.stderr


def test_closing_the_terminal_stops_the_kernel(tmp_path: Path) -> None:
    env = _env(tmp_path)
    term = Tmux(_console("-k", "fake"), env=env)
    try:
        term.wait_for("(started by this console)")
        assert any(name.startswith("kernel-") for name in _runtime(env))
    finally:
        term.close()  # SIGHUP to the console
    deadline = time.monotonic() + 30
    while _runtime(env) and time.monotonic() < deadline:  # bounded by the deadline
        time.sleep(0.1)
    assert _runtime(env) == []


def test_lexer_for_the_kernels_language() -> None:
    from kernelkit.cli._console_io import lexer_for

    assert lexer_for({"name": "python", "pygments_lexer": "ipython3"}) is not None
    assert lexer_for({"name": "bash"}) is not None
    assert lexer_for({"name": "no-such-language"}) is None
    assert lexer_for({}) is None
