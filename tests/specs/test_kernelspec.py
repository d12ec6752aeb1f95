"""The KernelSpec model: argv and env templating, the bare-python rule, resources."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from kernelkit.specs import KernelSpec, is_bare_python, load_kernel_spec
from tests.specs.conftest import good_spec, make_prefix, write_spec


def _spec(resource_dir: Path, *argv: str, env: dict[str, str] | None = None) -> KernelSpec:
    return KernelSpec(
        name="k",
        resource_dir=resource_dir,
        argv=argv,
        display_name="K",
        language="python",
        env=env or {},
    )


@pytest.mark.parametrize(
    ("arg", "bare"),
    [
        ("python", True),
        ("python3", True),
        ("python3.11", True),
        ("python2.7", True),
        ("python3.11x", False),
        ("/usr/bin/python3", False),
        ("ipython", False),
        ("julia", False),
    ],
)
def test_is_bare_python(arg: str, bare: bool) -> None:
    assert is_bare_python(arg) is bare


def test_format_argv_fills_templates(tmp_path: Path) -> None:
    spec = _spec(tmp_path / "k", "/bin/kern", "-f", "{connection_file}", "{resource_dir}/x", "{o}")
    argv = spec.format_argv(connection_file="rel.json")
    assert argv == ["/bin/kern", "-f", str(Path.cwd() / "rel.json"), f"{tmp_path / 'k'}/x", "{o}"]


def test_bare_python_uses_the_given_interpreter(tmp_path: Path) -> None:
    spec = _spec(tmp_path, "python3", "-m", "x")
    assert spec.format_argv(connection_file="c", python="/opt/py")[0] == "/opt/py"


def test_bare_python_belongs_to_the_holding_environment(tmp_path: Path) -> None:
    # xeus-python's spec: argv[0] "python3.11", held in <prefix>/share/jupyter/kernels.
    prefix = make_prefix(tmp_path / "env", "python", "python3", "python3.11")
    resource_dir = prefix / "share" / "jupyter" / "kernels" / "xpython"
    resource_dir.mkdir(parents=True)
    spec = _spec(resource_dir, "python3.11", "-m", "xpython_launcher", "-f", "{connection_file}")
    assert spec.environment_prefix == prefix
    assert spec.interpreter() == prefix / "bin" / "python3.11"
    assert spec.format_argv(connection_file="/c.json") == [
        str(prefix / "bin" / "python3.11"),
        "-m",
        "xpython_launcher",
        "-f",
        "/c.json",
    ]
    # "python" in the same environment: that environment's python, never another one.
    assert _spec(resource_dir, "python").format_argv(connection_file="c")[0] == str(
        prefix / "bin" / "python"
    )
    # A version the environment lacks: its python3 (the modules live in that environment).
    assert _spec(resource_dir, "python3.99").format_argv(connection_file="c")[0] == str(
        prefix / "bin" / "python3"
    )


def test_bare_python_outside_an_environment_is_the_running_python(tmp_path: Path) -> None:
    for bare in ("python", "python3", f"python3.{sys.version_info[1]}"):
        assert _spec(tmp_path / "k", bare).format_argv(connection_file="c")[0] == sys.executable


def test_other_python_version_outside_an_environment_is_left_for_path(tmp_path: Path) -> None:
    other = "python3.9" if sys.version_info[:2] != (3, 9) else "python3.10"
    assert _spec(tmp_path / "k", other).format_argv(connection_file="c")[0] == other


def test_prefix_without_python_is_not_an_environment(tmp_path: Path) -> None:
    resource_dir = tmp_path / "p" / "share" / "jupyter" / "kernels" / "k"
    resource_dir.mkdir(parents=True)
    spec = _spec(resource_dir, "python3")
    assert spec.environment_prefix is None
    assert spec.interpreter() is None


def test_prefix_template_is_the_environment(tmp_path: Path) -> None:
    prefix = make_prefix(tmp_path / "env", "python3")
    resource_dir = prefix / "share" / "jupyter" / "kernels" / "k"
    resource_dir.mkdir(parents=True)
    spec = _spec(resource_dir, "{prefix}/bin/python3")
    assert spec.format_argv(connection_file="c") == [f"{prefix}/bin/python3"]
    assert _spec(tmp_path / "k", "{prefix}/x").format_argv(connection_file="c") == [
        f"{sys.prefix}/x"
    ]


def test_format_env_expands_like_jupyter_client(tmp_path: Path) -> None:
    spec = _spec(
        tmp_path,
        "x",
        env={
            "A": "${HOME}/a",
            "B": "$HOME/b",
            "C": "${NOT_SET_ANYWHERE}",
            "D": "$$literal",
            "E": "plain",
        },
    )
    base = {"HOME": "/home/u", "KEEP": "1"}
    env = spec.format_env(base)
    assert env == {
        "HOME": "/home/u",
        "KEEP": "1",
        "A": "/home/u/a",
        "B": "/home/u/b",
        "C": "${NOT_SET_ANYWHERE}",
        "D": "$literal",
        "E": "plain",
    }
    assert base == {"HOME": "/home/u", "KEEP": "1"}


def test_format_env_uses_only_the_base_not_other_spec_values(tmp_path: Path) -> None:
    spec = _spec(tmp_path, "x", env={"A": "1", "B": "${A}"})
    assert spec.format_env({})["B"] == "${A}"


def test_resource_files(tmp_path: Path) -> None:
    spec_dir = write_spec(tmp_path, "k", good_spec())
    for name in ("logo-64x64.png", "logo-32x32.png", "kernel.js"):
        (spec_dir / name).write_bytes(b"x")
    (spec_dir / "sub").mkdir()
    spec = load_kernel_spec(spec_dir)
    assert [p.name for p in spec.resource_files] == [
        "kernel.js",
        "logo-32x32.png",
        "logo-64x64.png",
    ]


def test_resource_files_of_missing_dir(tmp_path: Path) -> None:
    assert _spec(tmp_path / "gone", "x").resource_files == ()


def test_to_dict_round_trip(tmp_path: Path) -> None:
    content = good_spec(
        env={"A": "1"},
        metadata={"debugger": True},
        interrupt_mode="message",
        kernel_protocol_version="5.5",
    )
    spec = load_kernel_spec(write_spec(tmp_path / "a", "k", content))
    assert spec.healthy
    assert spec.to_dict() == {**content, "argv": content["argv"]}
    again = load_kernel_spec(write_spec(tmp_path / "b", "k", json.dumps(spec.to_dict())))
    assert again.to_dict() == spec.to_dict()


def test_to_dict_defaults(tmp_path: Path) -> None:
    spec = load_kernel_spec(write_spec(tmp_path, "k", good_spec()))
    d = spec.to_dict()
    assert (d["env"], d["metadata"], d["interrupt_mode"]) == ({}, {}, "signal")
    assert "kernel_protocol_version" not in d


def test_specs_are_frozen_and_hashable(tmp_path: Path) -> None:
    spec = _spec(tmp_path, "x")
    with pytest.raises(AttributeError):
        spec.name = "y"  # type: ignore[misc]
    assert hash(spec) == hash(_spec(tmp_path, "x"))
