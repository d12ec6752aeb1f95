"""Time to first prompt: ``kernelkit console`` vs ``jupyter console``, in one run.

Each console is started in a fresh tmux session (a real terminal) on the ipykernel
``python3`` kernel; the time is from the tmux command to ``In [1]:`` on the screen
(screen read every 10 ms). One warm-up each, then ROUNDS alternating rounds; the
medians and their ratio are printed (goal: kernelkit <= 0.6x). kernelkit's prompt shows
while its kernel starts (code typed then waits for it), so the time until it says the
kernel is ready is printed too (jupyter console's prompt comes when its kernel is
ready). Needs tmux and
jupyter_console (the test extra)::

    .venv/bin/python bench/console_first_prompt.py [ROUNDS]
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

BIN = Path(sys.executable).parent
COMMANDS = {
    "kernelkit console": f"{BIN / 'kernelkit'} console -k python3",
    "jupyter console": f"{BIN / 'jupyter-console'} --kernel python3",
}
LIMIT = 60.0
#: What kernelkit console prints once its kernel answers.
READY = "(started by this console)"


def first_prompt(command: str, socket: str, ready: list[float] | None = None) -> float:
    """Seconds from launch to ``In [1]:`` on the screen; the console is then left. With
    ``ready``, it also waits for :data:`READY` and appends the seconds until it showed."""
    env = {k: v for k, v in os.environ.items() if k not in ("TMUX", "TMUX_PANE")}
    tmux = ["tmux", "-L", socket, "-f", "/dev/null"]
    start = time.monotonic()
    prompt: float | None = None
    subprocess.run([*tmux, "new-session", "-d", "-x", "120", "-y", "40", command], env=env)
    try:
        while time.monotonic() - start < LIMIT:  # bounded
            screen = subprocess.run(
                [*tmux, "capture-pane", "-p"], capture_output=True, text=True, check=False
            ).stdout
            if prompt is None and "In [1]:" in screen:
                prompt = time.monotonic() - start
            if prompt is not None and (ready is None or READY in screen):
                if ready is not None:
                    ready.append(time.monotonic() - start)
                return prompt
            time.sleep(0.01)
        return prompt if prompt is not None else float("nan")
    finally:
        # Leave as a person would (jupyter console asks to confirm), then close.
        subprocess.run([*tmux, "send-keys", "C-d"], check=False)
        time.sleep(0.5)
        subprocess.run([*tmux, "send-keys", "y", "Enter"], check=False)
        time.sleep(2.0)
        subprocess.run([*tmux, "kill-server"], capture_output=True, check=False)


def main() -> None:
    if shutil.which("tmux") is None:
        sys.exit("tmux is needed")
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    socket = f"kk-bench-console-{os.getpid()}"
    times: dict[str, list[float]] = {name: [] for name in COMMANDS}
    ready: list[float] = []
    for command in COMMANDS.values():
        first_prompt(command, socket)  # warm-up: page cache, .pyc
    for _ in range(rounds):
        for name, command in COMMANDS.items():
            kernelkit = name == "kernelkit console"
            times[name].append(first_prompt(command, socket, ready if kernelkit else None))
    medians = {name: statistics.median(values) for name, values in times.items()}
    for name, values in times.items():
        shown = ", ".join(f"{v:.2f}" for v in values)
        print(f"{name:18s} median {medians[name]:.2f} s  ({shown})")
    ratio = medians["kernelkit console"] / medians["jupyter console"]
    print(f"ratio kernelkit/jupyter: {ratio:.2f}x (goal <= 0.6x)")
    if ready:
        shown = ", ".join(f"{v:.2f}" for v in ready)
        median = statistics.median(ready)
        print(f"kernelkit console kernel ready: median {median:.2f} s  ({shown})")
        print(f"ready/jupyter prompt: {median / medians['jupyter console']:.2f}x")


if __name__ == "__main__":
    main()
