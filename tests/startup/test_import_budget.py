"""What each entry point imports: a structural guard on start-up time (no timing).

Each check runs in a fresh interpreter and lists the modules an import or a command
loaded that it must not need; the reason for each is in the table.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

# Heavy modules, and what pulls them in when they leak.
_JUPYTER_CORE = ("jupyter_core", "platformdirs")  # jupyter_core.paths: computed instead
_FILES = ("shutil", "tempfile", "bz2", "lzma")  # installing, removing, activation's which
_METADATA = ("importlib.metadata", "email")  # entry points: read only when asked
_ACTIVATION = ("subprocess", "kernelkit.envs._activation")  # launching only
_ASYNC = ("asyncio", "ssl", "concurrent.futures", "zmq")  # clients and managers only
_CLI = ("typer", "click", "rich")
# What starting one kernel never uses: the blocking faces, the multi-kernel manager,
# the pool. (The sandbox provisioner belongs here too once kernelkit.provisioning loads
# its names on first use.)
_MANAGER_EXTRAS = (
    "kernelkit.manager._blocking", "kernelkit.manager._multi",
    "kernelkit.manager._multi_blocking", "kernelkit.manager._pool",
    "kernelkit.manager._pool_blocking", "kernelkit.manager._pooled",
)  # fmt: skip

BUDGETS: dict[str, tuple[str, ...]] = {
    "from kernelkit.specs import scan_kernel_specs; scan_kernel_specs()": (
        *_JUPYTER_CORE, *_FILES, *_METADATA, *_ACTIVATION, *_ASYNC, *_CLI, "logging",
        # annotations only (kernelkit.specs._typing); no regular expression to compile
        # nor hashing module for the listing cache's file name
        "typing", "string", "hashlib", "zlib",
    ),
    "from kernelkit.discovery import KernelFinder": (
        *_JUPYTER_CORE, *_FILES, *_METADATA, *_ACTIVATION, *_ASYNC, *_CLI,
    ),
    "from kernelkit.protocol import Session": (
        *_JUPYTER_CORE, *_FILES, *_METADATA, *_ACTIVATION, *_ASYNC, *_CLI, "logging",
    ),
    "from kernelkit.manager import AsyncKernelManager": (
        *_JUPYTER_CORE, *_METADATA, *_CLI, "kernelkit.envs._activation", *_MANAGER_EXTRAS,
    ),
}  # fmt: skip


def _loaded(code: str, modules: tuple[str, ...]) -> list[str]:
    probe = f"{code}\nimport sys\nprint(' '.join(m for m in {modules!r} if m in sys.modules))"
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    return out.stdout.split()


@pytest.mark.parametrize("code", list(BUDGETS))
def test_import_stays_within_its_budget(code: str) -> None:
    assert _loaded(code, BUDGETS[code]) == [], f"{code!r} imports what it must not need"


# `kernelkit list` piped (no terminal): the plain listing. Its entry points come from the
# cache, written by a first run.
_LIST = (
    "import sys\n"
    "sys.argv = ['kernelkit', 'list']\n"
    "from kernelkit.cli import main\n"
    "try:\n    main()\nexcept SystemExit:\n    pass\n"
)
_LIST_BUDGET = (
    *_JUPYTER_CORE, *_FILES, *_METADATA, *_ACTIVATION, *_ASYNC, *_CLI,
    "hashlib", "_hashlib", "textwrap", "string", "logging", "zlib",
)  # fmt: skip


def test_plain_kernelkit_list_stays_within_its_budget(tmp_path: Path) -> None:
    # Wide enough that no line wraps (wrapping loads textwrap, on purpose): what the
    # machine lists, and how long its paths are, varies.
    env = {**os.environ, "KERNELKIT_CACHE_DIR": str(tmp_path / "cache"), "COLUMNS": "1000"}
    probe = f"{_LIST}print(' '.join(m for m in {_LIST_BUDGET!r} if m in sys.modules))"
    runs = [
        subprocess.run(
            [sys.executable, "-c", probe],
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
            env=env,
        )
        for _ in range(2)
    ]
    loaded = runs[1].stdout.splitlines()[-1].split()
    assert loaded == [], "`kernelkit list` imports what it must not need"
