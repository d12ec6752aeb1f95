"""The on-disk cache of large kernels directories (kernelkit.specs._listcache): a fresh
process gets the same specs without reading each kernel.json, and never a stale one.

Each "fresh process" here is the in-process cache cleared; the last test runs real ones.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from kernelkit.specs import KernelSpec, _scan, scan_kernel_specs
from kernelkit.specs._listcache import MIN_SPECS, cache_file
from tests.specs.conftest import good_spec, write_spec

N = MIN_SPECS + 4


@pytest.fixture
def kernels(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A kernels directory of N specs, trusted by stat at once (no racy window)."""
    monkeypatch.setattr(_scan, "_RACY_NS", 0)
    directory = tmp_path / "kernels"
    for i in range(N):
        write_spec(directory, f"k{i:02d}", good_spec(display_name=f"Kernel {i:02d}"))
    _scan._cache.clear()
    yield directory
    _scan._cache.clear()


class _Reads:
    """Counts the kernel.json files a scan opens (the real reader, counted)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.paths: list[str] = []
        real = _scan._read_bytes

        def counted(path: str) -> tuple[bytes, _scan.Signature | None]:
            self.paths.append(path)
            return real(path)

        monkeypatch.setattr(_scan, "_read_bytes", counted)


def _fresh_scan(directory: Path) -> list[KernelSpec]:
    _scan._cache.clear()  # what a new process starts with
    return scan_kernel_specs([directory])


def _names(specs: list[KernelSpec]) -> list[str]:
    return [s.name for s in specs]


def _tick(path: Path) -> None:
    """Wait until the file system's clock has moved past ``path``'s ctime (a few ms)."""
    ctime = path.stat().st_ctime_ns
    probe = path.parent / ".tick"
    for _ in range(200):
        probe.write_bytes(b"")
        if probe.stat().st_ctime_ns > ctime:
            probe.unlink()
            return
        time.sleep(0.005)
    raise AssertionError("the file system clock did not move within a second")


def test_a_fresh_listing_reads_no_kernel_json(
    kernels: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = _fresh_scan(kernels)
    assert cache_file(str(kernels)).is_file()
    reads = _Reads(monkeypatch)
    second = _fresh_scan(kernels)
    assert reads.paths == []
    assert second == first
    assert [s.resource_dir for s in second] == [kernels / f"k{i:02d}" for i in range(N)]


def test_an_edit_in_place_keeping_size_and_mtime_is_seen(kernels: Path) -> None:
    _fresh_scan(kernels)
    kernel_json = kernels / "k03" / "kernel.json"
    before = kernel_json.stat()
    _tick(kernel_json)
    data = kernel_json.read_bytes()
    with open(kernel_json, "r+b") as f:  # same inode, same size
        f.write(data.replace(b"Kernel 03", b"Kernel XY"))
    os.utime(kernel_json, ns=(before.st_atime_ns, before.st_mtime_ns))  # mtime put back
    after = kernel_json.stat()
    assert (after.st_ino, after.st_size, after.st_mtime_ns) == (
        before.st_ino,
        before.st_size,
        before.st_mtime_ns,
    )
    specs = {s.name: s for s in _fresh_scan(kernels)}
    assert specs["k03"].display_name == "Kernel XY"


def test_a_deleted_spec_is_gone_and_an_added_one_is_listed(kernels: Path) -> None:
    _fresh_scan(kernels)
    (kernels / "k05" / "kernel.json").unlink()
    write_spec(kernels, "new", good_spec(display_name="New"))
    names = _names(_fresh_scan(kernels))
    assert "k05" not in names
    assert "new" in names
    assert len(names) == N
    names = _names(_fresh_scan(kernels))  # and from the rewritten cache
    assert "k05" not in names
    assert "new" in names


def test_a_replaced_spec_directory_is_read_again(kernels: Path) -> None:
    _fresh_scan(kernels)
    (kernels / "k07" / "kernel.json").unlink()
    (kernels / "k07").rmdir()
    write_spec(kernels, "k07", good_spec(display_name="Kernel 77"))
    specs = {s.name: s for s in _fresh_scan(kernels)}
    assert specs["k07"].display_name == "Kernel 77"


def test_health_is_judged_on_every_listing(kernels: Path, tmp_path: Path) -> None:
    exe = tmp_path / "bin" / "kern"
    exe.parent.mkdir()
    exe.write_text("#!/bin/sh\n")
    exe.chmod(0o755)
    write_spec(kernels, "own", good_spec(argv=[str(exe)]))
    specs = {s.name: s for s in _fresh_scan(kernels)}
    assert specs["own"].healthy
    exe.unlink()
    specs = {s.name: s for s in _fresh_scan(kernels)}
    assert specs["own"].problems[-1].endswith(f"argv[0] '{exe}' does not exist")


def test_broken_specs_keep_their_problems(kernels: Path) -> None:
    write_spec(kernels, "garbled", "{not json")
    write_spec(kernels, "noconn", {"argv": ["/bin/sh"], "display_name": "No connection"})
    first = {s.name: s.problems for s in _fresh_scan(kernels)}
    second = {s.name: s.problems for s in _fresh_scan(kernels)}
    assert second == first
    assert "invalid JSON" in second["garbled"][0]
    assert "{connection_file}" in second["noconn"][0]


@pytest.mark.parametrize(
    "garbage",
    [
        b"\x00\xff not json",
        b"[]",
        json.dumps({"format": 2, "dir": "/elsewhere", "values": [], "entries": {}}).encode(),
        b'{"format": 2, "dir": "DIR", "values": [1, "x"], "entries": '
        b'{"k01": [[1, 2, 3, 4, 5], 9, 1, null, "odd", 0, 0, 5, 1], "k02": "nonsense"}}',
    ],
)
def test_a_garbled_cache_is_read_around_and_rewritten(
    kernels: Path, garbage: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    expected = _fresh_scan(kernels)
    path = cache_file(str(kernels))
    path.write_bytes(garbage.replace(b"DIR", str(kernels).encode()))
    with caplog.at_level(logging.DEBUG, logger="kernelkit"):
        assert _fresh_scan(kernels) == expected
    assert json.loads(path.read_bytes())["dir"] == str(kernels)  # written again, whole
    assert _fresh_scan(kernels) == expected


def test_a_forged_signature_match_with_wrong_types_is_not_served(kernels: Path) -> None:
    _fresh_scan(kernels)
    path = cache_file(str(kernels))
    doc = json.loads(path.read_bytes())
    doc["values"] = [{"not": "a list"} if isinstance(v, list) else v for v in doc["values"]]
    path.write_text(json.dumps(doc))
    specs = _fresh_scan(kernels)
    assert all(isinstance(s.argv, tuple) and s.argv for s in specs)
    assert all(s.healthy for s in specs)


def test_an_unwritable_cache_only_costs_reading(
    kernels: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv("KERNELKIT_CACHE_DIR", str(blocker / "cache"))  # cannot be made
    with caplog.at_level(logging.DEBUG, logger="kernelkit"):
        specs = _fresh_scan(kernels)
    assert len(specs) == N
    assert any("cannot write the kernelspec cache" in r.getMessage() for r in caplog.records)


def test_small_directories_are_not_cached(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_scan, "_RACY_NS", 0)
    for i in range(MIN_SPECS - 1):
        write_spec(tmp_path / "kernels", f"k{i}", good_spec())
    _fresh_scan(tmp_path / "kernels")
    assert not cache_file(str(tmp_path / "kernels")).exists()


def test_fresh_files_are_not_cached(tmp_path: Path) -> None:
    # Within the racy window a kernel.json is never trusted by stat: nothing to keep.
    for i in range(N):
        write_spec(tmp_path / "kernels", f"k{i}", good_spec())
    _fresh_scan(tmp_path / "kernels")
    assert not cache_file(str(tmp_path / "kernels")).exists()


def test_fresh_processes_share_the_cache(tmp_path: Path, private_cache_dir: Path) -> None:
    directory = tmp_path / "kernels"
    for i in range(N):
        write_spec(directory, f"k{i:02d}", good_spec(display_name=f"Kernel {i:02d}"))
    old = time.time() - 60  # older than the racy window: trusted by stat
    for spec_dir in directory.iterdir():
        os.utime(spec_dir / "kernel.json", (old, old))
    code = (
        "import sys, json\n"
        "from kernelkit.specs import _scan, scan_kernel_specs\n"
        "_scan._RACY_NS = 0\n"
        "reads = []\n"
        "real = _scan._read_bytes\n"
        "_scan._read_bytes = lambda p: (reads.append(p), real(p))[1]\n"
        f"specs = scan_kernel_specs([{str(directory)!r}])\n"
        "print(json.dumps([len(reads), [s.display_name for s in specs]]))\n"
    )
    env = {**os.environ, "KERNELKIT_CACHE_DIR": str(private_cache_dir)}
    runs = [
        json.loads(
            subprocess.run(
                [sys.executable, "-c", code],
                capture_output=True,
                text=True,
                check=True,
                timeout=60,
                env=env,
            ).stdout
        )
        for _ in range(2)
    ]
    assert runs[0][0] == N  # the first reads every kernel.json
    assert runs[1][0] == 0  # the second none
    assert runs[1][1] == runs[0][1] == [f"Kernel {i:02d}" for i in range(N)]


@pytest.mark.skipif(os.name == "nt", reason="POSIX file modes")
def test_a_cache_file_others_can_write_is_not_trusted(
    kernels: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fresh_scan(kernels)
    path = cache_file(str(kernels))
    doc = json.loads(path.read_bytes())
    for i, value in enumerate(doc["values"]):
        if isinstance(value, list) and value and value[0] == sys.executable:
            doc["values"][i] = ["/forged/kernel", "{connection_file}"]
    path.write_text(json.dumps(doc))
    path.chmod(0o666)
    reads = _Reads(monkeypatch)
    specs = _fresh_scan(kernels)
    assert len(reads.paths) == N  # read from the kernel.json files instead
    assert all(s.argv[0] == sys.executable for s in specs)
