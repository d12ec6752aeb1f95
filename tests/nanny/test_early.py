"""The nanny starts an ipykernel-like kernel before its own heavy imports (``_early``):
what it writes and starts is what its provisioner would have, kernels of other kinds are
left to the provisioner, and the early kernel's output is kept from its first byte."""

from __future__ import annotations

import asyncio
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

from kernelkit import KernelError, KernelStartError, ProvisioningError, read_connection_file
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


# A kernel that writes ports back as ipykernel does (binds five sockets, writes them into
# its connection file, then waits): enough for a provisioner to finish its launch.
_WRITES_BACK = """
import json, socket, sys, time
path = sys.argv[1]
info = json.load(open(path))
held = []
for name in ("shell", "iopub", "stdin", "control", "hb"):
    s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(); held.append(s)
    info[name + "_port"] = s.getsockname()[1]
open(path + ".tmp", "w").write(json.dumps(info))
import os; os.replace(path + ".tmp", path)
time.sleep(60)
"""


async def _launch_with(
    early: Any, config: NannyConfig, spec: KernelSpec, *, env: dict[str, str]
) -> Any:
    from kernelkit.nanny._kernel import AdoptingProvisioner
    from kernelkit.provisioning import launch_provisioner

    p = AdoptingProvisioner(
        kernel_id=config.kernel_id, kernel_spec=spec, early=early, **config.options
    )
    await launch_provisioner(p, env=env, inherit_env=True, cwd=None, extra_arguments=())
    return p


async def test_the_provisioner_adopts_the_kernel_it_would_have_started(tmp_path: Path) -> None:
    spec = _spec(_WRITES_BACK)
    config = _config(spec, tmp_path)
    early = start_early(config, resolve(config))
    assert early is not None
    p = await _launch_with(early, config, spec, env={"KK_EARLY": "1"})
    try:
        assert p.pid == early.process.pid  # adopted: no second kernel
        assert p.connection_info.ports_chosen
        early.discard()  # the provisioner's now: this does nothing
        assert await p.poll() is None
        assert p.output_tail() == []  # (its pipes are still open, and read)
    finally:
        await p.shutdown_requested()
        await p.cleanup(restart=False)
    assert not alive(early.process.pid)
    assert os.listdir(tmp_path) == []


async def test_a_kernel_started_otherwise_is_not_adopted(tmp_path: Path) -> None:
    # The early kernel got KK_EARLY=1; this launch asks for KK_EARLY=2: it is stopped and
    # the launch starts its own, in a connection file written anew.
    spec = _spec(_WRITES_BACK)
    config = _config(spec, tmp_path)
    early = start_early(config, resolve(config))
    assert early is not None
    await asyncio.sleep(0.5)  # (it may even have written its ports back meanwhile)
    p = await _launch_with(early, config, spec, env={"KK_EARLY": "2"})
    try:
        assert p.pid != early.process.pid
        assert early.process.returncode is not None  # stopped and reaped
        assert _environ(p.pid)["KK_EARLY"] == "2"
        assert p.connection_info.ports_chosen
    finally:
        await p.shutdown_requested()
        await p.cleanup(restart=False)
    assert os.listdir(tmp_path) == []


def test_an_early_start_makes_private_directories_whatever_the_umask(tmp_path: Path) -> None:
    config = _config(_spec("pass"), tmp_path / "a" / "b")
    old = os.umask(0)
    try:
        early = start_early(config, resolve(config))
    finally:
        os.umask(old)
    assert early is not None
    early.discard()
    for level in (tmp_path / "a", tmp_path / "a" / "b"):
        assert level.stat().st_mode & 0o777 == 0o700, level


# _WRITES_BACK that first notes its start (its pid) in the file named by its last argument.
_NOTES_ITS_START = "import os, sys; open(sys.argv[-1], 'a').write(f'{os.getpid()}\\n')\n" + (
    _WRITES_BACK
)


async def test_the_nanny_adopts_the_kernel_it_started_early(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The whole way: the owner prepares the launch, the nanny starts the kernel before its
    # imports, and its provisioner (KernelUnderNanny) adopts it instead of starting another.
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path / "runtime"))
    starts = tmp_path / "starts"
    spec = _spec(_NOTES_ITS_START, kernel_provisioner={"provisioner_name": "nanny-provisioner"})
    km = AsyncKernelManager(kernel_spec=spec)
    await km.start_kernel(env={"KK_EARLY": "1"}, extra_arguments=[str(starts)])
    try:
        p: Any = km.provisioner
        assert starts.read_text().split() == [str(p.pid)]  # one start: the early one
    finally:
        await km.shutdown_kernel(now=True)
    assert os.listdir(tmp_path / "runtime") == []


@pytest.mark.parametrize(
    "options", [{"independent": True}, {"ip": "localhost"}], ids=["independent", "ip"]
)
async def test_a_kernel_started_for_another_launch_is_not_adopted(
    tmp_path: Path, options: dict[str, Any]
) -> None:
    # Same command, environment and directory, but this launch is independent (no parent
    # death, no JPY_PARENT_PID), or its kernel listens elsewhere: not the early kernel.
    spec = _spec(_WRITES_BACK)
    config = _config(spec, tmp_path)
    early = start_early(config, resolve(config))
    assert early is not None
    this = dataclasses.replace(config, options={**config.options, **options})
    try:
        p = await _launch_with(early, this, spec, env={"KK_EARLY": "1"})
    finally:
        early.discard()
    try:
        assert p.pid != early.process.pid
        assert ("JPY_PARENT_PID" in _environ(p.pid)) != options.get("independent", False)
        given = read_connection_file(p.connection_file, check_mode=False)  # (as written back)
        assert given.ip == p.connection_info.ip == options.get("ip", "127.0.0.1")
    finally:
        await p.shutdown_requested()
        await p.cleanup(restart=False)
    assert os.listdir(tmp_path) == []


async def test_an_early_kernel_is_stopped_when_the_launch_fails_before_it(
    tmp_path: Path,
) -> None:
    # A kernel that writes its ports back as it runs "ipykernel" (no port mode declared),
    # and a launch whose port_mode option is wrong: it fails before it starts a kernel.
    spec = dataclasses.replace(
        _spec(_WRITES_BACK), argv=(*_spec(_WRITES_BACK).argv, "ipykernel"), metadata={}
    )
    config = _config(spec, tmp_path)
    early = start_early(config, resolve(config))
    assert early is not None
    bad = dataclasses.replace(config, options={**config.options, "port_mode": "bogus"})
    try:
        with pytest.raises(KernelError, match="bogus"):
            await _launch_with(early, bad, spec, env={"KK_EARLY": "1"})
        assert early.process.returncode is not None  # stopped and reaped
        assert os.listdir(tmp_path) == []
    finally:
        early.discard()


def test_the_factory_stops_the_early_kernel_if_its_provisioner_cannot_be_made(
    tmp_path: Path,
) -> None:
    from kernelkit.nanny._kernel import AdoptingFactory

    spec = _spec(_WRITES_BACK)
    config = _config(spec, tmp_path)
    early = start_early(config, resolve(config))
    assert early is not None
    factory = AdoptingFactory(early)
    try:
        with pytest.raises(ProvisioningError, match="bogus"):
            factory.create_provisioner_instance(
                config.kernel_id,
                spec,
                provisioner_name="local-provisioner",
                config={"transport": "bogus"},
            )
        assert early.process.returncode is not None  # stopped and reaped
        assert os.listdir(tmp_path) == []
    finally:
        factory.release()
        early.discard()


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
