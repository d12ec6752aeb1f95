"""Habits of a terminal program: a progress line while a kernel starts slowly, colours
only where wanted (NO_COLOR), shell completion."""

from __future__ import annotations

import shlex
import subprocess
from pathlib import Path

from .run_helpers import KERNELKIT, StartGate, make_env, run
from .tmux_helpers import Tmux


def _command(*args: str) -> str:
    return f"{shlex.join([str(KERNELKIT), *args])}; echo EXIT=$?; sleep 600"


def test_a_slow_start_shows_progress_then_clears_it(tmp_path: Path) -> None:
    gate = StartGate(tmp_path)
    env = make_env(tmp_path, gate.option)
    with gate, Tmux(_command("run", "-k", "fake", "-c", "print done"), env=env) as term:
        term.wait_for("starting kernel spec/fake", timeout=30)
        gate.open()
        screen = term.wait_for("EXIT=0", timeout=60)
        assert "done" in screen
        assert "starting kernel" not in screen  # the line goes once the kernel is ready


def test_no_progress_on_a_pipe(tmp_path: Path) -> None:
    result = run("run", "-k", "fake", "-c", "print done", env=make_env(tmp_path, "--start-delay=1"))
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert result.stdout == "done\n"


def test_tracebacks_keep_colour_on_a_terminal_unless_no_color(tmp_path: Path) -> None:
    env = make_env(tmp_path)
    code = "error ValueError nope"
    with Tmux(_command("run", "-k", "fake", "-c", code), env=env) as term:
        term.wait_for("EXIT=1")
        assert "\x1b[" in term.screen(escapes=True).split("ValueError")[0]
    env["NO_COLOR"] = "1"
    with Tmux(_command("run", "-k", "fake", "-c", code), env=env) as term:
        term.wait_for("EXIT=1")
        screen = term.screen(escapes=True)
        assert "ValueError: nope" in screen
        assert "\x1b[3" not in screen  # no foreground colours at all


def test_shell_completion_scripts_and_kernel_ids(tmp_path: Path) -> None:
    env = make_env(tmp_path)
    for shell in ("bash", "zsh", "fish"):
        result = run("--show-completion", shell, env=env)
        assert result.returncode == 0, result.stderr
        assert "_KERNELKIT_COMPLETE" in result.stdout
    # What bash asks for `kernelkit run -k sp<Tab>`: the kernel ids.
    env.update(
        _KERNELKIT_COMPLETE="complete_bash", COMP_WORDS="kernelkit run -k spec/f", COMP_CWORD="3"
    )
    result = subprocess.run(
        [str(KERNELKIT)], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert "spec/fake" in result.stdout.split()
    env.update(COMP_WORDS="kernelkit p", COMP_CWORD="1")
    result = subprocess.run(
        [str(KERNELKIT)], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert "ps" in result.stdout.split()
