"""``kernelkit run``'s kernel, started before the rest of the command is imported.

A kernel boots for several hundred milliseconds; the command imports typer, rich,
asyncio, the manager and the client for about two hundred before it would start one.
For the common case, :func:`kernelkit.cli.main` calls :func:`start_early` first: it
reads the command line, finds the kernelspec and starts the kernel exactly as the
manager's :class:`~kernelkit.provisioning.LocalProvisioner` would (same command,
environment, key and connection file, kernel-chosen ports written back). The command
then runs as usual, and its provisioner adopts that kernel instead of starting one
(:class:`~kernelkit.nanny._kernel.AdoptingProvisioner`, which checks that command,
environment and directory are the ones it would use, and starts its own otherwise).

The common case, and nothing else: a new kernel from a kernelspec (``-k NAME``, default
``python3``) that writes its ports back (ipykernel and its kin), outside any conda
environment, with no option this module does not know (``--server``, ``--sandbox``,
``--existing``, ``--cwd``, a notebook, ``--help``, ...). Anything else, or anything that
goes wrong here, leaves the start to the manager, as before. ``KERNELKIT_EARLY_RUN=0``
turns it off.

An early kernel the command does not adopt (it fails first, or chose another kernel) is
stopped and its file removed when the process exits; it also gets SIGKILL if the process
dies (``setpriv --pdeathsig``), as ``kernelkit run`` never leaves its kernel running.
"""

from __future__ import annotations

import atexit
import os
import signal

# Not typing: this runs before anything else of the command.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from typing import Any

    from kernelkit.nanny._first import EarlyKernel

__all__ = ["EARLY_ENV", "EarlyRun", "claim_early", "read_run_args", "start_early"]

#: ``KERNELKIT_EARLY_RUN=0`` turns the early start off.
EARLY_ENV = "KERNELKIT_EARLY_RUN"

DEFAULT_KERNEL = "python3"

# The options of `kernelkit run` this module understands: those that take a value, and
# flags. The others (a server, a sandbox, a running kernel, a working directory, ...)
# leave the start to the manager.
_WITH_VALUE = frozenset(
    {"-c", "--code", "-k", "--kernel", "-e", "--env", "--startup-timeout", "--timeout"}
)
_SHORT_WITH_VALUE = frozenset({"-c", "-k", "-e"})
_FLAGS = frozenset({"--json"})


class EarlyRun:
    """A kernel started by :func:`start_early`: the kernel name it was started for, its
    kernel id (the manager takes the same, so its connection file is the same) and the
    process (for :class:`~kernelkit.nanny._kernel.AdoptingProvisioner`)."""

    __slots__ = ("kernel", "kernel_id", "kernel_name")

    def __init__(self, kernel_name: str, kernel_id: str, kernel: EarlyKernel) -> None:
        self.kernel_name = kernel_name
        self.kernel_id = kernel_id
        self.kernel = kernel


_early: EarlyRun | None = None


def read_run_args(args: Sequence[str]) -> tuple[str, dict[str, str]] | None:
    """The kernel name and ``--env`` variables of ``kernelkit run ARGS``, as the command
    will read them; None when the arguments hold anything else than the common case
    (module docstring), or something the command will reject."""
    kernel = DEFAULT_KERNEL
    env: dict[str, str] = {}
    positional: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        i += 1
        if arg == "--":
            positional.extend(args[i:])
            break
        if arg == "-" or not arg.startswith("-"):
            positional.append(arg)
            continue
        if arg in _FLAGS:
            continue
        if arg.startswith("--") and "=" in arg:
            name, _, value = arg.partition("=")
        elif arg in _WITH_VALUE:
            if i >= len(args):
                return None
            name, value = arg, args[i]
            i += 1
        elif arg[:2] in _SHORT_WITH_VALUE:
            name, value = arg[:2], arg[2:]
        else:
            return None
        if name not in _WITH_VALUE:
            return None
        if name in ("-k", "--kernel"):
            kernel = value
        elif name in ("-e", "--env"):
            key, sep, val = value.partition("=")
            if not sep or not key or "\0" in value:
                return None
            env[key] = val
    if len(positional) > 1 or any(p.lower().endswith(".ipynb") for p in positional):
        return None
    if not kernel or "/" in kernel:
        return None  # a kernel type id: its provider plans the launch
    return kernel, env


def start_early(args: Sequence[str]) -> None:
    """Start the kernel of ``kernelkit run ARGS`` now, if it is the common case (module
    docstring); :func:`claim_early` hands it over. Never raises (but a Ctrl-C that came
    meanwhile is raised once the kernel is ours to stop): whatever goes wrong here is for
    the command to find and report."""
    global _early
    if os.environ.get(EARLY_ENV, "1") == "0" or _early is not None:
        return
    read = read_run_args(args)
    if read is None:
        return
    name, env = read
    # A signal that comes while the kernel starts waits until the kernel (and its file)
    # is known, to be stopped; SIGTERM and SIGHUP, until the command's own handlers, stop
    # it too before they end this process as before.
    deferred: list[int] = []
    previous = _catch(_DEFERRED, lambda signum, frame: deferred.append(signum))
    try:
        _early = _start(name, env)
    except Exception:  # the manager starts it instead, and reports what is wrong
        _early = None
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    if _early is not None:
        atexit.register(_discard)
        _catch(_ENDING, _stop_and_die)
    for signum in deferred:
        signal.raise_signal(signum)  # (SIGINT: KeyboardInterrupt, then atexit stops it)


# Signals whose default handling ends the process without atexit; and SIGINT, whose
# KeyboardInterrupt could come out of any line of the start.
_ENDING = tuple(getattr(signal, n) for n in ("SIGTERM", "SIGHUP") if hasattr(signal, n))
_DEFERRED = (signal.SIGINT, *_ENDING)


def _catch(signums: Sequence[int], handler: Callable[[int, Any], None]) -> dict[int, Any]:
    """Handle those of ``signums`` left to their default handling; their old handlers."""
    previous = {}
    for signum in signums:
        if signal.getsignal(signum) in (signal.SIG_DFL, signal.default_int_handler):
            try:
                previous[signum] = signal.signal(signum, handler)
            except ValueError:  # not the main thread: they are left as they are
                break
    return previous


def _stop_and_die(signum: int, frame: Any) -> None:
    _discard()
    signal.signal(signum, signal.SIG_DFL)
    signal.raise_signal(signum)


def _start(name: str, env: dict[str, str]) -> EarlyRun | None:
    import uuid  # (no cost of its own: orjson, which reads the kernelspec, imports it)

    from kernelkit import specs
    from kernelkit.envs import Activator, environment_holding
    from kernelkit.nanny._prepared import prepare_launch, writes_ports_back

    spec = specs.get_kernel_spec(name)
    if spec.problems or not writes_ports_back(spec):
        return None
    if specs.provisioner_choice(spec) != ("local-provisioner", {}):
        return None  # another provisioner, or options (ip, independent, ...) for it
    base: dict[str, str] = dict(os.environ)
    environment = environment_holding(spec.resource_dir.parent)
    if environment is not None:
        if environment.is_conda:
            return None  # its activation scripts run with the manager (cached there)
        base = Activator(cache_dir=None).activate(environment, base)
    kernel_id = str(uuid.uuid4())
    prepared = prepare_launch(spec, kernel_id=kernel_id, base_env={**base, **env})
    if prepared is None:
        return None
    kernel = prepared.start(kernel_id)
    return EarlyRun(name, kernel_id, kernel) if kernel is not None else None


def claim_early(kernel_name: str) -> EarlyRun | None:
    """The kernel :func:`start_early` started for ``kernel_name``, now the caller's to
    adopt or discard (another one is stopped now). None when there is none."""
    global _early
    early, _early = _early, None
    if early is None:
        return None
    if early.kernel_name != kernel_name:
        early.kernel.discard()
        return None
    return early


def _discard() -> None:
    global _early
    early, _early = _early, None
    if early is not None:
        early.kernel.discard()
