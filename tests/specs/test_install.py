"""Installing and removing kernelspecs."""

from __future__ import annotations

from pathlib import Path

import jupyter_core.paths
import pytest

from kernelkit._errors import KernelSpecError, NoSuchKernel
from kernelkit.specs import (
    find_kernel_specs,
    get_kernel_spec,
    install_kernel_spec,
    remove_kernel_spec,
)
from tests.specs.conftest import good_spec, write_spec


@pytest.fixture
def source(tmp_path: Path) -> Path:
    src = write_spec(tmp_path / "src", "MyKernel", good_spec())
    (src / "logo-64x64.png").write_bytes(b"png")
    return src


def test_install_user(source: Path, jupyter_dirs: dict[str, Path]) -> None:
    dest = install_kernel_spec(source, user=True)
    assert dest == jupyter_dirs["data"] / "kernels" / "mykernel"
    assert (dest / "logo-64x64.png").read_bytes() == b"png"
    spec = get_kernel_spec("mykernel")
    assert (spec.resource_dir, spec.healthy) == (dest, True)


def test_install_prefix(source: Path, tmp_path: Path, jupyter_dirs: dict[str, Path]) -> None:
    dest = install_kernel_spec(source, prefix=str(tmp_path / "env"), kernel_name="Other")
    assert dest == tmp_path / "env" / "share" / "jupyter" / "kernels" / "other"
    assert (dest / "kernel.json").is_file()


def test_install_system(
    source: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, jupyter_dirs: dict[str, Path]
) -> None:
    monkeypatch.setattr(jupyter_core.paths, "SYSTEM_JUPYTER_PATH", [str(tmp_path / "sys")])
    dest = install_kernel_spec(source)
    assert dest == tmp_path / "sys" / "kernels" / "mykernel"


def test_install_replaces_and_leaves_no_temporaries(
    source: Path, tmp_path: Path, jupyter_dirs: dict[str, Path]
) -> None:
    dest = install_kernel_spec(source, user=True)
    (dest / "stale.txt").write_text("old")
    install_kernel_spec(source, user=True)
    assert sorted(p.name for p in dest.iterdir()) == ["kernel.json", "logo-64x64.png"]
    assert [p.name for p in dest.parent.iterdir()] == ["mykernel"]


def test_failed_copy_keeps_the_old_spec(
    source: Path, tmp_path: Path, jupyter_dirs: dict[str, Path]
) -> None:
    dest = install_kernel_spec(source, user=True)
    (source / "dangling").symlink_to(tmp_path / "nowhere")
    with pytest.raises(KernelSpecError, match=r"cannot install kernelspec 'mykernel' into"):
        install_kernel_spec(source, user=True)
    assert (dest / "logo-64x64.png").is_file()
    assert [p.name for p in dest.parent.iterdir()] == ["mykernel"]


@pytest.mark.parametrize("name", ["has space", "slash/x", "ünï", ""])
def test_invalid_names(source: Path, name: str, jupyter_dirs: dict[str, Path]) -> None:
    with pytest.raises(KernelSpecError, match="invalid kernel name"):
        install_kernel_spec(source, kernel_name=name or " ", user=True)


def test_user_and_prefix_together(source: Path, tmp_path: Path) -> None:
    with pytest.raises(KernelSpecError, match="either user=True or prefix"):
        install_kernel_spec(source, user=True, prefix=str(tmp_path))


def test_invalid_kernel_json_is_refused(tmp_path: Path, jupyter_dirs: dict[str, Path]) -> None:
    src = write_spec(tmp_path / "src", "bad", good_spec(argv="python -m x"))
    with pytest.raises(KernelSpecError) as info:
        install_kernel_spec(src, user=True)
    assert str(src / "kernel.json") in str(info.value)
    assert "'argv' must be a list of strings" in str(info.value)
    assert not (jupyter_dirs["data"] / "kernels" / "bad").exists()


def test_missing_source(tmp_path: Path, jupyter_dirs: dict[str, Path]) -> None:
    with pytest.raises(KernelSpecError, match="no such file"):
        install_kernel_spec(tmp_path / "nope", user=True)


def test_argv0_health_does_not_block_install(tmp_path: Path, jupyter_dirs: dict[str, Path]) -> None:
    # The interpreter may be installed later; the spec is valid, just not healthy yet.
    src = write_spec(tmp_path / "src", "later", good_spec(argv=["/opt/later/python"]))
    dest = install_kernel_spec(src, user=True)
    assert not get_kernel_spec("later", allow_broken=True).healthy
    assert dest.is_dir()


def test_remove(source: Path, jupyter_dirs: dict[str, Path]) -> None:
    dest = install_kernel_spec(source, user=True)
    assert remove_kernel_spec("MyKernel") == dest
    assert not dest.exists()
    assert "mykernel" not in find_kernel_specs()


def test_remove_symlinked_spec_keeps_the_target(tmp_path: Path) -> None:
    target = write_spec(tmp_path / "real", "k", good_spec())
    kernels = tmp_path / "kernels"
    kernels.mkdir()
    (kernels / "k").symlink_to(target)
    assert remove_kernel_spec("k", dirs=[kernels]) == kernels / "k"
    assert not (kernels / "k").exists()
    assert (target / "kernel.json").is_file()


def test_remove_unknown(tmp_path: Path) -> None:
    with pytest.raises(NoSuchKernel, match="no kernel named 'ghost'"):
        remove_kernel_spec("ghost", dirs=[tmp_path])
