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
from kernelkit.nanny._ssh_listing import ListingCache, cached_kernels


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
    r = kk(
        tmp_path,
        "add",
        "gpu",
        "ssh://me@gpu.example:2222",
        "--python",
        "/opt/py/bin/python",
        "--no-refresh",
    )
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
    assert kk(tmp_path, "add", "gpu", "ssh://other", "--no-refresh").returncode == 2  # taken
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


def test_listing_reads_the_cache_and_never_runs_ssh(tmp_path: Path) -> None:
    registry = HostRegistry(tmp_path)
    gpu = parse_ssh_url("gpu", "ssh://me@gpu.example")
    registry.add(gpu)
    cache = ListingCache(tmp_path / "listings")
    (kt,) = cached_kernels([gpu], cache)
    assert kt.name == "gpu"
    assert "not listed yet: run `kernelkit hosts refresh gpu`" in kt.problems[0]

    spec = {
        "name": "python3",
        "argv": ["python", "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python 3",
        "language": "python",
        "metadata": {},
    }
    env_id = "env/work-1a2b3c4d/python3"
    cache.write(
        gpu,
        {
            "kernels": [
                {"id": "spec/python3", "display_name": "Python 3", "spec": spec, "problems": []},
                {"id": env_id, "display_name": "Python (work)", "spec": spec, "problems": []},
                {"id": "env/broken-00/none", "spec": None, "problems": ["no python"]},
            ],
            "problems": [],
        },
    )
    assert (cache.directory / "gpu.json").stat().st_mode & 0o777 == 0o600
    types = {t.name: t for t in cached_kernels([gpu], cache)}
    assert sorted(types) == ["gpu/env/work-1a2b3c4d/python3", "gpu/python3"]
    config = types["gpu/env/work-1a2b3c4d/python3"].metadata["kernel_provisioner"]["config"]
    assert config == {"host": "gpu", "remote_kernel": env_id}
    assert (
        types["gpu/python3"].metadata["kernel_provisioner"]["config"]["remote_kernel"] == "python3"
    )

    # Registered differently since (another address): the old listing is not used.
    moved = parse_ssh_url("gpu", "ssh://me@gpu2.example")
    (kt,) = cached_kernels([moved], cache)
    assert "not listed yet" in kt.problems[0]

    cache.write(gpu, {"error": "Permission denied (publickey)."})
    (kt,) = cached_kernels([gpu], cache)
    assert "Permission denied" in kt.problems[0]
    assert "kernelkit hosts refresh gpu" in kt.problems[0]


def test_refresh_of_an_unknown_host_names_the_known_ones(tmp_path: Path) -> None:
    HostRegistry(tmp_path).add(parse_ssh_url("one", "ssh://one"))
    r = kk(tmp_path, "refresh", "two")
    assert r.returncode == 3
    assert "no host named 'two' (registered: one)" in r.stderr
