"""Connection files: round trip, atomic 0600 writes, and every kind of bad input."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import stat
import traceback
from pathlib import Path
from typing import Any

import pytest

from kernelkit._connection import (
    ConnectionInfo,
    connection_file_path,
    new_key,
    read_connection_file,
    write_connection_file,
)
from kernelkit._errors import ConnectionFileError, LocalProtocolError
from kernelkit.protocol import Session

GOOD: dict[str, Any] = {
    "shell_port": 5001,
    "iopub_port": 5002,
    "stdin_port": 5003,
    "control_port": 5004,
    "hb_port": 5005,
    "ip": "127.0.0.1",
    "key": "secret",
    "transport": "tcp",
    "signature_scheme": "hmac-sha256",
    "kernel_name": "python3",
}


@pytest.fixture
def runtime(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    rt = tmp_path / "runtime"
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(rt))
    return rt


def _write_raw(path: Path, content: str | bytes, mode: int = 0o600) -> Path:
    data = content.encode() if isinstance(content, str) else content
    path.write_bytes(data)
    path.chmod(mode)
    return path


def test_new_key_is_random_hex() -> None:
    a, b = new_key(), new_key()
    assert a != b
    assert len(a) == 64
    int(a, 16)


def test_round_trip(tmp_path: Path) -> None:
    info = ConnectionInfo(
        shell_port=1, iopub_port=2, stdin_port=3, control_port=4, hb_port=5, key=new_key()
    )
    path = write_connection_file(info, tmp_path / "c.json")
    assert read_connection_file(path) == info


def test_default_path_in_runtime_dir_created_0700(runtime: Path) -> None:
    path = write_connection_file(ConnectionInfo(key=b"k"), kernel_id="abc")
    assert path == runtime / "kernel-abc.json"
    assert path == connection_file_path("abc")
    assert stat.S_IMODE(runtime.stat().st_mode) == 0o700
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_write_without_id_makes_one(runtime: Path) -> None:
    path = write_connection_file(ConnectionInfo())
    assert path.parent == runtime
    assert path.name.startswith("kernel-")


def test_write_is_0600_even_with_permissive_umask(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        path = write_connection_file(ConnectionInfo(), tmp_path / "new" / "c.json")
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700


def test_write_replaces_atomically_and_leaves_no_temp(tmp_path: Path) -> None:
    target = _write_raw(tmp_path / "c.json", "old", mode=0o644)
    write_connection_file(ConnectionInfo(shell_port=7, key=b"k"), target)
    assert read_connection_file(target).shell_port == 7
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["c.json"]


def test_write_failure_names_file(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(ConnectionFileError, match="cannot create the directory"):
        write_connection_file(ConnectionInfo(), blocker / "sub" / "c.json")


def test_kernel_id_with_separator_rejected(tmp_path: Path) -> None:
    with pytest.raises(ConnectionFileError, match="path separator"):
        connection_file_path("../evil", runtime_dir=tmp_path)


def test_key_is_text_in_file_bytes_in_memory(tmp_path: Path) -> None:
    path = write_connection_file(ConnectionInfo(key=b"abc"), tmp_path / "c.json")
    assert json.loads(path.read_text())["key"] == "abc"
    assert read_connection_file(path).key == b"abc"


def test_ports_as_numeric_strings(tmp_path: Path) -> None:
    d = {**GOOD, "shell_port": "6001", "hb_port": " 6005 "}
    path = _write_raw(tmp_path / "c.json", json.dumps(d))
    info = read_connection_file(path)
    assert (info.shell_port, info.hb_port) == (6001, 6005)


def test_optional_keys_default_and_extra_keys_ignored(tmp_path: Path) -> None:
    d = {k: v for k, v in GOOD.items() if k not in ("transport", "signature_scheme")}
    d["kernel_name"] = "x"
    d["jupyter_session"] = "whatever"  # curve_* are read now (tests/transport/test_curve.py)
    info = ConnectionInfo.from_dict(d)
    assert (info.transport, info.signature_scheme) == ("tcp", "hmac-sha256")


def test_ipc_transport(tmp_path: Path) -> None:
    info = ConnectionInfo(
        ip=str(tmp_path / "k"),
        transport="ipc",
        shell_port=1,
        iopub_port=2,
        stdin_port=3,
        control_port=4,
        hb_port=5,
        key=b"k",
    )
    back = read_connection_file(write_connection_file(info, tmp_path / "c.json"))
    assert back == info
    assert back.url("shell") == f"ipc://{tmp_path / 'k'}-1"


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"shell_port": None}, "'shell_port' must be an integer port, got null"),
        ({"shell_port": True}, "'shell_port' must be an integer port, got bool"),
        ({"shell_port": 1.5}, "'shell_port' must be an integer port, got float"),
        ({"iopub_port": "abc"}, "'iopub_port' must be an integer port, got the string 'abc'"),
        ({"stdin_port": 70000}, "'stdin_port' is 70000, out of range 0-65535"),
        ({"control_port": -1}, "'control_port' is -1, out of range"),
        ({"ip": 5}, "'ip' must be a string, got int"),
        ({"ip": ""}, "'ip' is empty"),
        ({"key": 12}, "'key' must be a string, got int"),
        ({"transport": "udp"}, "'transport' is 'udp'; expected one of tcp, ipc"),
        ({"signature_scheme": "md5"}, "'signature_scheme' is 'md5'"),
        ({"signature_scheme": "hmac-nope"}, "'signature_scheme' is 'hmac-nope'"),
        ({"kernel_name": ["x"]}, "'kernel_name' must be a string, got list"),
    ],
)
def test_bad_values_name_file_and_problem(
    tmp_path: Path, change: dict[str, Any], problem: str
) -> None:
    path = _write_raw(tmp_path / "bad.json", json.dumps({**GOOD, **change}))
    with pytest.raises(ConnectionFileError) as info:
        read_connection_file(path)
    assert str(path) in str(info.value)
    assert problem in str(info.value)
    assert info.value.path == str(path)


@pytest.mark.parametrize("missing", ["ip", "key", "shell_port", "iopub_port", "hb_port"])
def test_missing_keys(tmp_path: Path, missing: str) -> None:
    d = {k: v for k, v in GOOD.items() if k != missing}
    path = _write_raw(tmp_path / "bad.json", json.dumps(d))
    with pytest.raises(ConnectionFileError, match=f"{path}: missing key '{missing}'"):
        read_connection_file(path)


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("{not json", "invalid JSON"),
        ('{"shell_port": 1', "invalid JSON"),
        ("", "the file is empty"),
        ("[1, 2]", "expected a JSON object, got list"),
        ("null", "expected a JSON object, got null"),
        (b"\xff\xfe{}", "invalid JSON"),
    ],
)
def test_bad_json(tmp_path: Path, content: str | bytes, problem: str) -> None:
    path = _write_raw(tmp_path / "bad.json", content)
    with pytest.raises(ConnectionFileError, match=problem) as info:
        read_connection_file(path)
    assert str(path) in str(info.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConnectionFileError, match="no such file") as info:
        read_connection_file(tmp_path / "nope.json")
    assert "nope.json" in str(info.value)


def test_directory_is_not_a_file(tmp_path: Path) -> None:
    with pytest.raises(ConnectionFileError, match="not a regular file"):
        read_connection_file(tmp_path)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_unreadable_file(tmp_path: Path) -> None:
    path = _write_raw(tmp_path / "c.json", json.dumps(GOOD), mode=0o000)
    with pytest.raises(ConnectionFileError, match="cannot open the file"):
        read_connection_file(path)


def test_symlink_loop_is_unreadable(tmp_path: Path) -> None:
    loop = tmp_path / "loop.json"
    loop.symlink_to(loop)
    with pytest.raises(ConnectionFileError, match="cannot open the file") as info:
        read_connection_file(loop)
    assert str(loop) in str(info.value)


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660, 0o620, 0o601])
def test_wrong_mode_is_strict_by_default(tmp_path: Path, mode: int) -> None:
    path = _write_raw(tmp_path / "c.json", json.dumps(GOOD), mode=mode)
    with pytest.raises(
        ConnectionFileError, match=f"mode {mode:04o} gives group or others access"
    ) as info:
        read_connection_file(path)
    assert str(path) in str(info.value)
    assert "chmod 600" in str(info.value)
    assert read_connection_file(path, check_mode=False).shell_port == 5001


def test_oversized_file(tmp_path: Path) -> None:
    path = _write_raw(tmp_path / "c.json", b" " * (2 << 20))
    with pytest.raises(ConnectionFileError, match="too large"):
        read_connection_file(path)


def test_from_dict_not_a_mapping() -> None:
    with pytest.raises(ConnectionFileError, match="<dict>: expected a JSON object, got list"):
        ConnectionInfo.from_dict([])  # type: ignore[arg-type]


def test_from_dict_accepts_bytes_key() -> None:
    assert ConnectionInfo.from_dict({**GOOD, "key": b"k"}).key == b"k"


def test_repr_hides_the_key() -> None:
    info = ConnectionInfo(shell_port=7, key=b"s3cret-key")
    assert "s3cret" not in repr(info)
    assert "s3cret" not in str(info)
    assert "key=<hidden, 10 bytes>" in repr(info)
    assert "shell_port=7" in repr(info)
    assert "key=<empty: unsigned>" in repr(ConnectionInfo())


def test_traceback_of_a_failing_call_hides_the_key(tmp_path: Path) -> None:
    info = ConnectionInfo(key=b"s3cret-key")
    try:
        raise RuntimeError(f"could not reach {info}")
    except RuntimeError:
        assert "s3cret" not in traceback.format_exc()


def test_empty_key_refused_unless_asked(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = write_connection_file(ConnectionInfo(shell_port=7), tmp_path / "c.json")
    with pytest.raises(ConnectionFileError, match=r"'key' is empty.*allow_unsigned=True"):
        read_connection_file(path)
    with caplog.at_level(logging.WARNING, logger="kernelkit.connection"):
        assert read_connection_file(path, allow_unsigned=True).key == b""
    assert "unsigned" in caplog.text


@pytest.mark.parametrize("scheme", ["hmac-shake_128", "hmac-shake_256"])
def test_scheme_the_session_refuses_is_refused_in_the_file(tmp_path: Path, scheme: str) -> None:
    path = _write_raw(tmp_path / "c.json", json.dumps({**GOOD, "signature_scheme": scheme}))
    with pytest.raises(ConnectionFileError, match="no fixed digest size"):
        read_connection_file(path)


def test_every_scheme_the_file_accepts_a_session_signs_with(tmp_path: Path) -> None:
    for algorithm in sorted(hashlib.algorithms_available):
        scheme = f"hmac-{algorithm}"
        path = _write_raw(tmp_path / "c.json", json.dumps({**GOOD, "signature_scheme": scheme}))
        try:
            info = read_connection_file(path)
        except ConnectionFileError:
            with pytest.raises(LocalProtocolError):
                Session(key=b"k", signature_scheme=scheme)
        else:
            Session(key=info.key, signature_scheme=info.signature_scheme).sign([b"{}"])


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to give a file to another user")
def test_file_owned_by_another_user_refused(tmp_path: Path) -> None:
    path = write_connection_file(ConnectionInfo(key=b"k"), tmp_path / "c.json")
    os.chown(path, 12345, 12345)
    with pytest.raises(ConnectionFileError, match="owned by uid 12345"):
        read_connection_file(path)
    link = tmp_path / "link.json"
    link.symlink_to(path)
    with pytest.raises(ConnectionFileError, match="owned by uid 12345"):
        read_connection_file(link)
    assert read_connection_file(path, check_mode=False).key == b"k"


def test_directories_are_0700_whatever_the_umask(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        write_connection_file(ConnectionInfo(key=b"k"), tmp_path / "a" / "b" / "c.json")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "a").stat().st_mode) == 0o700
    assert stat.S_IMODE((tmp_path / "a" / "b").stat().st_mode) == 0o700


def test_runtime_dir_writable_by_others_is_warned_about(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    with caplog.at_level(logging.WARNING, logger="kernelkit.connection"):
        write_connection_file(ConnectionInfo(key=b"k"), shared / "c.json")
    assert "writable by group or others" in caplog.text
    assert "chmod 700" in caplog.text
