"""``kernelkit env add-kernel ENV``: install ipykernel into an environment that has a
Python but no kernel (with uv when it is on PATH, else the environment's own pip), so
that it is listed as ``env/<env-id>/python3``. A failed install is rolled back: the
distributions it added are removed again."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

from rich.console import Console
from rich.text import Text

from kernelkit.cli._starting import report_error
from kernelkit.cli._status import EXIT_FAILED, EXIT_NOT_FOUND, EXIT_OK
from kernelkit.envs import Environment, find_environments, inspect_environment

__all__ = ["add_kernel_command", "find_environment"]

#: Seconds an install may take before it is stopped (and rolled back).
INSTALL_TIMEOUT = 600.0


class _NoEnvironment(Exception):
    pass


def find_environment(ident: str) -> Environment:
    """The environment ``ident`` names: its id (as ``kernelkit list --all`` shows it,
    with or without ``env/``), its name when only one has it, or its prefix path.

    Raises:
        _NoEnvironment: nothing (or more than one) matches; the message says which.
    """
    key = ident.removeprefix("env/").rstrip("/")
    if os.sep in ident or ident.startswith("."):
        env = inspect_environment(Path(ident).expanduser())
        if env is None:
            raise _NoEnvironment(f"{ident} is not a Python or conda environment")
        return env
    envs = find_environments().environments
    by_id = [e for e in envs if e.id == key or e.id == key.split("/")[0]]
    if by_id:
        return by_id[0]
    by_name = [e for e in envs if e.name == key]
    if len(by_name) == 1:
        return by_name[0]
    if by_name:
        ids = ", ".join(e.id for e in by_name)
        raise _NoEnvironment(f"several environments are named {key!r} ({ids}): give the id")
    raise _NoEnvironment(
        f"no environment {ident!r} (`kernelkit list --all` shows them, with their ids)"
    )


def _distributions(site_packages: Path | None) -> set[str]:
    if site_packages is None:
        return set()
    try:
        return {name for name in os.listdir(site_packages) if name.endswith(".dist-info")}
    except OSError:
        return set()


def _project(dist_info: str) -> str:
    """``name-1.2.dist-info`` → ``name``."""
    return dist_info[: -len(".dist-info")].rsplit("-", 1)[0]


def _installer(interpreter: Path) -> tuple[list[str], list[str], str]:
    """(install argv, uninstall argv prefix, name) with uv when on PATH, else pip."""
    uv = shutil.which("uv")
    if uv is not None:
        python = ["--python", str(interpreter)]
        return [uv, "pip", "install", *python, "ipykernel"], [uv, "pip", "uninstall", *python], "uv"
    pip = [str(interpreter), "-m", "pip"]
    return [*pip, "install", "ipykernel"], [*pip, "uninstall", "-y"], "pip"


def _run_with_progress(argv: Sequence[str], console: Console, what: str) -> tuple[int, list[str]]:
    """Run ``argv``, showing a spinner, the time taken and its last output line; returns
    (exit status, its output lines)."""
    lines: list[str] = []
    start = time.monotonic()
    proc = subprocess.Popen(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        errors="replace",
    )
    assert proc.stdout is not None
    with console.status(what) as status:
        for raw in proc.stdout:
            line = raw.rstrip()
            if line:
                lines.append(line)
                elapsed = time.monotonic() - start
                status.update(f"{what} ({elapsed:.0f} s)  {line[-60:]}")
            if time.monotonic() - start > INSTALL_TIMEOUT:
                proc.kill()
                lines.append(f"(stopped after {INSTALL_TIMEOUT:g} s)")
                break
        code = proc.wait()
    return code, lines


def add_kernel_command(ident: str) -> int:
    """``kernelkit env add-kernel ENV``: returns the exit status."""
    console = Console(stderr=True)
    try:
        env = find_environment(ident)
    except _NoEnvironment as exc:
        report_error(console, "cannot add a kernel", exc)
        return EXIT_NOT_FOUND
    where = f"environment {env.id} ({env.prefix})"
    if env.problems:
        report_error(console, f"cannot add a kernel to {where}", "; ".join(env.problems))
        return EXIT_FAILED
    if env.interpreter is None:
        report_error(
            console,
            f"cannot add a kernel to {where}",
            "it has no Python interpreter (ipykernel needs one)",
        )
        return EXIT_FAILED
    if env.has_ipykernel:
        console.print(f"kernelkit: {where} already has ipykernel", highlight=False)
        return EXIT_OK
    target = env.site_packages or env.prefix
    if not os.access(target, os.W_OK):
        report_error(
            console,
            f"cannot add a kernel to {where}",
            f"{target} is not writable here (a read-only file system, or another user's); "
            f"run as its owner, or make a venv from "
            f"it (`{env.interpreter} -m venv DIR`) and add the kernel there",
        )
        return EXIT_FAILED
    install, uninstall, name = _installer(env.interpreter)
    before = _distributions(env.site_packages)
    try:
        code, lines = _run_with_progress(install, console, f"installing ipykernel with {name}")
    except OSError as exc:
        report_error(console, f"cannot run {install[0]}", exc.strerror or exc)
        return EXIT_FAILED
    after = inspect_environment(env.prefix)
    if code == 0 and after is not None and after.has_ipykernel:
        text = Text(f"kernelkit: installed ipykernel into {where}\n", style="green")
        text.append(
            f"  its kernel: env/{env.id}/python3 (try: kernelkit console -k env/{env.id}/python3)"
        )
        console.print(text, highlight=False, soft_wrap=True)
        return EXIT_OK
    tail = "\n    ".join(lines[-12:]) or "(no output)"
    added = sorted(_distributions(env.site_packages) - before)
    if added:
        # Nothing half-installed: what this attempt added goes again.
        subprocess.run(
            [*uninstall, *(_project(d) for d in added)],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            check=False,
            timeout=INSTALL_TIMEOUT,
        )
    left = sorted(_distributions(env.site_packages) - before)
    undo = (
        f"; removed what it had added ({len(added)} distributions)"
        if added and not left
        else (f"; could not remove {', '.join(left)}" if left else "; nothing was installed")
    )
    report_error(
        console,
        f"could not install ipykernel into {where}",
        f"{name} exited with status {code}{undo}. Its last output:\n    {tail}\n"
        "(no network to the package index? a read-only environment? an interpreter too "
        "old for ipykernel?)",
    )
    return EXIT_FAILED
