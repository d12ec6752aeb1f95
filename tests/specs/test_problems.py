"""Bad input: every kind of broken kernelspec is reported with the file and the problem."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import pytest

from kernelkit.specs import load_kernel_spec, scan_kernel_specs
from tests.specs.conftest import good_spec, make_prefix, write_spec


def _problems_of(tmp_path: Path, content: dict[str, Any] | str | bytes) -> tuple[str, ...]:
    spec = load_kernel_spec(write_spec(tmp_path / "kernels", "k", content))
    assert not spec.healthy
    return spec.problems


def _assert_one(problems: tuple[str, ...], kernel_json: Path, fragment: str) -> None:
    assert len(problems) == 1, problems
    assert problems[0].startswith(f"{kernel_json}: "), problems[0]
    assert fragment in problems[0], problems[0]


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        ("{oops", "invalid JSON"),
        ("", "invalid JSON"),
        (b"\xff\xfe", "invalid JSON"),
        ("[1, 2]", "expected a JSON object, got list"),
        ('"text"', "expected a JSON object, got str"),
        (good_spec(argv=None) | {"argv": None}, "'argv' must be a list of strings, got null"),
        ({"display_name": "x"}, "missing 'argv'"),
        (good_spec(argv=[]), "'argv' is empty"),
        (good_spec(argv="python -m x"), "'argv' must be a list of strings, got str"),
        (good_spec(argv=["python", 3]), "'argv' must be a list of strings; item 1 is int"),
        (good_spec(argv=[""]), "'argv' starts with an empty string"),
        ({"argv": [sys.executable, "{connection_file}"]}, "missing 'display_name'"),
        (good_spec(display_name=7), "'display_name' must be a non-empty string, got 7"),
        (good_spec(display_name="  "), "'display_name' must be a non-empty string"),
        (good_spec(language=["py"]), "'language' must be a string, got list"),
        (good_spec(interrupt_mode="never"), "'interrupt_mode' is 'never'; expected"),
        (good_spec(interrupt_mode=1), "'interrupt_mode' is 1; expected"),
        (good_spec(env=["A=1"]), "'env' must be an object, got list"),
        (good_spec(env={"A": 1}), "'env' values must be strings; 'A' is int"),
        (good_spec(metadata="x"), "'metadata' must be an object, got str"),
        (good_spec(kernel_protocol_version=5.3), "'kernel_protocol_version' must be a string"),
    ],
)
def test_structural_problems(
    tmp_path: Path, content: dict[str, Any] | str | bytes, fragment: str
) -> None:
    problems = _problems_of(tmp_path, content)
    _assert_one(problems, tmp_path / "kernels" / "k" / "kernel.json", fragment)


def test_several_problems_are_all_listed(tmp_path: Path) -> None:
    problems = _problems_of(tmp_path, {"argv": [], "interrupt_mode": "x", "env": []})
    assert len(problems) == 4  # argv, display_name, interrupt_mode, env


def test_interrupt_mode_is_case_insensitive(tmp_path: Path) -> None:
    spec = load_kernel_spec(write_spec(tmp_path, "k", good_spec(interrupt_mode="Message")))
    assert spec.healthy
    assert spec.interrupt_mode == "message"


def test_missing_display_name_falls_back_to_the_name(tmp_path: Path) -> None:
    spec = load_kernel_spec(write_spec(tmp_path, "k", {"argv": [sys.executable]}))
    assert spec.display_name == "k"


def test_language_is_optional(tmp_path: Path) -> None:
    content = good_spec()
    del content["language"]
    assert load_kernel_spec(write_spec(tmp_path, "k", content)).healthy


# ----------------------------------------------------------------------- argv[0] health


def test_absolute_argv0_missing(tmp_path: Path) -> None:
    missing = tmp_path / "no" / "python"
    problems = _problems_of(tmp_path, good_spec(argv=[str(missing), "-f", "{connection_file}"]))
    _assert_one(problems, tmp_path / "kernels/k/kernel.json", f"argv[0] '{missing}' does not exist")


def test_absolute_argv0_not_executable(tmp_path: Path) -> None:
    script = tmp_path / "kernel.sh"
    script.write_text("#!/bin/sh\n")
    script.chmod(0o644)
    problems = _problems_of(tmp_path, good_spec(argv=[str(script)]))
    _assert_one(problems, tmp_path / "kernels/k/kernel.json", "is not executable")


def test_absolute_argv0_is_a_directory(tmp_path: Path) -> None:
    problems = _problems_of(tmp_path, good_spec(argv=[str(tmp_path)]))
    _assert_one(problems, tmp_path / "kernels/k/kernel.json", "is a directory")


def test_argv0_with_resource_dir_template(tmp_path: Path) -> None:
    spec_dir = write_spec(tmp_path, "k", good_spec(argv=["{resource_dir}/run.sh"]))
    assert not load_kernel_spec(spec_dir).healthy
    (spec_dir / "run.sh").write_text("#!/bin/sh\n")
    (spec_dir / "run.sh").chmod(0o755)
    assert load_kernel_spec(spec_dir).healthy


def test_bare_name_not_on_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    problems = _problems_of(tmp_path, good_spec(argv=["kernel-that-does-not-exist"]))
    _assert_one(
        problems,
        tmp_path / "kernels/k/kernel.json",
        "argv[0] 'kernel-that-does-not-exist' is not found on PATH",
    )


def test_bare_name_on_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    make_prefix(tmp_path / "tools", "mykernel")
    monkeypatch.setenv("PATH", str(tmp_path / "tools" / "bin"))
    assert load_kernel_spec(write_spec(tmp_path, "k", good_spec(argv=["mykernel"]))).healthy


def test_interpreter_missing_outside_an_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    problems = _problems_of(tmp_path, good_spec(argv=["python2.6", "-m", "k"]))
    _assert_one(
        problems,
        tmp_path / "kernels/k/kernel.json",
        "interpreter missing: argv[0] 'python2.6' is not in the environment",
    )


def test_bare_running_python_is_always_resolvable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert load_kernel_spec(write_spec(tmp_path, "k", good_spec(argv=["python3"]))).healthy


def test_environment_that_lost_its_interpreter(tmp_path: Path) -> None:
    prefix = tmp_path / "venv"
    kernels = prefix / "share" / "jupyter" / "kernels"
    write_spec(kernels, "k", good_spec(argv=["python3.11", "-m", "xpython_launcher"]))
    (prefix / "pyvenv.cfg").write_text("home = /gone\n")
    (spec,) = scan_kernel_specs([kernels])
    assert len(spec.problems) == 1
    assert spec.problems[0].startswith(f"{kernels / 'k' / 'kernel.json'}: interpreter missing")
    assert str(prefix) in spec.problems[0]


def test_environment_with_its_interpreter(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    prefix = make_prefix(tmp_path / "venv", "python3", "python3.8")
    kernels = prefix / "share" / "jupyter" / "kernels"
    write_spec(kernels, "k", good_spec(argv=["python3.8", "-m", "ipykernel_launcher"]))
    (spec,) = scan_kernel_specs([kernels])
    assert spec.healthy
    assert spec.format_argv(connection_file="c")[0] == str(prefix / "bin" / "python3.8")


# ----------------------------------------------------------------------- unreadable files


def test_kernel_json_is_a_directory(tmp_path: Path) -> None:
    (tmp_path / "k" / "kernel.json").mkdir(parents=True)
    spec = load_kernel_spec(tmp_path / "k")
    _assert_one(spec.problems, tmp_path / "k" / "kernel.json", "is a directory, not a file")


def test_kernel_json_dangling_symlink(tmp_path: Path) -> None:
    (tmp_path / "k").mkdir()
    (tmp_path / "k" / "kernel.json").symlink_to(tmp_path / "gone.json")
    (spec,) = scan_kernel_specs([tmp_path])
    _assert_one(spec.problems, tmp_path / "k" / "kernel.json", "symbolic link to a missing file")


def test_kernel_json_symlink_loop_is_unreadable(tmp_path: Path) -> None:
    (tmp_path / "k").mkdir()
    loop = tmp_path / "k" / "kernel.json"
    loop.symlink_to(loop)
    (spec,) = scan_kernel_specs([tmp_path])
    _assert_one(spec.problems, loop, "a symbolic link loop")


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_kernel_json_without_permission(tmp_path: Path) -> None:
    spec_dir = write_spec(tmp_path, "k", good_spec())
    (spec_dir / "kernel.json").chmod(0)
    (spec,) = scan_kernel_specs([tmp_path])
    _assert_one(spec.problems, spec_dir / "kernel.json", "cannot read: Permission denied")


def test_kernel_json_fifo_does_not_hang(tmp_path: Path) -> None:
    (tmp_path / "k").mkdir()
    os.mkfifo(tmp_path / "k" / "kernel.json")
    (spec,) = scan_kernel_specs([tmp_path])
    _assert_one(spec.problems, tmp_path / "k" / "kernel.json", "invalid JSON")


def test_oversized_kernel_json(tmp_path: Path) -> None:
    spec_dir = write_spec(tmp_path, "k", b" " * ((4 << 20) + 10))
    spec = load_kernel_spec(spec_dir)
    _assert_one(spec.problems, spec_dir / "kernel.json", "file too large")


def test_load_without_kernel_json(tmp_path: Path) -> None:
    (tmp_path / "k").mkdir()
    spec = load_kernel_spec(tmp_path / "k")
    _assert_one(spec.problems, tmp_path / "k" / "kernel.json", "no such file")


def test_load_missing_directory(tmp_path: Path) -> None:
    spec = load_kernel_spec(tmp_path / "gone")
    assert spec.problems == (f"{tmp_path / 'gone'}: no such kernelspec directory",)


def test_load_a_file_as_directory(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("")
    spec = load_kernel_spec(tmp_path / "f")
    assert spec.problems == (f"{tmp_path / 'f'}: not a directory",)


# ------------------------------------------------------- launchability (issue 14.10, 14.12)


def test_a_spec_without_connection_file_is_flagged(tmp_path: Path) -> None:
    content = {"argv": [sys.executable, "-m", "ipykernel_launcher"], "display_name": "No CF"}
    problems = _problems_of(tmp_path, content)
    _assert_one(problems, tmp_path / "kernels/k/kernel.json", "argv has no {connection_file}")


def test_a_spec_with_its_own_provisioner_needs_no_connection_file(tmp_path: Path) -> None:
    content = {
        "argv": [sys.executable, "-m", "launcher", "--response-address", "{response_address}"],
        "display_name": "Remote",
        "metadata": {"kernel_provisioner": {"provisioner_name": "gateway-provisioner"}},
    }
    assert load_kernel_spec(write_spec(tmp_path / "kernels", "k", content)).healthy


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="needs symbolic links")
def test_symlink_loops_in_a_kernels_directory_are_reported(tmp_path: Path) -> None:
    kernels = tmp_path / "kernels"
    write_spec(kernels, "good", good_spec())
    os.symlink("self", kernels / "self")
    os.symlink("b", kernels / "a")
    os.symlink("a", kernels / "b")
    (kernels / "inner").mkdir()
    os.symlink("kernel.json", kernels / "inner" / "kernel.json")
    specs = {s.name: s for s in scan_kernel_specs([kernels])}
    assert specs["good"].healthy
    for name in ("self", "a", "b"):
        _assert_one(specs[name].problems, kernels / name, "a symbolic link loop")
    _assert_one(specs["inner"].problems, kernels / "inner/kernel.json", "a symbolic link loop")
