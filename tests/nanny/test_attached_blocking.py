"""The blocking AttachedKernel: the async twin's behaviour, from plain threads."""

from __future__ import annotations

import inspect
import os
import signal
import threading
import time
from pathlib import Path

import pytest

from kernelkit import KernelDied
from kernelkit.manager import KernelManager
from kernelkit.nanny import AsyncAttachedKernel, AttachedKernel, NannyProvisioner
from tests.nanny.helpers import kill_all, nanny_spec

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


@pytest.fixture(autouse=True)
def runtime_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    d = tmp_path / "runtime"
    d.mkdir(mode=0o700)
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(d))
    return d


def test_the_two_faces_have_the_same_methods() -> None:
    def public(cls: type) -> dict[str, list[str]]:
        return {
            name: [p for p in inspect.signature(fn).parameters if p != "self"]
            for name, fn in vars(cls).items()
            if callable(fn)
            and not name.startswith("_")
            and name not in ("aclose", "close", "check_has_nanny")
        }

    assert public(AttachedKernel) == public(AsyncAttachedKernel) | {
        "wait": ["timeout"]  # the blocking wait takes a limit
    }


def test_interrupt_restart_death_from_threads() -> None:
    with KernelManager(kernel_spec=nanny_spec()) as km:
        p = km.provisioner
        assert isinstance(p, NannyProvisioner)
        pids = [p.nanny_pid or 0]
        try:
            assert km.connection_file is not None
            with (
                AttachedKernel.from_connection_file(km.connection_file) as k,
                k.client() as kc,
            ):
                kc.wait_for_ready(timeout=60)
                done: list[object] = []
                t = threading.Thread(
                    target=lambda: done.append(
                        kc.execute("import time; time.sleep(30)", timeout=60)
                    )
                )
                t.start()
                time.sleep(0.5)  # the request runs (a plain thread: nothing to await)
                k.interrupt_kernel()
                t.join(20)
                assert done
                k.restart_kernel()
                kc.wait_for_ready(timeout=60)
                assert k.is_alive()
                assert k.pid is not None
                pids.append(k.pid)
                os.kill(k.pid, signal.SIGKILL)
                assert k.wait(timeout=10) == -signal.SIGKILL
                with pytest.raises(KernelDied):
                    kc.execute("1", timeout=10)
        finally:
            kill_all(pids)
