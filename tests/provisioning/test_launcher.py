"""launch_kernel: the process, its session, and clear errors for bad argv."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from kernelkit import KernelStartError, ProvisioningError
from kernelkit.provisioning import launch_kernel

ECHO_PARENT = "import os; print(os.environ.get('JPY_PARENT_PID'), os.getsid(0) == os.getpid())"


def _run(proc: subprocess.Popen[bytes]) -> bytes:
    out, _ = proc.communicate(timeout=10)
    return out


def test_own_session_parent_pid_and_devnull_stdin() -> None:
    proc = launch_kernel(
        [sys.executable, "-c", ECHO_PARENT + "; import sys; print(repr(sys.stdin.read()))"],
        stdout=subprocess.PIPE,
    )
    assert _run(proc).split() == [str(os.getpid()).encode(), b"True", b"''"]
    assert proc.returncode == 0


def test_independent_kernel_gets_no_parent_pid() -> None:
    proc = launch_kernel(
        [sys.executable, "-c", ECHO_PARENT], stdout=subprocess.PIPE, independent=True
    )
    assert _run(proc).split() == [b"None", b"True"]


def test_env_and_cwd(tmp_path: Path) -> None:
    proc = launch_kernel(
        [sys.executable, "-c", "import os; print(os.getcwd(), os.environ['X'])"],
        stdout=subprocess.PIPE,
        env={"X": "y", "PATH": os.environ["PATH"]},
        cwd=tmp_path,
    )
    assert _run(proc).split() == [str(tmp_path).encode(), b"y"]


def test_program_found_on_the_given_path(tmp_path: Path) -> None:
    script = tmp_path / "my-kernel"
    script.write_text("#!/bin/sh\necho started\n")
    script.chmod(0o755)
    proc = launch_kernel(["my-kernel"], stdout=subprocess.PIPE, env={"PATH": str(tmp_path)})
    assert _run(proc) == b"started\n"


def test_tilde_is_expanded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "k").write_text("#!/bin/sh\necho home\n")
    (tmp_path / "k").chmod(0o755)
    assert _run(launch_kernel(["~/k"], stdout=subprocess.PIPE)) == b"home\n"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ([], "kernel 'k': the kernel's argv is empty"),
        ([""], "kernel 'k': the kernel's argv is empty"),
        (["no-such-program-xyz"], "'no-such-program-xyz': not found on PATH"),
        (["/no/such/kernel"], "'/no/such/kernel': no such file"),
    ],
)
def test_bad_argv(argv: list[str], message: str) -> None:
    with pytest.raises(KernelStartError, match=message) as caught:
        launch_kernel(argv, kernel_name="k")
    assert caught.value.kernel_name == "k"


def test_not_executable(tmp_path: Path) -> None:
    plain = tmp_path / "kernel.sh"
    plain.write_text("echo hi\n")
    with pytest.raises(KernelStartError, match="not an executable file"):
        launch_kernel([str(plain)])
    with pytest.raises(KernelStartError, match="not an executable file"):
        launch_kernel([str(tmp_path)])


def test_missing_interpreter_of_a_script(tmp_path: Path) -> None:
    script = tmp_path / "kernel"
    script.write_text("#!/no/such/python\n")
    script.chmod(0o755)
    with pytest.raises(KernelStartError, match=r"#! interpreter is missing\?") as caught:
        launch_kernel([str(script)], kernel_name="k")
    assert isinstance(caught.value.__cause__, FileNotFoundError)


def test_missing_working_directory(tmp_path: Path) -> None:
    with pytest.raises(KernelStartError, match=r"working directory .* does not exist"):
        launch_kernel([sys.executable, "-c", "pass"], cwd=tmp_path / "gone")


def test_session_options_are_ours() -> None:
    with pytest.raises(ProvisioningError, match="start_new_session cannot be set"):
        launch_kernel([sys.executable, "-c", "pass"], start_new_session=False)
