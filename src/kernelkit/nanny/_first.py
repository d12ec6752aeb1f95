"""The nanny's first moment: read its request, become a child subreaper, and start the
kernel if its owner prepared the launch (``"early"`` in the request: the command,
environment, directory, key and connection file, made by the owner,
:mod:`kernelkit.nanny._prepare`). Nothing else is imported before the kernel runs: no
kernelspec, no configuration model, no asyncio or zmq (see :mod:`kernelkit.nanny._early`
for the rest of the start, and for a nanny that prepares the launch itself).

An owner on this machine gives the kernel's whole environment. An owner on another
machine (:class:`~kernelkit.nanny.SSHProvisioner`) prepares it from its cached listing of
this host, a *recipe*: the changes to make to the nanny's own environment
(``env_changes``), and the kernelspec files it was made from, with their modification
times and sizes (``stamps``): if one of them changed or went, the recipe is out of date
and nothing starts here. A recipe's kernel is checked again once the nanny has found the
kernelspec itself (``_early.begin``).

The kernel is started as the nanny's provisioner would start it: its own session, its
output on pipes from its first byte (read once the nanny's event loop runs; the pipes
hold what it writes meanwhile), stdin from ``/dev/null``, no descriptor of the nanny's
but those, SIGPIPE and SIGXFSZ at their defaults, ``KERNELKIT_TREE`` and
``JPY_PARENT_PID`` in its environment, and SIGKILL when the nanny dies (``setpriv
--pdeathsig``).

Every import here is on the kernel's start path, and on another host that start is the
figure a person waits on: so no ``subprocess`` (with ``signal``, ``locale`` and ``re``,
it costs more than the rest of the nanny's start up to the kernel's), no ``shutil``, and
no ``json`` module (its decoder imports ``re``): the kernel is started with
``os.posix_spawn``, and the request read with the C scanner that ``json`` itself uses
(``json.loads`` where that is missing).
"""

from __future__ import annotations

import _json
import os
import sys

from kernelkit.provisioning._treetag import new_tree_tag, set_child_subreaper, tag_environ

# Not typing, not dataclasses (with inspect and ast, they cost more than the rest here).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from typing import Any

# signal's numbers without the signal module (its enums cost milliseconds): _signal is
# loaded with the interpreter.
_SIGNALS: Any = sys.modules.get("_signal")
_SIGKILL: int = _SIGNALS.SIGKILL if _SIGNALS is not None else 9
# What subprocess resets in a child (Python ignores SIGPIPE, and so would the kernel).
_SIGDEF: tuple[int, ...] = tuple(
    getattr(_SIGNALS, name) for name in ("SIGPIPE", "SIGXFZ", "SIGXFSZ") if hasattr(_SIGNALS, name)
)
# What ExitWatch reports for a child whose status was lost (EXIT_STATUS_UNKNOWN).
_STATUS_UNKNOWN = -256

__all__ = [
    "NANNY_CODE",
    "EarlyKernel",
    "First",
    "SpawnedChild",
    "first_moment",
    "parse_json",
    "pdeathsig_command",
    "run",
    "spawn_early",
    "start_prepared",
    "which",
]

#: What the provisioners run the nanny with (``python -c NANNY_CODE``): ``-m
#: kernelkit.nanny`` does the same but imports runpy first, milliseconds before the kernel.
NANNY_CODE = "import sys; from kernelkit.nanny._first import run; sys.exit(run())"


def run() -> int:
    """The nanny process: its first moment (the kernel started), the rest of its start
    while the kernel boots (:func:`kernelkit.nanny._early.begin`), then its server; the
    exit status."""
    first = first_moment()
    from kernelkit.nanny._early import begin  # (after the kernel's start, on purpose)

    beginning = begin(first)
    from kernelkit.nanny._server import main

    return main(beginning)


class SpawnedChild:
    """A child started with ``os.posix_spawn``: as much of :class:`subprocess.Popen` as
    the nanny's provisioner uses (``pid``, ``args``, ``returncode``, ``poll``, ``wait``;
    see :class:`kernelkit.provisioning._exitwatch.ChildProcess`)."""

    __slots__ = ("args", "pid", "returncode")

    def __init__(self, pid: int, args: list[str]) -> None:
        self.pid = pid
        self.args = args
        self.returncode: int | None = None

    def poll(self) -> int | None:
        """The exit status once it exited (and it is reaped), else None."""
        if self.returncode is None:
            self._reap(os.WNOHANG)
        return self.returncode

    def wait(self) -> int:
        """Wait for it to exit, reap it; its exit status (``-signal`` if killed)."""
        if self.returncode is None:
            self._reap(0)
        assert self.returncode is not None
        return self.returncode

    def _reap(self, flags: int) -> None:
        try:
            pid, status = os.waitpid(self.pid, flags)
        except ChildProcessError:
            self.returncode = _STATUS_UNKNOWN  # reaped behind our back
            return
        if pid:
            self.returncode = os.waitstatus_to_exitcode(status)


class EarlyKernel:
    """A kernel started before the nanny's provisioner existed, for it to adopt: its
    process, the read ends of its output pipes (the capture takes them over), its key,
    its connection file (ports 0: the kernel writes its ports back into it), its tree
    tag (``KERNELKIT_TREE``), and how it was started (``cmd``, ``env`` before the tags,
    ``cwd``, the connection file's text ``content``: :meth:`matches`; ``recipe``: from a
    host recipe, still to be checked)."""

    __slots__ = (
        "cmd",
        "connection_file",
        "content",
        "cwd",
        "env",
        "key",
        "process",
        "recipe",
        "stderr",
        "stdout",
        "tag",
    )

    def __init__(
        self,
        process: SpawnedChild,
        stdout: int,
        stderr: int,
        key: bytes,
        connection_file: str,
        tag: str,
        *,
        cmd: list[str],
        env: dict[str, str],
        cwd: str | None,
        recipe: bool = False,
        content: str = "",
    ) -> None:
        self.process = process
        self.stdout = stdout
        self.stderr = stderr
        self.key = key
        self.connection_file = connection_file
        self.tag = tag
        self.cmd = [os.path.expanduser(a) for a in cmd]
        self.env = env
        self.cwd = cwd
        self.recipe = recipe
        self.content = content

    def matches(self, cmd: Sequence[str], env: Mapping[str, str] | None, cwd: str | None) -> bool:
        """True when a provisioner about to run ``cmd`` in ``env`` (None: this process's
        environment) and ``cwd`` would start this very kernel: it may adopt it."""
        return (
            [os.path.expanduser(str(a)) for a in cmd] == self.cmd
            and dict(os.environ if env is None else env) == self.env
            and cwd == self.cwd
        )

    def discard(self) -> None:
        """Kill and reap it, close its pipes, remove its file (it was not adopted). Once:
        a second call (or one after its adoption) does nothing."""
        if self.stdout < 0:
            return
        proc = self.process
        if proc.poll() is None:
            try:  # noqa: SIM105  (contextlib: not imported here, see the module docstring)
                os.killpg(proc.pid, _SIGKILL)
            except ProcessLookupError:
                pass  # (gone between poll and kill)
            proc.wait()
        for fd in (self.stdout, self.stderr):
            os.close(fd)
        self.stdout = self.stderr = -1
        _unlink(self.connection_file)


class First:
    """The request (None if it is not a JSON object: ``error`` says why), whether the
    nanny is a subreaper, the kernel if its owner prepared the launch, and whether the
    owner's recipe was out of date (``stale_recipe``: nothing was started)."""

    __slots__ = ("early", "error", "request", "stale_recipe", "subreaper")

    def __init__(
        self,
        request: dict[str, Any] | None,
        error: str = "",
        *,
        subreaper: bool = False,
        early: EarlyKernel | None = None,
        stale_recipe: bool = False,
    ) -> None:
        self.request = request
        self.error = error
        self.subreaper = subreaper
        self.early = early
        self.stale_recipe = stale_recipe


def first_moment() -> First:
    """Read the request line from stdin, become a subreaper, start a prepared kernel."""
    line = sys.stdin.buffer.readline()
    try:
        request = parse_json(line)
    except ValueError as exc:  # (json.JSONDecodeError and UnicodeDecodeError are)
        return First(None, f"the nanny's request is not JSON: {exc}")
    if not isinstance(request, dict):
        return First(None, "the nanny's request must be a JSON object")
    subreaper = set_child_subreaper()
    if not subreaper:
        return First(request)
    early, stale = start_prepared(request.get("early"))
    return First(request, subreaper=True, early=early, stale_recipe=stale)


class _Context:
    """What ``_json.make_scanner`` reads from its ``json.JSONDecoder``: the defaults."""

    strict = True
    object_hook = None
    object_pairs_hook = None
    array_hook = None
    parse_float = float
    parse_int = int

    @staticmethod
    def parse_constant(name: str) -> float:
        return float(name.replace("Infinity", "inf"))  # NaN, Infinity, -Infinity


def parse_json(data: bytes) -> object:
    """``json.loads(data)``, without importing ``json`` when the C scanner is there.

    Raises:
        ValueError: not one JSON document (json.JSONDecodeError, UnicodeDecodeError).
    """
    text = data.decode("utf-8").strip(" \t\n\r")
    try:
        scan = _json.make_scanner(_Context())  # type: ignore[arg-type]
    except (AttributeError, TypeError):  # (another Python's scanner: the module does it)
        import json

        return json.loads(text)
    try:
        value, end = scan(text, 0)
    except StopIteration:
        raise ValueError("expected a JSON value at the start") from None
    if end != len(text):
        raise ValueError(f"extra data after the JSON value (at {end})")
    return value


def start_prepared(block: object) -> tuple[EarlyKernel | None, bool]:
    """Start the kernel of a request's ``"early"`` block; the kernel (None if there is
    none, or it cannot start here) and whether the block was a stale recipe."""
    if not isinstance(block, dict):
        return None, False
    if "env_changes" in block and not _stamps_hold(block.get("stamps")):
        return None, True
    return _start_prepared(block), False


def _start_prepared(block: dict[str, Any]) -> EarlyKernel | None:
    cmd, cwd = block.get("cmd"), block.get("cwd")
    key, path, kernel_id = block.get("key"), block.get("connection_file"), block.get("kernel_id")
    content = block.get("content")
    recipe = "env_changes" in block
    env = _recipe_environ(block["env_changes"]) if recipe else block.get("env")
    if not (
        isinstance(cmd, list)
        and cmd
        and all(isinstance(a, str) for a in cmd)
        and isinstance(env, dict)
        and all(isinstance(k, str) and isinstance(v, str) for k, v in env.items())
        and (cwd is None or isinstance(cwd, str))
        and isinstance(key, str)
        and isinstance(path, str)
        and isinstance(kernel_id, str)
        and isinstance(content, str)
    ):
        return None  # (the owner's bug; the provisioner starts the kernel instead)
    return spawn_early(
        cmd,
        env,
        cwd=cwd,
        key=key.encode("ascii"),
        connection_file=path,
        content=content,
        kernel_id=kernel_id,
        recipe=recipe,
    )


def _stamps_hold(stamps: object) -> bool:
    """Whether every ``[path, mtime_ns, size]`` still describes its file."""
    if not isinstance(stamps, list):
        return False
    for stamp in stamps:
        if not (isinstance(stamp, list) and len(stamp) == 3 and isinstance(stamp[0], str)):
            return False
        try:
            st = os.stat(stamp[0])
        except OSError:
            return False
        if [st.st_mtime_ns, st.st_size] != stamp[1:]:
            return False
    return True


def _recipe_environ(changes: object) -> dict[str, str] | None:
    """This process's environment with a recipe's changes made, in order: ``[op, name,
    value]`` with op ``set``, ``unset``, ``prepend`` or ``append`` (a path-like value,
    joined with ``os.pathsep``), as :class:`kernelkit.envs.EnvChange` replays them."""
    if not isinstance(changes, list):
        return None
    env = dict(os.environ)
    for change in changes:
        if not (
            isinstance(change, list)
            and len(change) == 3
            and all(isinstance(x, str) for x in change)
        ):
            return None
        op, name, value = change
        old = env.get(name)
        if op not in ("set", "unset", "prepend", "append"):
            return None
        if op == "unset":
            env.pop(name, None)
        elif op == "set" or not old:
            env[name] = value
        elif op == "prepend":
            env[name] = value + os.pathsep + old
        else:
            env[name] = old + os.pathsep + value
    return env


def spawn_early(
    cmd: Sequence[str],
    env: Mapping[str, str],
    *,
    cwd: str | None,
    key: bytes,
    connection_file: str,
    content: str,
    kernel_id: str,
    recipe: bool = False,
    pdeathsig: bool = True,
) -> EarlyKernel | None:
    """Write the kernel's connection file (``content``) and start the kernel (with
    ``pdeathsig``: SIGKILL when this process dies, :func:`pdeathsig_command`); None if it
    cannot be done here (the provisioner then tries, and says why). ``recipe``: the
    launch came from a host recipe (to be checked, see the module docstring)."""
    program = which(cmd[0], path=env.get("PATH", os.defpath))
    if program is None or not _runs_as_is(program):
        return None
    if not _write_private(connection_file, content):
        return None
    tag = new_tree_tag(kernel_id)
    environ = tag_environ(env, tag)
    environ["JPY_PARENT_PID"] = str(os.getpid())
    argv = pdeathsig_command(cmd, environ) if pdeathsig else list(cmd)
    if argv[0] != cmd[0]:
        program = argv[0]  # setpriv, which finds cmd[0] on the kernel's PATH itself
    out_r, out_w = os.pipe2(os.O_CLOEXEC)
    err_r, err_w = os.pipe2(os.O_CLOEXEC)
    try:
        pid = _spawn(program, argv, environ, cwd=cwd, stdout=out_w, stderr=err_w)
    except OSError:
        for fd in (out_r, err_r):
            os.close(fd)
        _unlink(connection_file)
        return None
    finally:
        os.close(out_w)
        os.close(err_w)
    proc = SpawnedChild(pid, argv)
    return EarlyKernel(
        proc,
        out_r,
        err_r,
        key,
        connection_file,
        tag,
        cmd=list(cmd),
        env=dict(env),
        cwd=cwd,
        recipe=recipe,
        content=content,
    )


def _runs_as_is(program: str) -> bool:
    """True when ``program`` is a binary, or a script whose ``#!`` interpreter is there:
    what setpriv can start as the provisioner would. setpriv runs any other file with
    /bin/sh (which the provisioner refuses: "Exec format error"), and fails with words of
    its own where the provisioner's error says what is wrong."""
    try:
        with open(program, "rb") as f:
            head = f.read(256)
    except OSError:
        return False
    if head.startswith(b"\x7fELF"):
        return True
    if not head.startswith(b"#!"):
        return False
    words = head[2:].split(b"\n", 1)[0].split()
    return bool(words) and os.path.isfile(words[0]) and os.access(words[0], os.X_OK)


def _spawn(
    program: str, argv: list[str], env: dict[str, str], *, cwd: str | None, stdout: int, stderr: int
) -> int:
    """Start ``program`` as Popen(argv, stdin=DEVNULL, close_fds=True, cwd=cwd,
    start_new_session=True) would; its pid.

    Raises:
        OSError: it could not be started (no such program, no such directory).
    """
    _no_inheritance()
    actions = [
        (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
        (os.POSIX_SPAWN_DUP2, stdout, 1),
        (os.POSIX_SPAWN_DUP2, stderr, 2),
    ]
    here = os.getcwd() if cwd is not None else None
    try:
        if cwd is not None:
            os.chdir(cwd)  # (posix_spawn has no directory of its own: the child takes ours)
        return os.posix_spawn(
            program, argv, env, file_actions=actions, setsid=True, setsigdef=_SIGDEF
        )
    finally:
        if here is not None:
            os.chdir(here)


def _no_inheritance() -> None:
    """Mark every descriptor above stderr close-on-exec (Popen's close_fds): Python makes
    its own so, but the nanny may have inherited others."""
    try:
        names = os.listdir("/proc/self/fd")
    except OSError:
        return
    for name in names:
        fd = int(name)
        if fd > 2:
            try:  # noqa: SIM105
                os.set_inheritable(fd, False)
            except OSError:
                pass  # (the listing's own descriptor, closed by now)


def which(name: str, *, path: str | None = None) -> str | None:
    """``shutil.which(name, path=path)`` on POSIX (shutil costs milliseconds to import)."""
    if os.path.dirname(name):
        return name if _executable(name) else None
    if path is None:
        path = os.environ.get("PATH", os.defpath)
    seen: set[str] = set()
    for directory in path.split(os.pathsep):
        if directory in seen:
            continue
        seen.add(directory)
        candidate = os.path.join(directory, name)
        if _executable(candidate):
            return candidate
    return None


def _executable(path: str) -> bool:
    return os.access(path, os.X_OK) and not os.path.isdir(path)


def _unlink(path: str) -> None:
    try:  # noqa: SIM105
        os.unlink(path)
    except FileNotFoundError:
        pass


def _write_private(path: str, content: str) -> bool:
    """Write ``path`` atomically with mode 0600 (its directory made 0700 if missing), as
    connection files are written; False if it cannot be."""
    tmp = f"{path}.{os.getpid()}.tmp"
    try:
        _private_dirs(os.path.dirname(path) or ".")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, content.encode())
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except OSError:
        _unlink(tmp)
        return False
    return True


def _private_dirs(directory: str) -> None:
    """Make ``directory`` and its missing parents with mode 0700 whatever the umask (as
    :func:`kernelkit._files.ensure_private_dir` does, without its imports)."""
    missing = []
    level = os.path.abspath(directory)
    while not os.path.isdir(level):
        missing.append(level)
        parent = os.path.dirname(level)
        if parent == level:
            break
        level = parent
    for level in reversed(missing):
        try:
            os.mkdir(level, 0o700)
        except FileExistsError:
            continue  # another process made it meanwhile
        os.chmod(level, 0o700)  # (mkdir's mode is filtered by the umask)


def pdeathsig_command(cmd: Sequence[str], env: Mapping[str, str] | None) -> list[str]:
    """``cmd`` run by ``setpriv --pdeathsig KILL``: the kernel gets SIGKILL when the nanny
    dies (Linux's parent-death signal, set just before the kernel's exec), since a
    SIGKILLed nanny cannot stop it and not every kernel watches ``JPY_PARENT_PID``
    (xeus-python does not). Without setpriv, or for a program that cannot be found (the
    launcher's own error says so), ``cmd`` as is."""
    setpriv = which("setpriv") if sys.platform.startswith("linux") else None
    path = (env if env is not None else os.environ).get("PATH", os.defpath)
    if not cmd or setpriv is None or which(cmd[0], path=path) is None:
        return list(cmd)
    return [setpriv, "--pdeathsig", "KILL", "--", *cmd]
