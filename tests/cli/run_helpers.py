"""Helpers for the `kernelkit run` / `kernelkit start` tests: the command as a subprocess,
a fake kernelspec on JUPYTER_PATH, and reading output lines with a deadline."""

from __future__ import annotations

import json
import os
import selectors
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from kernelkit.testing import fake_kernel_argv

KERNELKIT = Path(sys.executable).with_name("kernelkit")
VENV_KERNELS = Path(sys.prefix) / "share" / "jupyter" / "kernels"


def make_env(tmp_path: Path, *fake_options: str) -> dict[str, str]:
    """An environment with a private runtime dir and a kernelspec ``fake`` on JUPYTER_PATH."""
    jupyter = tmp_path / "jupyter"
    spec_dir = jupyter / "kernels" / "fake"
    spec_dir.mkdir(parents=True, exist_ok=True)
    spec = {
        "argv": list(fake_kernel_argv(*fake_options)),
        "display_name": "Fake",
        "language": "fake",
        "metadata": {"kernelkit": {"ports": "write-back"}},
    }
    (spec_dir / "kernel.json").write_text(json.dumps(spec))
    runtime = tmp_path / "runtime"
    runtime.mkdir(mode=0o700, exist_ok=True)
    env = dict(os.environ)
    env.update(
        JUPYTER_PATH=str(jupyter),
        JUPYTER_RUNTIME_DIR=str(runtime),
        JUPYTER_PLATFORM_DIRS="1",
        COLUMNS="200",
        # Where `kernelkit list` remembers project environments: not the real home.
        XDG_DATA_HOME=str(tmp_path / "xdg-data"),
    )
    return env


class StartGate:
    """A named pipe that holds a fake kernel started with :attr:`option` before it binds
    its ports, until :meth:`open` (a slow start that ends when the test says, not after a
    fixed delay). Leaving the ``with`` block opens it too, so no kernel waits forever."""

    def __init__(self, directory: Path) -> None:
        self.path = directory / "start-gate"
        os.mkfifo(self.path)
        self._fd: int | None = None

    @property
    def option(self) -> str:
        return f"--start-when={self.path}"

    def open(self) -> None:
        # O_RDWR never blocks on a FIFO (Linux) and counts as a writer: the kernel's open
        # for reading returns now, or at once whenever it gets there.
        if self._fd is None:
            self._fd = os.open(self.path, os.O_RDWR)

    def __enter__(self) -> StartGate:
        return self

    def __exit__(self, *exc: object) -> None:
        self.open()
        assert self._fd is not None
        os.close(self._fd)


def runtime_files(env: dict[str, str]) -> list[str]:
    return sorted(p.name for p in Path(env["JUPYTER_RUNTIME_DIR"]).iterdir())


def run(
    *args: str, env: dict[str, str], timeout: float = 60, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(KERNELKIT), *args],
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


class Running:
    """A `kernelkit` subprocess whose output lines can be awaited with a deadline."""

    def __init__(self, *args: str, env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(
            [str(KERNELKIT), *args],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        self.out = b""
        self.err = b""
        self._sel = selectors.DefaultSelector()
        assert self.proc.stdout is not None
        assert self.proc.stderr is not None
        self._sel.register(self.proc.stdout, selectors.EVENT_READ, "out")
        self._sel.register(self.proc.stderr, selectors.EVENT_READ, "err")

    def _pump(self, timeout: float) -> bool:
        """Read what is ready within ``timeout``; False once both pipes are closed."""
        if not self._sel.get_map():
            return False
        for key, _ in self._sel.select(timeout):
            chunk = os.read(key.fd, 65536)
            if not chunk:
                self._sel.unregister(key.fileobj)
                continue
            if key.data == "out":
                self.out += chunk
            else:
                self.err += chunk
        return True

    def wait_for(self, text: str, *, stream: str = "out", timeout: float = 60) -> None:
        """Read until ``text`` has appeared on ``stream``."""
        deadline = time.monotonic() + timeout
        needle = text.encode()
        while needle not in (self.out if stream == "out" else self.err):
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not self._pump(remaining):
                raise AssertionError(
                    f"{text!r} not seen on std{stream} within {timeout} s\n"
                    f"stdout: {self.out.decode(errors='replace')}\n"
                    f"stderr: {self.err.decode(errors='replace')}"
                )

    def signal(self, signum: int = signal.SIGINT) -> None:
        self.proc.send_signal(signum)

    def finish(self, timeout: float = 30) -> int:
        """Read to the end and return the exit status (kills it past ``timeout``)."""
        deadline = time.monotonic() + timeout
        while self._pump(max(0.0, deadline - time.monotonic())):
            if time.monotonic() >= deadline:
                self.kill()
                raise AssertionError(f"kernelkit did not exit within {timeout} s")
        return self.proc.wait(timeout=max(0.1, deadline - time.monotonic()))

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self._sel.close()
        for pipe in (self.proc.stdout, self.proc.stderr):
            if pipe is not None:
                pipe.close()

    def __enter__(self) -> Running:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.kill()
