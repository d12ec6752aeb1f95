"""Kernelspecs naming a jupyter_client provisioner (entry point group
``jupyter_client.kernel_provisioners``): listed as ok and launched through it by
kernelkit's own manager when jupyter_client is installed, listed as broken with the
reason when it is not; a provisioner installed nowhere is a problem at listing time."""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kernelkit import AsyncKernelManager, KernelFinder, ProvisionerNotFound
from kernelkit.jupyter import JupyterProvisioner
from kernelkit.specs import installed_provisioners, load_kernel_spec, provisioner_problem

pytestmark = pytest.mark.integration

SITE = Path(__file__).resolve().parent / "site"


def write_spec(where: Path, name: str, provisioner: dict[str, Any]) -> Path:
    d = where / "kernels" / name
    d.mkdir(parents=True)
    spec = {
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": name,
        "language": "python",
        "metadata": {"kernel_provisioner": provisioner},
    }
    (d / "kernel.json").write_text(json.dumps(spec))
    return d


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A Jupyter data dir with two specs, and the test provisioner installed."""
    data = tmp_path / "data"
    write_spec(data, "jc", {"provisioner_name": "kk-jc-provisioner", "config": {"marker": "hi"}})
    write_spec(data, "nowhere", {"provisioner_name": "kk-not-installed"})
    monkeypatch.setenv("JUPYTER_PATH", str(data))
    runtime = tmp_path / "runtime"
    runtime.mkdir(mode=0o700)
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(runtime))
    monkeypatch.syspath_prepend(str(SITE))
    importlib.invalidate_caches()
    installed_provisioners.cache_clear()
    yield data
    installed_provisioners.cache_clear()


def test_listing_says_which_provisioners_can_launch(data_dir: Path) -> None:
    found = {k.id: k for k in KernelFinder().find(providers=("spec",))}
    assert found["spec/jc"].healthy, found["spec/jc"].problems
    (problem,) = found["spec/nowhere"].problems
    assert "'kk-not-installed' is not installed" in problem


def test_without_jupyter_client_a_jupyter_provisioner_is_a_problem(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = importlib.util.find_spec

    def find_spec(name: str, package: str | None = None) -> Any:
        return None if name == "jupyter_client" else real(name, package)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    problem = provisioner_problem(load_kernel_spec(data_dir / "kernels" / "jc"))
    assert problem is not None
    assert "jupyter_client is not installed" in problem
    assert "kernelkit[jupyter]" in problem


async def test_a_jupyter_provisioner_launches_the_kernel(data_dir: Path) -> None:
    async with AsyncKernelManager("jc", finder=KernelFinder()) as km:
        assert isinstance(km.provisioner, JupyterProvisioner)
        async with km.client() as kc:
            await kc.wait_for_ready(timeout=60)
            outputs: list[Any] = []
            await kc.execute("import os; print(os.environ['KK_JC_MARKER'])", outputs=outputs)
        text = "".join(m.content.get("text", "") for m in outputs)
        assert text == "hi\n"
        pid = km.provisioner.jupyter.pid
        assert km.connection_file is not None
        assert km.connection_file.name.endswith(".json")
    assert not km.has_kernel
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # stopped and reaped


async def test_a_provisioner_installed_nowhere_fails_with_its_name(data_dir: Path) -> None:
    km = AsyncKernelManager("nowhere", finder=KernelFinder())
    with pytest.raises(ProvisionerNotFound, match="kk-not-installed"):
        await km.start_kernel()
