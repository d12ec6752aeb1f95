"""Scanning, finding and getting kernelspecs across Jupyter's search path."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import jupyter_core.paths
import pytest

from kernelkit._errors import KernelSpecError, NoSuchKernel
from kernelkit.specs import (
    _scan,
    find_kernel_specs,
    get_kernel_spec,
    kernel_spec_dirs,
    scan_kernel_specs,
)
from tests.specs.conftest import good_spec, write_spec


def test_kernel_spec_dirs_are_jupyters(jupyter_dirs: dict[str, Path]) -> None:
    dirs = kernel_spec_dirs()
    expected = [Path(d) for d in jupyter_core.paths.jupyter_path("kernels")]
    assert dirs[: len(expected)] == expected
    assert dirs[0] == jupyter_dirs["path"] / "kernels"
    assert jupyter_dirs["data"] / "kernels" in dirs
    assert dirs[-1] == jupyter_dirs["ipython"] / "kernels"


def test_jupyter_path_entries_come_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, jupyter_dirs: dict[str, Path]
) -> None:
    monkeypatch.setenv("JUPYTER_PATH", os.pathsep.join([str(tmp_path / "a"), str(tmp_path / "b")]))
    assert kernel_spec_dirs()[:2] == [tmp_path / "a" / "kernels", tmp_path / "b" / "kernels"]


def test_default_scan_uses_the_search_path(jupyter_dirs: dict[str, Path]) -> None:
    write_spec(jupyter_dirs["path"] / "kernels", "mine", good_spec())
    write_spec(jupyter_dirs["ipython"] / "kernels", "legacy", good_spec())
    names = [s.name for s in scan_kernel_specs()]
    assert names[0] == "mine"
    assert "legacy" in names
    assert find_kernel_specs()["mine"] == jupyter_dirs["path"] / "kernels" / "mine"
    assert get_kernel_spec("legacy").resource_dir == jupyter_dirs["ipython"] / "kernels" / "legacy"


def test_first_directory_wins(tmp_path: Path) -> None:
    first, second = tmp_path / "1", tmp_path / "2"
    write_spec(first, "py", good_spec(display_name="first"))
    write_spec(second, "py", good_spec(display_name="second"))
    write_spec(second, "other", good_spec())
    specs = scan_kernel_specs([first, second])
    assert [(s.name, s.display_name) for s in specs] == [("py", "first"), ("other", "Python 3")]
    assert find_kernel_specs(dirs=[first, second])["py"] == first / "py"
    assert get_kernel_spec("py", dirs=[first, second]).display_name == "first"


def test_a_broken_spec_still_shadows_and_is_reported(tmp_path: Path) -> None:
    # As in jupyter_client, a directory with a kernel.json claims the name even if broken.
    first, second = tmp_path / "1", tmp_path / "2"
    write_spec(first, "py", "{broken")
    write_spec(second, "py", good_spec())
    (spec,) = scan_kernel_specs([first, second])
    assert spec.resource_dir == first / "py"
    assert "invalid JSON" in spec.problems[0]


def test_a_broken_spec_never_hides_the_others(tmp_path: Path) -> None:
    write_spec(tmp_path, "a", good_spec())
    write_spec(tmp_path, "b", "not json")
    write_spec(tmp_path, "c", good_spec(argv=[]))
    write_spec(tmp_path, "d", good_spec())
    specs = {s.name: s for s in scan_kernel_specs([tmp_path])}
    assert sorted(specs) == ["a", "b", "c", "d"]
    assert [n for n, s in sorted(specs.items()) if s.healthy] == ["a", "d"]


def test_names_are_lower_cased(tmp_path: Path) -> None:
    write_spec(tmp_path, "MySpec", good_spec())
    (spec,) = scan_kernel_specs([tmp_path])
    assert spec.name == "myspec"
    assert spec.resource_dir == tmp_path / "MySpec"
    assert get_kernel_spec("MYSPEC", dirs=[tmp_path]).resource_dir == tmp_path / "MySpec"
    assert list(find_kernel_specs(dirs=[tmp_path])) == ["myspec"]


def test_case_variants_in_one_directory_resolve_to_the_first_sorted(tmp_path: Path) -> None:
    write_spec(tmp_path, "py", good_spec(display_name="lower"))
    write_spec(tmp_path, "PY", good_spec(display_name="upper"))
    (spec,) = scan_kernel_specs([tmp_path])
    assert spec.display_name == "upper"  # "PY" sorts before "py"
    assert get_kernel_spec("py", dirs=[tmp_path]).display_name == "upper"


def test_non_spec_entries_are_ignored(tmp_path: Path) -> None:
    (tmp_path / "no-kernel-json").mkdir()
    (tmp_path / "a-file").write_text("x")
    write_spec(tmp_path, ".kernelkit-install-x-1234", good_spec())
    write_spec(tmp_path, "real", good_spec())
    assert [s.name for s in scan_kernel_specs([tmp_path])] == ["real"]
    assert list(find_kernel_specs(dirs=[tmp_path])) == ["real"]


def test_missing_and_file_directories_are_skipped(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    write_spec(tmp_path / "ok", "k", good_spec())
    dirs = [tmp_path / "missing", tmp_path / "file", tmp_path / "ok"]
    assert [s.name for s in scan_kernel_specs(dirs)] == ["k"]


def test_symlinked_spec_directory(tmp_path: Path) -> None:
    target = write_spec(tmp_path / "elsewhere", "real", good_spec())
    (tmp_path / "kernels").mkdir()
    (tmp_path / "kernels" / "linked").symlink_to(target)
    (spec,) = scan_kernel_specs([tmp_path / "kernels"])
    assert (spec.name, spec.healthy) == ("linked", True)


def test_unreadable_kernels_directory_is_reported(tmp_path: Path) -> None:
    loop = tmp_path / "loop"
    loop.symlink_to(loop)
    write_spec(tmp_path / "ok", "k", good_spec())
    specs = scan_kernel_specs([loop, tmp_path / "ok"])
    assert [s.name for s in specs] == [str(loop), "k"]
    bad = specs[0]
    assert bad.resource_dir == loop
    assert not bad.healthy
    assert bad.problems == (
        f"{loop}: cannot list the kernels directory: Too many levels of symbolic links",
    )
    assert list(find_kernel_specs(dirs=[loop, tmp_path / "ok"])) == ["k"]


@pytest.mark.skipif(os.geteuid() == 0, reason="root lists any directory")
def test_kernels_directory_without_permission(tmp_path: Path) -> None:
    write_spec(tmp_path / "locked", "k", good_spec())
    (tmp_path / "locked").chmod(0)
    try:
        (bad,) = scan_kernel_specs([tmp_path / "locked"])
    finally:
        (tmp_path / "locked").chmod(0o755)
    assert "Permission denied" in bad.problems[0]


def test_get_broken_spec_raises_with_its_problems(tmp_path: Path) -> None:
    write_spec(tmp_path, "bad", good_spec(argv=["/nonexistent/python"]))
    with pytest.raises(KernelSpecError, match=r"kernelspec 'bad' in .* is broken") as info:
        get_kernel_spec("bad", dirs=[tmp_path])
    assert "argv[0] '/nonexistent/python' does not exist" in str(info.value)
    assert str(tmp_path / "bad" / "kernel.json") in str(info.value)
    assert not get_kernel_spec("bad", dirs=[tmp_path], allow_broken=True).healthy


def test_get_unknown_lists_available(tmp_path: Path) -> None:
    write_spec(tmp_path, "b", good_spec())
    write_spec(tmp_path, "a", good_spec())
    with pytest.raises(NoSuchKernel, match="no kernel named 'nope'; available: a, b") as info:
        get_kernel_spec("nope", dirs=[tmp_path])
    assert isinstance(info.value, LookupError)
    assert info.value.available == ("a", "b")


def test_path_lookups_are_cached_per_scan(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    real_which = shutil.which

    def counting_which(
        name: str, mode: int = os.F_OK | os.X_OK, path: str | None = None
    ) -> str | None:
        calls.append(name)
        return real_which(name, mode, path)

    monkeypatch.setattr(shutil, "which", counting_which)
    for i in range(50):
        write_spec(tmp_path, f"k{i}", good_spec(argv=["sh", "-c", "x"]))
    specs = scan_kernel_specs([tmp_path])
    assert all(s.healthy for s in specs)
    assert calls == ["sh"]


# ------------------------------------------------------------------ cross-call reuse


@pytest.fixture
def no_racy_window(monkeypatch: pytest.MonkeyPatch) -> None:
    # Files written by a test are seconds old at most; let the cache trust them.
    monkeypatch.setattr(_scan, "_RACY_NS", 0)


@pytest.mark.usefixtures("no_racy_window")
def test_unchanged_specs_are_reused_between_scans(tmp_path: Path) -> None:
    write_spec(tmp_path, "k", good_spec())
    (first,) = scan_kernel_specs([tmp_path])
    (second,) = scan_kernel_specs([tmp_path])
    assert second is first


@pytest.mark.usefixtures("no_racy_window")
def test_a_changed_kernel_json_is_read_again(tmp_path: Path) -> None:
    spec_dir = write_spec(tmp_path, "k", good_spec(display_name="one"))
    scan_kernel_specs([tmp_path])
    tmp = spec_dir / "new.json"
    tmp.write_text('{"argv": ["x"], "display_name": "two"}')
    tmp.replace(spec_dir / "kernel.json")
    (spec,) = scan_kernel_specs([tmp_path])
    assert spec.display_name == "two"


@pytest.mark.usefixtures("no_racy_window")
def test_health_is_checked_again_on_every_scan(tmp_path: Path) -> None:
    exe = tmp_path / "bin" / "kern"
    exe.parent.mkdir()
    exe.write_text("#!/bin/sh\n")
    exe.chmod(0o755)
    write_spec(tmp_path / "kernels", "k", good_spec(argv=[str(exe)]))
    (spec,) = scan_kernel_specs([tmp_path / "kernels"])
    assert spec.healthy
    exe.unlink()
    (spec,) = scan_kernel_specs([tmp_path / "kernels"])
    assert spec.problems[0].endswith(f"argv[0] '{exe}' does not exist")


def test_fresh_files_are_not_trusted_by_stat(tmp_path: Path) -> None:
    # Within the racy window, a same-size rewrite in the same clock tick must be seen.
    spec_dir = write_spec(tmp_path, "k", good_spec(display_name="aaa"))
    scan_kernel_specs([tmp_path])
    (spec_dir / "kernel.json").write_text(
        (spec_dir / "kernel.json").read_text().replace("aaa", "bbb")
    )
    (spec,) = scan_kernel_specs([tmp_path])
    assert spec.display_name == "bbb"


def test_running_python_spec_from_this_venv(tmp_path: Path) -> None:
    write_spec(tmp_path, "k", good_spec(argv=[sys.executable, "-m", "ipykernel_launcher"]))
    (spec,) = scan_kernel_specs([tmp_path])
    assert spec.healthy
