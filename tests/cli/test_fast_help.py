"""``kernelkit --help`` printed from the cache (kernelkit.cli._fasthelp) is the app's own
help, byte for byte, at every terminal width; a changed key is never served stale."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from kernelkit.cli._fasthelp import cached_help

_VIA_MAIN = (
    "import sys; sys.argv = ['kernelkit', '--help']; from kernelkit.cli import main; main()\n"
    "print('unreachable')"
)
_VIA_APP = (
    "import sys; sys.argv = ['kernelkit', '--help']; from kernelkit.cli._app import app; app()"
)
_PROBE = (
    "import sys; sys.argv = ['kernelkit', '--help']\n"
    "from kernelkit.cli import main\n"
    "try:\n    main()\nexcept SystemExit:\n    pass\n"
    "print(' '.join(m for m in ('typer', 'kernelkit.cli._app') if m in sys.modules),"
    " file=sys.stderr)\n"
)


def _run(code: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize("columns", ["60", "120"])
def test_cached_help_is_the_apps_help(tmp_path: Path, columns: str) -> None:
    env = {**os.environ, "KERNELKIT_CACHE_DIR": str(tmp_path), "COLUMNS": columns}
    reference = _run(_VIA_APP, env)
    assert reference.returncode == 0
    assert "Usage: kernelkit" in reference.stdout
    first, second = _run(_VIA_MAIN, env), _run(_VIA_MAIN, env)  # miss (app), then hit
    for run in (first, second):
        assert (run.stdout, run.stderr, run.returncode) == (reference.stdout, "", 0)
    assert len(list(tmp_path.glob("help-*.txt"))) == 1
    probe = _run(_PROBE, env)
    assert probe.stderr.strip() == ""  # served from the cache: no typer, no app


def test_a_different_key_misses(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KERNELKIT_CACHE_DIR", str(tmp_path))
    env = {**os.environ, "COLUMNS": "90"}
    assert _run(_VIA_MAIN, env).returncode == 0
    (cached,) = tmp_path.glob("help-*.txt")
    key, _, _ = cached.read_text().partition("\0")
    assert cached_help(key) is not None
    assert cached_help(key.replace("90", "91")) is None
    cached.write_text("another key\0stale text")
    assert cached_help(key) is None
