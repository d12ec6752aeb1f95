"""A terminal for console tests: a private tmux server (its own socket), keys sent with
send-keys, the screen read with capture-pane."""

from __future__ import annotations

import contextlib
import itertools
import os
import shutil
import signal
import subprocess
import time
from typing import Any

import pytest

from kernelkit.cli._running import wait_pid_exit

_COUNTER = itertools.count()


def need_tmux() -> str:
    path = shutil.which("tmux")
    if path is None:
        pytest.skip("tmux is not installed (./dev setup installs it with apt-get)")
    return path


class Tmux:
    """One tmux session running ``command`` (a shell command line) in ``env``."""

    def __init__(self, command: str, *, env: dict[str, str], width: int = 120) -> None:
        self.tmux = need_tmux()
        self.socket = f"kernelkit-test-{os.getpid()}-{next(_COUNTER)}"
        env = {k: v for k, v in env.items() if k not in ("TMUX", "TMUX_PANE")}
        env["TERM"] = "xterm-256color"
        self._env = env
        self._tmux("new-session", "-d", "-x", str(width), "-y", "50", command)

    def _tmux(self, *args: str) -> str:
        result = subprocess.run(
            [self.tmux, "-L", self.socket, "-f", "/dev/null", *args],
            env=self._env,
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
        return result.stdout

    def send(self, *keys: str) -> None:
        """Keys as tmux names them (``Enter``, ``C-c``, ``Tab``) or literal text."""
        self._tmux("send-keys", "-t", "0", *keys)

    def type(self, text: str) -> None:
        """Literal text (no key names)."""
        self._tmux("send-keys", "-t", "0", "-l", text)

    def screen(self, *, escapes: bool = False) -> str:
        """The screen and its scrollback, wrapped lines joined, blank lines dropped (with
        ``escapes``, colours and attributes as escape sequences)."""
        flags = ("-e",) if escapes else ()
        text = self._tmux("capture-pane", "-p", "-J", *flags, "-t", "0", "-S", "-500")
        return "\n".join(line.rstrip() for line in text.splitlines() if line.strip())

    def wait_for(self, text: str, *, timeout: float = 60, count: int = 1) -> str:
        """Wait until ``text`` is on the screen ``count`` times; return the screen."""
        deadline = time.monotonic() + timeout
        while True:  # bounded by the deadline
            screen = self.screen()
            if screen.count(text) >= count:
                return screen
            if time.monotonic() > deadline:
                raise AssertionError(f"{text!r} not on the screen within {timeout} s:\n{screen}")
            time.sleep(0.1)

    def _pane_processes(self) -> list[int]:
        """The pane's shell and its children (the command under test)."""
        try:
            shell = int(self._tmux("list-panes", "-F", "#{pane_pid}").split()[0])
        except (subprocess.CalledProcessError, IndexError, ValueError):
            return []
        children = []
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    with open(f"/proc/{entry}/stat", "rb") as f:
                        data = f.read()
                except OSError:
                    continue
                if int(data[data.rfind(b")") + 2 :].split()[1]) == shell:
                    children.append(int(entry))
        return [shell, *children]

    def close(self) -> None:
        """Close the terminal (SIGHUP to what runs in it) and wait for it to exit."""
        pids = self._pane_processes()
        subprocess.run(
            [self.tmux, "-L", self.socket, "kill-server"],
            env=self._env,
            capture_output=True,
            timeout=30,
            check=False,
        )
        for pid in pids:
            if not wait_pid_exit(pid, 30.0):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)

    def __enter__(self) -> Tmux:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
