"""`kernelkit hosts add|list|remove` and the hosts file (no host is contacted)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from kernelkit import ProvisioningError
from kernelkit.nanny import HostRegistry
from kernelkit.nanny._hosts import parse_ssh_url


def kk(d: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "KERNELKIT_HOSTS_DIR": str(d)}
    return subprocess.run(
        [sys.executable, "-m", "kernelkit", "hosts", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )


def test_add_list_remove(tmp_path: Path) -> None:
    r = kk(tmp_path, "add", "gpu", "ssh://me@gpu.example:2222", "--python", "/opt/py/bin/python")
    assert r.returncode == 0, r.stderr
    listed = json.loads(kk(tmp_path, "list", "--json").stdout)
    assert listed == {
        "hosts": {
            "gpu": {
                "url": "ssh://me@gpu.example:2222",
                "python": "/opt/py/bin/python",
                "ssh_config": None,
            }
        }
    }
    assert (tmp_path / "hosts.json").stat().st_mode & 0o777 == 0o600
    assert kk(tmp_path, "add", "gpu", "ssh://other").returncode == 2  # taken
    assert kk(tmp_path, "remove", "gpu").returncode == 0
    assert "No hosts registered" in kk(tmp_path, "list").stdout


@pytest.mark.parametrize(
    ("name", "url", "message"),
    [
        ("h", "ssh://me:secret@host", "never stores one"),
        ("h", "http://host", "must look like ssh://"),
        ("a/b", "ssh://host", "not usable"),
        ("h", "ssh://host:99999", "port"),
        ("h", "ssh://host/path", "path"),
    ],
)
def test_bad_input_is_refused_with_a_reason(name: str, url: str, message: str) -> None:
    with pytest.raises(ProvisioningError, match=message):
        parse_ssh_url(name, url)


def test_unknown_host_names_the_known_ones(tmp_path: Path) -> None:
    registry = HostRegistry(tmp_path)
    registry.add(parse_ssh_url("one", "ssh://one"))
    with pytest.raises(ProvisioningError, match=r"no host named 'two' \(registered: one\)"):
        registry.get("two")
    r = kk(tmp_path, "remove", "two")
    assert r.returncode == 3
    assert "no host named 'two'" in r.stderr


def test_a_broken_hosts_file_is_named(tmp_path: Path) -> None:
    (tmp_path / "hosts.json").write_text("{not json")
    with pytest.raises(ProvisioningError, match=r"hosts\.json: not a kernelkit hosts file"):
        HostRegistry(tmp_path).load()
