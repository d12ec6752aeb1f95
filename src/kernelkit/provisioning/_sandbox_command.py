"""The command line that runs a kernel in a sandbox: pure functions from what the
sandbox allows to argv (a shell that joins the control group, ``prlimit``, ``bwrap``,
``setpriv``, the kernel), so the layout can be read, tested and documented in one place.

Layout inside the sandbox (bubblewrap):

- ``/`` read-only; a fresh ``/dev``, a ``/proc`` of its own PID namespace, an empty
  private ``/tmp`` and ``/dev/shm``;
- hidden behind empty directories: every home directory, ``/run`` (user runtime dirs,
  daemon sockets), Jupyter's runtime directory, and the directory that holds all
  sandboxes (their connection files and work directories);
- then bound back: the kernel's own directory (connection file, ``ipc`` sockets, default
  work directory) read-write at the same path, the interpreter's installation read-only
  if it lies in a hidden directory, and the caller's extra paths;
- its own PID, IPC, UTS namespaces and (unless allowed) network namespace with only a
  loopback device; it dies with its parent.
"""

from __future__ import annotations

import os
import shutil
import signal
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from kernelkit._errors import ProvisioningError

__all__ = [
    "bwrap_argv",
    "bwrap_path",
    "cgroup_join_argv",
    "HOST_ENV",
    "RLIMIT_SIGNALS",
    "hidden_dirs",
    "host_environ",
    "interpreter_dirs",
    "prlimit_argv",
    "sandbox_environ",
    "setpriv_argv",
]

# Joins every control group named before "--" (writing its own pid), then execs the rest.
_JOIN = (
    'for f do if [ "$f" = -- ]; then break; fi; '
    'echo $$ > "$f" || exit 126; shift; done; shift; exec "$@"'
)
# Variables that carry secrets or point at the host's private places; never passed in.
_DROP_ENV = (
    "JPY_PARENT_PID",
    "SSH_AUTH_SOCK",
    "GPG_AGENT_INFO",
    "DBUS_SESSION_BUS_ADDRESS",
    "XDG_RUNTIME_DIR",
)
# With inherit_env, only these of the host's variables reach the kernel (plus the
# caller's and the spec's): a shell's environment often holds tokens.
HOST_ENV = ("PATH", "LANG", "LANGUAGE", "LC_ALL", "LC_CTYPE", "TZ", "TERM")


def _tool(name: str, package: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise ProvisioningError(
            f"sandbox: {name!r} is not installed; install {package} "
            f"(Debian/Ubuntu: apt-get install {package})"
        )
    return path


def bwrap_path() -> str:
    """Where bubblewrap is installed.

    Raises:
        ProvisioningError: it is not (the message says which package to install).
    """
    return _tool("bwrap", "bubblewrap")


def _under(path: Path, dirs: Iterable[Path]) -> bool:
    return any(path == d or d in path.parents for d in dirs)


def hidden_dirs(
    *, runtime_dir: Path, sandboxes_dir: Path, network: bool, extra: Sequence[Path] = ()
) -> list[Path]:
    """The host directories a sandbox sees empty (``extra``: more of them), outermost
    first."""
    candidates = [Path("/root"), Path("/home"), Path.home()]
    home = os.environ.get("HOME")
    if home:
        candidates.append(Path(home))
    # /run holds daemon sockets (docker, dbus) that no network namespace closes. With
    # the network allowed, name resolution still needs what /etc/resolv.conf points at.
    candidates += [Path("/run/user")] if network else [Path("/run")]
    candidates += [runtime_dir, sandboxes_dir, *extra]
    found: list[Path] = []
    for path in sorted({p.absolute() for p in candidates}, key=lambda p: len(p.parts)):
        if path == Path("/") or _under(path, found):
            continue
        if path.is_dir() and not path.is_symlink():
            found.append(path)
    return found


def interpreter_dirs(program: str, env: Mapping[str, str]) -> list[Path]:
    """Where the kernel's program is installed: its prefix, and for a virtual
    environment the base interpreter's prefix too (a venv's python is a symlink into it).
    Empty when the program is not found (the launch then says so)."""
    found = shutil.which(program, path=env.get("PATH"))
    if found is None:
        return []
    exe = Path(found).absolute()
    dirs = [exe.parent.parent, Path(os.path.realpath(exe)).parent.parent]
    cfg = exe.parent.parent / "pyvenv.cfg"
    if cfg.is_file():
        for line in cfg.read_text(errors="replace").splitlines():
            key, _, value = line.partition("=")
            if key.strip() == "home" and value.strip():
                dirs.append(Path(value.strip()).parent)
                dirs.append(Path(os.path.realpath(value.strip())).parent)
    unique: list[Path] = []
    for d in dirs:
        if d not in unique and d != Path("/"):
            unique.append(d)
    return unique


def bwrap_argv(
    cmd: Sequence[str],
    *,
    kernel_dir: Path,
    work_dir: Path,
    hidden: Sequence[Path],
    ro_paths: Sequence[Path] = (),
    rw_paths: Sequence[Path] = (),
    network: bool = False,
) -> list[str]:
    """``bwrap`` and its options, then ``cmd`` (run in ``work_dir``).

    Raises:
        ProvisioningError: bubblewrap is not installed.
    """
    argv = [
        bwrap_path(),
        "--die-with-parent",
        "--unshare-pid",
        "--unshare-ipc",
        "--unshare-uts",
        "--unshare-cgroup-try",
        "--ro-bind",
        "/",
        "/",
        "--dev",
        "/dev",
        "--proc",
        "/proc",
        "--perms",
        "1777",
        "--tmpfs",
        "/tmp",
        "--perms",
        "1777",
        "--tmpfs",
        "/dev/shm",
    ]
    if not network:
        argv.append("--unshare-net")
    for path in hidden:
        # 0755: the sandbox's own directories are reached through these.
        argv += ["--perms", "0755", "--tmpfs", str(path)]
    made: set[Path] = set()
    fresh = [*hidden, Path("/tmp"), Path("/dev/shm")]  # empty inside the sandbox

    def parents(path: Path) -> list[str]:
        # bubblewrap would create the missing parents of a bind inside a hidden
        # directory with the host's modes (0700 in a home): make them reachable.
        out: list[str] = []
        for parent in reversed(path.parents):
            if parent not in made and _under(parent, fresh) and parent not in fresh:
                made.add(parent)
                out += ["--perms", "0755", "--dir", str(parent)]
        return out

    for path in ro_paths:
        if path.exists():
            argv += [*parents(path), "--ro-bind", str(path), str(path)]
            made.add(path)
    for path in (kernel_dir, work_dir, *rw_paths):
        argv += [*parents(path), "--bind", str(path), str(path)]
        made.add(path)
    if network:
        for path in (Path("/run/systemd/resolve"), Path("/run/resolvconf")):
            if path.is_dir():
                argv += ["--ro-bind", str(path), str(path)]
    argv += ["--chdir", str(work_dir), "--", *cmd]
    return argv


def setpriv_argv(cmd: Sequence[str], *, uid: int) -> list[str]:
    """Run ``cmd`` as ``uid`` (group the same) with no capabilities and no way to gain
    any: what root's sandbox needs, since bubblewrap run by root keeps root's powers.

    Raises:
        ProvisioningError: ``setpriv`` (util-linux) is not installed.
    """
    return [
        _tool("setpriv", "util-linux"),
        f"--reuid={uid}",
        f"--regid={uid}",
        "--clear-groups",
        "--inh-caps=-all",
        "--bounding-set=-all",
        "--no-new-privs",
        "--",
        *cmd,
    ]


def prlimit_argv(
    cmd: Sequence[str],
    *,
    memory: int | None = None,
    processes: int | None = None,
    cpu_time: float | None = None,
    file_size: int | None = None,
) -> list[str]:
    """``cmd`` under ``setrlimit`` limits (none given: ``cmd`` itself). ``memory`` is
    address space (RLIMIT_AS), ``processes`` RLIMIT_NPROC (per user, ignored for root),
    ``cpu_time`` RLIMIT_CPU (SIGXCPU at the limit, SIGKILL a second later).

    Raises:
        ProvisioningError: ``prlimit`` (util-linux) is not installed.
    """
    options = []
    if memory is not None:
        options.append(f"--as={memory}")
    if processes is not None:
        options.append(f"--nproc={processes}")
    if cpu_time is not None:
        soft = max(1, int(cpu_time + 0.999))
        options.append(f"--cpu={soft}:{soft + 1}")
    if file_size is not None:
        options.append(f"--fsize={file_size}")
    if not options:
        return list(cmd)
    return [_tool("prlimit", "util-linux"), *options, "--", *cmd]


def cgroup_join_argv(cmd: Sequence[str], procs_files: Sequence[Path]) -> list[str]:
    """``cmd``, started by a shell that first writes its pid into each ``cgroup.procs``:
    the process is in its groups before it execs anything, so nothing escapes them."""
    if not procs_files:
        return list(cmd)
    return ["/bin/sh", "-c", _JOIN, "kernelkit-sandbox", *map(str, procs_files), "--", *cmd]


def host_environ(env: Mapping[str, str] | None, *, inherit_env: bool) -> dict[str, str]:
    """What a sandboxed kernel's environment starts from: with ``inherit_env`` only a few
    harmless host variables (a shell's environment often holds tokens) plus ``env``;
    otherwise ``env`` itself (complete: an activated environment's)."""
    if not inherit_env:
        return dict(env or {})
    base = {k: v for k, v in os.environ.items() if k in HOST_ENV}
    base.update(env or {})
    return base


def sandbox_environ(
    env: Mapping[str, str], *, work_dir: Path, extra: Mapping[str, str]
) -> dict[str, str]:
    """``env`` without variables that point at the host's private places, with a home in
    the work directory, Jupyter's and IPython's state in the private /tmp, and ``extra``
    (the sandbox's own ``env`` option) on top."""
    base = {k: v for k, v in env.items() if k not in _DROP_ENV}
    base.update(
        HOME=str(work_dir),
        TMPDIR="/tmp",
        JUPYTER_RUNTIME_DIR="/tmp/jupyter/runtime",
        JUPYTER_DATA_DIR="/tmp/jupyter/data",
        IPYTHONDIR="/tmp/ipython",
        MPLCONFIGDIR="/tmp/matplotlib",
    )
    base.update(extra)
    return base


#: Exit statuses that name a setrlimit limit: 128 + signal from bwrap, or -signal.
RLIMIT_SIGNALS = {
    int(signal.SIGXCPU): "cpu_time",
    int(signal.SIGXFSZ): "file_size",
}
