"""`kernelkit run` as a subprocess: output as it comes, exit statuses, Ctrl-C."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest
import typer

from kernelkit.cli._run import _read_code
from kernelkit.cli._starting import suggest_ids

from .run_helpers import Running, make_env, run, runtime_files

# -- with the fake kernel (fast) --------------------------------------------------------


def test_runs_code_and_streams_both_outputs(tmp_path: Path) -> None:
    env = make_env(tmp_path)
    result = run("run", "--kernel", "spec/fake", "-c", "print hello; err oops; result 42", env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "hello\n42\n"
    assert "oops" in result.stderr
    assert runtime_files(env) == []


def test_code_from_stdin_that_raises_exits_1(tmp_path: Path) -> None:
    result = run(
        "run",
        "-k",
        "fake",
        "-",
        env=make_env(tmp_path),
        stdin="print before; error ValueError nope",
    )
    assert result.returncode == 1
    assert result.stdout == "before\n"
    assert "ValueError: nope" in result.stderr
    assert "\x1b[" not in result.stderr  # colour codes only for a terminal


def test_usage_error_exits_2(tmp_path: Path) -> None:
    result = run("run", "-k", "fake", "-c", "x", "file.py", env=make_env(tmp_path))
    assert result.returncode == 2
    assert "either -c CODE or a FILE" in " ".join(result.stderr.split())


@pytest.mark.parametrize(
    ("code", "file", "message"),
    [
        ("x", "file.py", "either -c CODE or a FILE"),
        (None, None, "either -c CODE or a FILE"),
        (None, "missing-file.py", "cannot read missing-file.py"),
    ],
)
def test_read_code_errors(code: str | None, file: str | None, message: str) -> None:
    with pytest.raises(typer.BadParameter, match=message):
        _read_code(code, Path(file) if file else None)


@pytest.mark.parametrize(
    ("asked", "expected"),
    [
        ("spec/pyhton3", ["spec/python3"]),  # a typo in an id
        ("pyhton3", ["spec/python3", "env/proj-1a2b3c4d/python3"]),  # a bare name: ends
        ("env/proj-1a2b3c4d/pyton3", ["env/proj-1a2b3c4d/python3"]),
        ("spec/bash", []),  # nothing close
    ],
)
def test_suggest_ids(asked: str, expected: list[str]) -> None:
    ids = ["spec/python3", "spec/ir", "env/proj-1a2b3c4d/python3", "env/geo-0f0f0f0f/kkr"]
    assert suggest_ids(asked, ids) == expected


def test_read_code_from_a_file(tmp_path: Path) -> None:
    path = tmp_path / "code.py"
    path.write_text("print(1)\n")
    assert _read_code(None, path) == "print(1)\n"
    assert _read_code("x", None) == "x"


def test_missing_kernel_exits_3_listing_the_available_ids(tmp_path: Path) -> None:
    result = run("run", "-k", "no-such-kernel", "-c", "1", env=make_env(tmp_path))
    assert result.returncode == 3
    assert "no kernel 'no-such-kernel'" in result.stderr
    assert "\n  spec/fake\n" in result.stderr  # listed as available, one id a line
    assert "did you mean" not in result.stderr


def test_a_misspelt_id_gets_a_suggestion(tmp_path: Path) -> None:
    result = run("start", "-k", "spec/fak", env=make_env(tmp_path))
    assert result.returncode == 3
    assert "no kernel 'spec/fak'; did you mean spec/fake?" in result.stderr
    assert result.stdout == ""


def test_kernel_failing_to_start_exits_3_with_its_output(tmp_path: Path) -> None:
    env = make_env(tmp_path, "--exit-at-start=3")
    result = run("run", "-k", "fake", "-c", "1", env=env)
    assert result.returncode == 3
    assert "exit code 3" in result.stderr
    assert "fake kernel: exiting at start" in result.stderr
    assert runtime_files(env) == []


def test_kernel_dying_exits_4_with_code_and_output(tmp_path: Path) -> None:
    env = make_env(tmp_path, "--say=last-words")
    result = run("run", "-k", "fake", "-c", "exit 5", env=env)
    assert result.returncode == 4
    assert "exit code 5" in result.stderr
    assert "last-words" in result.stderr
    assert runtime_files(env) == []


def test_ctrl_c_twice_stops_a_kernel_that_ignores_interrupts(tmp_path: Path) -> None:
    env = make_env(tmp_path, "--no-interrupt")
    with Running("run", "-k", "fake", "-c", "print started; sleep 30", env=env) as cli:
        cli.wait_for("started\n", timeout=30)
        cli.signal(signal.SIGINT)
        cli.wait_for("interrupting the kernel", stream="err", timeout=10)
        t0 = time.monotonic()
        cli.signal(signal.SIGINT)
        assert cli.finish(timeout=10) == 130
        assert time.monotonic() - t0 < 3
        assert b"stopping the kernel" in cli.err
    assert runtime_files(env) == []


# -- with ipykernel (the README's command) ----------------------------------------------


@pytest.mark.integration
def test_ipykernel_readme_command(tmp_path: Path) -> None:
    env = make_env(tmp_path)
    result = run(
        "run",
        "--kernel",
        "python3",
        "-c",
        'import sys; print("hello from", sys.executable); print("to stderr", file=sys.stderr)'
        "; 6 * 7",
        env=env,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("hello from ")
    assert result.stdout.endswith("42\n")
    assert "to stderr" in result.stderr
    assert runtime_files(env) == []


@pytest.mark.integration
def test_ipykernel_ctrl_c_interrupts_sleep(tmp_path: Path) -> None:
    env = make_env(tmp_path)
    code = 'import time; print("sleeping", flush=True); time.sleep(30); print("not reached")'
    with Running("run", "-c", code, env=env) as cli:
        cli.wait_for("sleeping\n", timeout=60)  # streamed while the code still runs
        t0 = time.monotonic()
        cli.signal(signal.SIGINT)
        assert cli.finish(timeout=20) == 130
        assert time.monotonic() - t0 < 5
        assert b"KeyboardInterrupt" in cli.err
        assert b"not reached" not in cli.out
    assert runtime_files(env) == []
