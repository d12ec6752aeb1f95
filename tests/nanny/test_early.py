"""The nanny starts an ipykernel-like kernel before its own heavy imports (``_early``):
what it writes and starts is what its provisioner would have, kernels of other kinds are
left to the provisioner, and the early kernel's output is kept from its first byte."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import signal
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from kernelkit import KernelStartError, read_connection_file
from kernelkit.manager import AsyncKernelManager
from kernelkit.nanny._early import RECIPE_KERNEL_ID, begin, resolve, start_early
from kernelkit.nanny._first import EarlyKernel, First, parse_json, start_prepared
from kernelkit.nanny._prepare import prepare_early, prepare_from_recipe
from kernelkit.nanny._wire import NannyConfig
from kernelkit.provisioning._reaper import TREE_ENV
from kernelkit.specs import KernelSpec
from tests.nanny.helpers import alive, gone

pytestmark = pytest.mark.timeout(120)


def _spec(code: str, **metadata: Any) -> KernelSpec:
    """A kernel that runs ``code`` (its connection file is sys.argv[1])."""
    return KernelSpec(
        name="early-test",
        resource_dir=Path("/nonexistent"),
        argv=(sys.executable, "-c", code, "{connection_file}"),
        display_name="early",
        language="python",
        metadata={"kernelkit": {"ports": "write-back"}, **metadata},
    )


def _config(spec: KernelSpec, tmp_path: Path, **options: Any) -> NannyConfig:
    return NannyConfig(
        kernel_id="early-" + os.urandom(4).hex(),
        spec=spec,
        env={"KK_EARLY": "1"},
        inherit_env=True,
        options={"runtime_dir": str(tmp_path), **options},
    )


def _environ(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return dict(e.decode().split("=", 1) for e in raw if b"=" in e)


def test_an_early_kernel_gets_what_its_provisioner_would_give(tmp_path: Path) -> None:
    code = "import sys, time; open(sys.argv[1] + '.up', 'w').close(); time.sleep(60)"
    workdir = tmp_path / "work"
    workdir.mkdir()
    config = dataclasses.replace(_config(_spec(code), tmp_path), cwd=str(workdir))
    # A descriptor the nanny inherited is not the kernel's (Popen's close_fds).
    stray_r, stray_w = os.pipe()
    os.set_inheritable(stray_w, True)
    here = os.getcwd()
    try:
        early = start_early(config, resolve(config))
    finally:
        os.close(stray_r)
        os.close(stray_w)
    assert early is not None
    assert os.getcwd() == here
    try:
        # Its environment is its own once it runs (before the exec it is ours).
        up = Path(early.connection_file + ".up")
        for _ in range(600):
            if up.exists() or early.process.poll() is not None:
                break
            time.sleep(0.05)
        assert up.exists(), "the kernel did not start"
        assert Path(early.connection_file) == tmp_path / f"kernel-{config.kernel_id}.json"
        info = read_connection_file(early.connection_file)  # mode 0600, or it fails
        assert info.key == early.key
        assert not info.ports_chosen  # ports 0: the kernel writes its own back
        assert (info.ip, info.transport, info.kernel_name) == ("127.0.0.1", "tcp", "early-test")
        env = _environ(early.process.pid)
        assert env["KK_EARLY"] == "1"
        assert env[TREE_ENV] == early.tag
        assert env["JPY_PARENT_PID"] == str(os.getpid())
        assert os.getpgid(early.process.pid) == early.process.pid  # its own session and group
        assert os.getsid(early.process.pid) == early.process.pid
        assert os.readlink(f"/proc/{early.process.pid}/cwd") == str(workdir)
        fds = {int(fd) for fd in os.listdir(f"/proc/{early.process.pid}/fd")}
        assert stray_w not in fds
        assert os.readlink(f"/proc/{early.process.pid}/fd/0") == os.devnull
        if shutil.which("setpriv"):
            assert early.process.args[:3] == [shutil.which("setpriv"), "--pdeathsig", "KILL"]
    finally:
        early.discard()
    assert early.process.returncode is not None
    assert not os.path.exists(early.connection_file)


def test_an_early_kernel_does_not_inherit_the_nannys_ignored_sigpipe(tmp_path: Path) -> None:
    """Python ignores SIGPIPE; a program it starts gets it back at its default (as
    subprocess does it): here a kernel that is not Python, so that it shows."""
    spec = dataclasses.replace(
        _spec("unused"), argv=("sh", "-c", "exec sleep 60", "{connection_file}")
    )
    config = _config(spec, tmp_path)
    early = start_early(config, resolve(config))
    assert early is not None
    try:
        deadline = time.monotonic() + 30
        while _cmd(early.process.pid) != ["sleep", "60"]:
            assert time.monotonic() < deadline, _cmd(early.process.pid)
            time.sleep(0.01)
        status = Path(f"/proc/{early.process.pid}/status").read_text()
        ignored = int(status.split("SigIgn:")[1].split()[0], 16)
        assert not ignored & (1 << (signal.SIGPIPE - 1))
    finally:
        early.discard()


def _cmd(pid: int) -> list[str]:
    raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    return [a.decode() for a in raw.split(b"\0") if a]


@pytest.mark.parametrize(
    ("spec_metadata", "options"),
    [
        ({"kernelkit": {"ports": "handshake"}}, {}),
        ({}, {"transport": "ipc"}),
        ({"supported_encryption": ["curve"]}, {"ip": "0.0.0.0"}),
        ({}, {"independent": True}),
    ],
    ids=["handshake", "ipc", "maybe-curve", "independent"],
)
def test_other_kernels_are_left_to_the_provisioner(
    tmp_path: Path, spec_metadata: dict[str, Any], options: dict[str, Any]
) -> None:
    config = _config(_spec("pass", **spec_metadata), tmp_path, **options)
    assert start_early(config, resolve(config)) is None
    assert os.listdir(tmp_path) == []


# More than a pipe holds (64 KiB) before the nanny reads: the kernel blocks until the
# nanny's event loop runs, and nothing is lost.
_CHATTY = """
import sys
for i in range(3000):
    print(f"early line {i:04d} " + "x" * 40)
sys.stdout.flush()
print("last words on stderr", file=sys.stderr)
sys.exit(3)
"""


def test_the_owner_prepares_the_launch_for_a_nanny_here(tmp_path: Path) -> None:
    config = _config(_spec("pass"), tmp_path)
    block = prepare_early(config)
    assert block is not None
    assert block["kernel_id"] == config.kernel_id
    assert block["cmd"][1:3] == ["-c", "pass"]
    assert block["env"]["KK_EARLY"] == "1"
    # Written by the nanny, not here: an owner killed before the nanny read its request
    # leaves no file.
    assert not os.path.exists(block["connection_file"])
    info = json.loads(block["content"])
    assert info["key"] == block["key"]
    assert info["shell_port"] == info["hb_port"] == 0
    # A named kernelspec (a host's own) is found, and prepared, by the nanny there.
    named = NannyConfig(kernel_id="k", spec=None, spec_name="python3", env={})
    assert prepare_early(named) is None


async def test_an_early_kernels_output_is_kept_from_its_first_byte(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path))
    spec = _spec(_CHATTY, kernel_provisioner={"provisioner_name": "nanny-provisioner"})
    km = AsyncKernelManager(kernel_spec=spec)
    with pytest.raises(KernelStartError) as err:
        await km.start_kernel()
    assert err.value.exit_code == 3
    tail = list(err.value.output_tail or ())
    assert "last words on stderr" in tail
    assert any("early line 2999" in line for line in tail), tail
    assert os.listdir(tmp_path) == []


async def test_an_early_kernel_dies_with_a_killed_nanny(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path))
    from tests.nanny.helpers import nanny_spec

    # No auto-restart: a new nanny starting while the test stops the kernel is another
    # test's business.
    km = AsyncKernelManager(kernel_spec=nanny_spec(), autorestart=False)
    await km.start_kernel()
    p: Any = km.provisioner
    pids = [p.nanny_pid, p.pid]
    try:
        assert all(alive(x) for x in pids)
        os.kill(p.nanny_pid, signal.SIGKILL)
        assert await gone(pids, within=10)
    finally:
        await km.shutdown_kernel(now=True)


# A host's launch recipe (what an owner on another machine prepares the start from).


def _recipe(spec: KernelSpec, tmp_path: Path, changes: list[list[str]]) -> dict[str, Any]:
    """The recipe a host's listing gives for ``spec`` (a kernel.json of its own, stamped)."""
    spec_file = tmp_path / "kernel.json"
    spec_file.write_text(json.dumps(spec.to_dict()))
    st = spec_file.stat()
    template = str(tmp_path / f"kernel-{RECIPE_KERNEL_ID}.json")
    return {
        "cmd": spec.format_argv(connection_file=template),
        "env_changes": changes,
        "cwd": None,
        "connection_file": template,
        "kernel_name": spec.name,
        "stamps": [[str(spec_file), st.st_mtime_ns, st.st_size]],
    }


def _host_config(spec: KernelSpec, tmp_path: Path) -> NannyConfig:
    # What SSHProvisioner sends: the host's environment, the host's runtime directory.
    return NannyConfig(
        kernel_id="early-" + os.urandom(4).hex(),
        spec=spec,
        env={},
        inherit_env=True,
        options={"runtime_dir": str(tmp_path)},
    )


_SLEEPER = "import sys, time; open(sys.argv[1] + '.up', 'w').close(); time.sleep(60)"


def _wait_up(early: EarlyKernel) -> None:
    up = Path(early.connection_file + ".up")
    for _ in range(600):
        if up.exists() or early.process.poll() is not None:
            break
        time.sleep(0.05)
    assert up.exists(), "the kernel did not start"


def test_a_recipe_starts_the_kernel_in_the_nannys_environment_changed(tmp_path: Path) -> None:
    spec = _spec(_SLEEPER)
    config = _host_config(spec, tmp_path)
    changes = [["set", "KK_RECIPE", "1"], ["prepend", "PATH", "/kk/bin"], ["unset", "HOME", ""]]
    block = prepare_from_recipe(config, _recipe(spec, tmp_path, changes), spec)
    assert block is not None
    # The host's own path, with this kernel's id; written there, not here.
    assert block["connection_file"] == str(tmp_path / f"kernel-{config.kernel_id}.json")
    assert block["cmd"][-1] == block["connection_file"]
    assert not os.path.exists(block["connection_file"])
    early, stale = start_prepared(block)
    assert early is not None
    assert not stale
    try:
        assert early.recipe
        _wait_up(early)
        env = _environ(early.process.pid)
        assert env["KK_RECIPE"] == "1"
        assert env["PATH"] == "/kk/bin" + os.pathsep + os.environ["PATH"]
        assert "HOME" not in env
        assert env["JPY_PARENT_PID"] == str(os.getpid())
        assert read_connection_file(early.connection_file).key == early.key
    finally:
        early.discard()
    assert not os.path.exists(early.connection_file)


def test_a_recipe_whose_kernelspec_changed_starts_nothing(tmp_path: Path) -> None:
    spec = _spec(_SLEEPER)
    config = _host_config(spec, tmp_path)
    recipe = _recipe(spec, tmp_path, [])
    block = prepare_from_recipe(config, recipe, spec)
    assert block is not None
    spec_file = Path(recipe["stamps"][0][0])
    spec_file.write_text(spec_file.read_text() + " ")  # edited on the host since listed
    assert start_prepared(block) == (None, True)
    spec_file.unlink()  # or removed
    assert start_prepared(block) == (None, True)
    assert not os.path.exists(block["connection_file"])


@pytest.mark.parametrize("same", [True, False], ids=["as-listed", "changed-since"])
def test_a_recipes_kernel_is_kept_only_if_the_kernelspec_here_gives_the_same(
    tmp_path: Path, same: bool
) -> None:
    """The nanny finds the kernelspec itself once the kernel runs: a kernel started from
    an out-of-date recipe (here: an environment variable that the host's kernelspec no
    longer sets) is stopped, and the answer says the recipe was stale."""
    spec = _spec(_SLEEPER)
    config = _host_config(spec, tmp_path)
    changes = [] if same else [["set", "KK_GONE", "1"]]
    block = prepare_from_recipe(config, _recipe(spec, tmp_path, changes), spec)
    early, _ = start_prepared(block)
    assert early is not None
    pid = early.process.pid
    request = {**config.to_dict(), "early": block}
    beginning = begin(First(request, subreaper=False, early=early))
    try:
        assert beginning.stale_recipe is not same
        assert (beginning.early is early) is same
        if not same:
            assert early.process.returncode is not None  # stopped and reaped
            assert not os.path.exists(early.connection_file)
    finally:
        if beginning.early is not None:
            beginning.early.discard()
    assert not alive(pid)


@pytest.mark.parametrize(
    "text",
    [
        b'{"a": [1, 2.5, -3e-2, true, false, null], "b": {"c": "\\u00e9\\n\\"x"}}\n',
        '  {"unicode": "d\u00e9j\u00e0 \u2603", "big": 123456789012345678901234567890}  '.encode(),
        b"[]",
        b'"just a string"',
        b"NaN",
    ],
)
def test_the_request_is_read_as_json_reads_it(text: bytes) -> None:
    got, want = parse_json(text), json.loads(text)
    assert json.dumps(got) == json.dumps(want)


@pytest.mark.parametrize("text", [b"", b"{", b'{"a": 1} x', b"{'a': 1}", b"\xff{}"])
def test_a_request_that_is_not_json_is_a_value_error(text: bytes) -> None:
    for parse in (json.loads, parse_json):
        with pytest.raises(ValueError):  # noqa: PT011  (whatever json.loads says)
            parse(text)
