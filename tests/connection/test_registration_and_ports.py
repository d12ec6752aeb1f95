"""JEP 66 registration files and last-resort port allocation."""

from __future__ import annotations

import json
import socket
import stat
from pathlib import Path

import pytest

from kernelkit._connection import (
    ConnectionInfo,
    RegistrationInfo,
    allocate_ports,
    read_connection_file,
    read_registration_file,
    registration_file_path,
    write_connection_file,
    write_registration_file,
)
from kernelkit._errors import ConnectionFileError, ProvisioningError


def test_registration_round_trip_port_is_a_json_string(tmp_path: Path) -> None:
    reg = RegistrationInfo(kernel_id="k1", registration_port=5555, key=b"secret")
    path = write_registration_file(reg, runtime_dir=tmp_path)
    assert path == registration_file_path("k1", runtime_dir=tmp_path)
    raw = json.loads(path.read_text())
    assert raw == {
        "kernel_id": "k1",
        "transport": "tcp",
        "ip": "127.0.0.1",
        "registration_ip": "127.0.0.1",
        "registration_port": "5555",
        "signature_scheme": "hmac-sha256",
        "key": "secret",
    }
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert read_registration_file(path) == reg
    assert reg.url == "tcp://127.0.0.1:5555"


def test_registration_port_as_integer_accepted() -> None:
    d = {"kernel_id": "k", "registration_port": 7, "key": "k", "ip": "127.0.0.1"}
    d["registration_ip"] = "127.0.0.1"
    assert RegistrationInfo.from_dict(d).registration_port == 7


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"registration_port": None}, "'registration_port' must be an integer port"),
        ({"registration_port": "0"}, "'registration_port' is 0"),
        ({"registration_port": "99999"}, "out of range"),
        ({"kernel_id": 3}, "'kernel_id' must be a string"),
        ({"ip": ""}, "'ip' is empty"),
        ({"transport": "inproc"}, "'transport' is 'inproc'"),
    ],
)
def test_bad_registration_file(tmp_path: Path, change: dict[str, object], problem: str) -> None:
    d = RegistrationInfo(kernel_id="k", registration_port=5, key=b"x").to_dict()
    path = tmp_path / "r.json"
    path.write_text(json.dumps({**d, **change}))
    path.chmod(0o600)
    with pytest.raises(ConnectionFileError, match=problem) as info:
        read_registration_file(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize("missing", ["kernel_id", "registration_port", "ip", "registration_ip"])
def test_registration_missing_key(tmp_path: Path, missing: str) -> None:
    d = RegistrationInfo(kernel_id="k", registration_port=5, key=b"x").to_dict()
    del d[missing]
    path = tmp_path / "r.json"
    path.write_text(json.dumps(d))
    path.chmod(0o600)
    with pytest.raises(ConnectionFileError, match=f"missing key '{missing}'"):
        read_registration_file(path)


def test_registration_wrong_mode(tmp_path: Path) -> None:
    path = write_registration_file(
        RegistrationInfo(kernel_id="k", registration_port=5, key=b"x"), tmp_path / "r.json"
    )
    path.chmod(0o644)
    with pytest.raises(ConnectionFileError, match="gives group or others access"):
        read_registration_file(path)


def test_allocate_ports_distinct_and_bindable() -> None:
    ports = allocate_ports(5)
    assert len(set(ports)) == 5
    for port in ports:
        with socket.socket() as s:
            s.bind(("127.0.0.1", port))


def test_allocate_ports_never_repeats_within_the_window() -> None:
    seen: set[int] = set()
    for _ in range(40):
        batch = allocate_ports(5)
        assert not seen & set(batch)
        seen |= set(batch)


def test_allocate_zero_ports() -> None:
    assert allocate_ports(0) == []


def test_allocate_ports_bad_ip() -> None:
    with pytest.raises(ProvisioningError, match=r"cannot allocate ports on '192\.0\.2\.1'"):
        allocate_ports(1, ip="192.0.2.1")


def test_combined_connection_and_registration_file(tmp_path: Path) -> None:
    info = ConnectionInfo(key=b"k", kernel_name="xpython")
    reg = RegistrationInfo(kernel_id="k1", registration_port=6000, key=b"k")
    path = write_connection_file(info, tmp_path / "both.json", registration=reg)
    assert read_connection_file(path) == info
    assert read_registration_file(path) == reg
    assert json.loads(path.read_text())["registration_port"] == "6000"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_combined_file_must_agree(tmp_path: Path) -> None:
    reg = RegistrationInfo(kernel_id="k1", registration_port=6000, key=b"other")
    with pytest.raises(ConnectionFileError, match="registration's key differs"):
        write_connection_file(ConnectionInfo(key=b"k"), tmp_path / "x.json", registration=reg)
    assert not (tmp_path / "x.json").exists()
