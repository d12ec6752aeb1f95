"""The sandbox's options and command line, without starting anything."""

from __future__ import annotations

from pathlib import Path

import pytest

from kernelkit import ProvisioningError
from kernelkit.provisioning import SandboxOptions
from kernelkit.provisioning._sandbox_command import (
    cgroup_join_argv,
    hidden_dirs,
    host_environ,
    prlimit_argv,
    sandbox_environ,
)
from kernelkit.provisioning._sandbox_options import format_bytes, parse_bytes


@pytest.mark.parametrize(
    ("text", "size"),
    [("512M", 512 << 20), ("1.5G", 3 << 29), ("100MB", 100_000_000), (4096, 4096), ("2k", 2048)],
)
def test_sizes(text: object, size: int) -> None:
    assert parse_bytes(text, what="memory") == size


@pytest.mark.parametrize("bad", ["", "-1M", "12 parsecs", True, 0, None, [1]])
def test_bad_sizes_say_what_to_write(bad: object) -> None:
    with pytest.raises(ProvisioningError, match="sandbox memory"):
        parse_bytes(bad, what="memory")


def test_sizes_read_back() -> None:
    assert format_bytes(512 << 20) == "512 MiB"
    assert format_bytes(3 << 29) == "1536 MiB"
    assert format_bytes(1500) == "1.5 KiB"
    assert format_bytes(100) == "100 bytes"


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("network", "yes", "expected true or false"),
        ("processes", 0, "at least 1"),
        ("cpu_time", "1s", "expected seconds"),
        ("wall_clock", float("inf"), "positive number"),
        ("work_dir", "/no/such/dir", "is not a directory"),
        ("rw_paths", ["/no/such/dir"], "does not exist"),
        ("env", {"A": 1}, "mapping of strings"),
        ("uid", -3, "user id"),
    ],
)
def test_bad_options_name_the_option(option: str, value: object, message: str) -> None:
    with pytest.raises(ProvisioningError, match=message):
        SandboxOptions.parse(**{option: value})


def test_rlimits_only_for_what_is_set() -> None:
    assert prlimit_argv(["k"]) == ["k"]
    argv = prlimit_argv(["k"], memory=1024, cpu_time=1.5, file_size=10)
    assert argv[1:] == ["--as=1024", "--cpu=2:3", "--fsize=10", "--", "k"]


def test_the_shell_joins_groups_before_anything_runs() -> None:
    assert cgroup_join_argv(["k"], []) == ["k"]
    argv = cgroup_join_argv(["k", "--", "x"], [Path("/cg/a/cgroup.procs")])
    assert argv[:2] == ["/bin/sh", "-c"]
    assert argv[3:] == ["kernelkit-sandbox", "/cg/a/cgroup.procs", "--", "k", "--", "x"]


def test_hidden_dirs_outermost_first(tmp_path: Path) -> None:
    runtime = tmp_path / "rt"
    runtime.mkdir()
    hidden = hidden_dirs(runtime_dir=runtime, sandboxes_dir=runtime / "sb", network=False)
    assert runtime in hidden
    assert Path("/run") in hidden
    assert all(not any(h in other.parents for other in hidden) for h in hidden)


def test_environment_keeps_secrets_out(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "k")
    monkeypatch.setenv("SSH_AUTH_SOCK", "/run/user/0/agent")
    base = host_environ({"MINE": "1"}, inherit_env=True)
    assert "AWS_SECRET_ACCESS_KEY" not in base
    assert base["MINE"] == "1"
    activated = host_environ({"SSH_AUTH_SOCK": "/x", "CONDA_PREFIX": "/c"}, inherit_env=False)
    env = sandbox_environ(activated, work_dir=Path("/w"), extra={"X": "y"})
    assert "SSH_AUTH_SOCK" not in env
    assert env["CONDA_PREFIX"] == "/c"
    assert env["HOME"] == "/w"
    assert env["X"] == "y"


async def test_a_sandbox_cannot_be_reattached() -> None:
    from kernelkit.provisioning import SandboxProvisioner
    from kernelkit.specs import KernelSpec

    spec = KernelSpec(
        name="k", resource_dir=Path("/"), argv=("python",), display_name="k", language="python"
    )
    p = SandboxProvisioner(kernel_id="a", kernel_spec=spec)
    with pytest.raises(ProvisioningError, match="cannot be re-attached"):
        await p.load_provisioner_info({"kernel_id": "a", "pid": 1})
