"""kernelkit's connection files and kernelspecs against jupyter_client (a test-only peer),
and the kernelspecs that ipykernel and xeus-python really install."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import pytest
from jupyter_client.connect import ConnectionFileMixin
from jupyter_client.connect import write_connection_file as jc_write_connection_file
from jupyter_client.kernelspec import KernelSpecManager

from kernelkit._connection import (
    ConnectionInfo,
    new_key,
    read_connection_file,
    write_connection_file,
)
from kernelkit.specs import (
    find_kernel_specs,
    get_kernel_spec,
    install_kernel_spec,
    kernel_spec_dirs,
    remove_kernel_spec,
    scan_kernel_specs,
)

pytestmark = pytest.mark.integration

VENV_KERNELS = Path(sys.prefix) / "share" / "jupyter" / "kernels"


def _spec_json(argv: list[str], display_name: str) -> dict[str, Any]:
    return {"argv": argv, "display_name": display_name, "language": "python"}


def _write(kernels: Path, name: str, content: dict[str, Any] | str) -> Path:
    d = kernels / name
    d.mkdir(parents=True)
    text = content if isinstance(content, str) else json.dumps(content)
    (d / "kernel.json").write_text(text)
    return d


@pytest.fixture
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    """Per-user and JUPYTER_PATH directories in tmp_path; the venv's real specs stay."""
    dirs = {"path": tmp_path / "jpath", "data": tmp_path / "jdata", "ipython": tmp_path / "ipy"}
    monkeypatch.setenv("JUPYTER_PATH", str(dirs["path"]))
    monkeypatch.setenv("JUPYTER_DATA_DIR", str(dirs["data"]))
    monkeypatch.setenv("IPYTHONDIR", str(dirs["ipython"]))
    monkeypatch.delenv("JUPYTER_PREFER_ENV_PATH", raising=False)
    return dirs


# ------------------------------------------------------------------ connection files


@pytest.mark.parametrize("transport", ["tcp", "ipc"])
def test_kernelkit_connection_file_read_by_jupyter_client(tmp_path: Path, transport: str) -> None:
    info = ConnectionInfo(
        ip="127.0.0.1" if transport == "tcp" else str(tmp_path / "kernel-ipc"),
        transport=transport,  # type: ignore[arg-type]
        shell_port=40001,
        iopub_port=40002,
        stdin_port=40003,
        control_port=40004,
        hb_port=40005,
        key=new_key(),
        kernel_name="python3",
    )
    path = write_connection_file(info, tmp_path / "kernel-kk.json")
    peer = ConnectionFileMixin()
    peer.load_connection_file(str(path))
    got = peer.get_connection_info()
    assert got["key"] == info.key
    assert got["transport"] == transport
    assert got["ip"] == info.ip
    assert got["signature_scheme"] == "hmac-sha256"
    assert {c: got[f"{c}_port"] for c in ("shell", "iopub", "stdin", "control", "hb")} == {
        "shell": 40001,
        "iopub": 40002,
        "stdin": 40003,
        "control": 40004,
        "hb": 40005,
    }


@pytest.mark.parametrize("transport", ["tcp", "ipc"])
def test_jupyter_client_connection_file_read_by_kernelkit(tmp_path: Path, transport: str) -> None:
    key = new_key()
    ip = "127.0.0.1" if transport == "tcp" else str(tmp_path / "kernel-ipc")
    fname, written = jc_write_connection_file(
        str(tmp_path / "kernel-jc.json"),
        ip=ip,
        key=key,
        transport=transport,
        kernel_name="xpython",
    )
    info = read_connection_file(fname)  # strict mode: jupyter_client writes 0600 too
    assert info.key == key
    assert info.to_dict() == written


def test_files_written_by_each_are_byte_for_byte_equivalent(tmp_path: Path) -> None:
    info = ConnectionInfo(
        shell_port=1, iopub_port=2, stdin_port=3, control_port=4, hb_port=5, key=b"k"
    )
    ours = write_connection_file(info, tmp_path / "ours.json")
    theirs, _ = jc_write_connection_file(
        str(tmp_path / "theirs.json"),
        key=b"k",
        **{f"{c}_port": info.port(c) for c in ("shell", "iopub", "stdin", "control", "hb")},
    )
    assert json.loads(ours.read_text()) == json.loads(Path(theirs).read_text())


# ------------------------------------------------------------------ kernelspecs


def _jupyter_kernelspec_list() -> dict[str, Any]:
    """`jupyter kernelspec list --json`, run as jupyter_client's real command line."""
    out = subprocess.run(
        [sys.executable, "-m", "jupyter_client.kernelspecapp", "list", "--json"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    specs: dict[str, Any] = json.loads(out.stdout)["kernelspecs"]
    return specs


@pytest.mark.parametrize("prefer_env", [None, "0", "1"])
def test_search_path_is_kernel_spec_managers(
    isolated: dict[str, Path], monkeypatch: pytest.MonkeyPatch, prefer_env: str | None
) -> None:
    if prefer_env is not None:
        monkeypatch.setenv("JUPYTER_PREFER_ENV_PATH", prefer_env)
    assert kernel_spec_dirs() == [Path(d) for d in KernelSpecManager().kernel_dirs]


def test_ipykernel_and_xeus_specs_match_jupyter_kernelspec_list(
    isolated: dict[str, Path],
) -> None:
    theirs = _jupyter_kernelspec_list()
    ours = {s.name: s for s in scan_kernel_specs()}
    for name in ("python3", "xpython", "xpython-raw"):
        assert name in theirs
        assert ours[name].resource_dir == Path(theirs[name]["resource_dir"])
        assert ours[name].resource_dir.parent == VENV_KERNELS
        assert ours[name].healthy, ours[name].problems
    assert sorted(ours) == sorted(theirs)
    for name, entry in theirs.items():
        spec = ours[name].to_dict()
        jc = entry["spec"]
        for key in ("argv", "display_name", "language", "env", "metadata", "interrupt_mode"):
            assert spec[key] == jc[key], (name, key)
        assert spec.get("kernel_protocol_version") == (jc["kernel_protocol_version"] or None)
    assert {n: str(p) for n, p in find_kernel_specs().items()} == {
        n: e["resource_dir"] for n, e in theirs.items()
    }


def test_search_order_shadowing_and_case_match_kernel_spec_manager(
    isolated: dict[str, Path],
) -> None:
    kernels = isolated["path"] / "kernels"
    argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    _write(kernels, "python3", _spec_json(argv, "shadowing python3"))  # shadows the venv's
    _write(kernels, "MixedCase", _spec_json(argv, "mixed"))
    _write(isolated["data"] / "kernels", "mixedcase", _spec_json(argv, "shadowed"))
    _write(isolated["ipython"] / "kernels", "legacy", _spec_json(argv, "legacy"))
    _write(kernels, "broken", "{not json")

    ksm = KernelSpecManager(ensure_native_kernel=False)
    theirs = {k: Path(v) for k, v in ksm.find_kernel_specs().items()}
    assert find_kernel_specs() == theirs
    assert theirs["python3"] == kernels / "python3"
    assert theirs["mixedcase"] == kernels / "MixedCase"
    assert "legacy" in theirs

    # jupyter_client drops the broken spec (with a logged warning); kernelkit reports it.
    with warnings.catch_warnings():
        # traitlets deprecation for extra kernel.json keys (bash_kernel's codemirror_mode);
        # as an error it would make jupyter_client drop that spec too.
        warnings.simplefilter("ignore", DeprecationWarning)
        all_theirs = ksm.get_all_specs()
    scanned = {s.name: s for s in scan_kernel_specs()}
    assert "broken" not in all_theirs
    assert "invalid JSON" in scanned["broken"].problems[0]
    assert {n for n, s in scanned.items() if s.healthy} == set(all_theirs)
    assert (
        get_kernel_spec("MIXEDCASE").display_name == ksm.get_kernel_spec("mixedcase").display_name
    )


def test_install_interop(isolated: dict[str, Path], tmp_path: Path) -> None:
    src = _write(tmp_path / "src", "kk-spec", _spec_json([sys.executable, "-V"], "kk"))
    ksm = KernelSpecManager(ensure_native_kernel=False)

    dest = install_kernel_spec(src, user=True)
    assert ksm.find_kernel_specs()["kk-spec"] == str(dest)
    assert ksm.get_kernel_spec("kk-spec").argv == [sys.executable, "-V"]

    jc_argv = [sys.executable, "-V", "{connection_file}"]
    src2 = _write(tmp_path / "src", "jc-spec", _spec_json(jc_argv, "jc"))
    jc_dest = ksm.install_kernel_spec(str(src2), user=True)
    assert find_kernel_specs()["jc-spec"] == Path(jc_dest)
    assert get_kernel_spec("jc-spec").display_name == "jc"

    assert remove_kernel_spec("kk-spec") == dest
    assert "kk-spec" not in ksm.find_kernel_specs()
    ksm.remove_kernel_spec("jc-spec")
    assert "jc-spec" not in find_kernel_specs()


@pytest.mark.parametrize(
    ("name", "module"),
    [("python3", "ipykernel_launcher"), ("xpython", "xpython_launcher")],
)
def test_bare_python_argv_runs_in_the_holding_environment(
    isolated: dict[str, Path], tmp_path: Path, name: str, module: str
) -> None:
    # xeus-python's argv[0] is a bare "python3.11": only the venv holding the spec has
    # xpython_launcher, so the interpreter chosen must be that venv's.
    spec = get_kernel_spec(name)
    argv = spec.format_argv(connection_file=tmp_path / "c.json")
    assert Path(argv[0]).parent == Path(sys.prefix) / "bin"
    probe = f"import importlib.util, sys; sys.exit(importlib.util.find_spec({module!r}) is None)"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    subprocess.run([argv[0], "-c", probe], env=env, timeout=60, check=True)
