"""The environment a shell has after activating an environment (used at launch only).

- venv-like environments: ``VIRTUAL_ENV`` and ``PATH``, computed without a subprocess;
  an installed Python (pyenv version, system prefix): its ``bin`` first on ``PATH``.
- conda-like prefixes: what ``conda activate`` sets (``PATH``, ``CONDA_PREFIX``,
  ``CONDA_DEFAULT_ENV``, ``CONDA_SHLVL``, ``CONDA_PROMPT_MODIFIER``, the variables of
  ``conda env config vars``), then whatever the prefix's
  ``etc/conda/activate.d/*.sh`` scripts set. Those scripts are run once in ``bash``
  with a time limit and their effect is recorded as a list of changes, cached in
  memory and on disk, and re-run only when a script is added, removed or modified.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from kernelkit._errors import EnvironmentActivationError
from kernelkit._files import atomic_write, kernelkit_log
from kernelkit.envs._environment import Environment

__all__ = [
    "Activator",
    "EnvChange",
    "default_activation_cache_dir",
    "diff_environ",
    "which_activated",
]

_CACHE_FORMAT = 1
# Variables a shell sets by itself: never part of what a script "changed".
_SHELL_NOISE = frozenset({"_", "SHLVL", "PWD", "OLDPWD"})
_MARK = "@@kernelkit-activation@@"
_OUTPUT_TAIL = 20

# Sources each script in order with no positional parameters; a script that returns
# non-zero stops the run. Scripts write to stderr (fd 1 is moved there), so fd 3 carries
# only the final environment.
_DRIVER = f"""
exec 3>&1 1>&2
__kk_scripts=("$@")
set --
for __kk_script in "${{__kk_scripts[@]}}"; do
  printf '%s start %s\\n' '{_MARK}' "$__kk_script" >&2
  . "$__kk_script"
  __kk_rc=$?
  if [ "$__kk_rc" -ne 0 ]; then
    printf '%s failed %s\\n' '{_MARK}' "$__kk_rc" >&2
    exit 97
  fi
done
unset __kk_scripts __kk_script __kk_rc
env -0 >&3
"""


@dataclass(frozen=True, slots=True)
class EnvChange:
    """One variable's change: ``set`` to value, ``unset``, or ``prepend``/``append`` a
    value to a path-like variable (joined with ``os.pathsep``)."""

    name: str
    op: Literal["set", "unset", "prepend", "append"]
    value: str = ""

    def apply(self, environ: dict[str, str]) -> None:
        """Apply this change to ``environ`` in place."""
        if self.op == "unset":
            environ.pop(self.name, None)
        elif self.op == "set":
            environ[self.name] = self.value
        else:
            old = environ.get(self.name)
            if not old:
                environ[self.name] = self.value
            elif self.op == "prepend":
                environ[self.name] = self.value + os.pathsep + old
            else:
                environ[self.name] = old + os.pathsep + self.value


def default_activation_cache_dir() -> Path:
    """``$KERNELKIT_CACHE_DIR/activation``, else ``$XDG_CACHE_HOME/kernelkit/activation``."""
    root = os.environ.get("KERNELKIT_CACHE_DIR")
    if root:
        return Path(root) / "activation"
    xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(Path.home(), ".cache")
    return Path(xdg) / "kernelkit" / "activation"


def diff_environ(before: Mapping[str, str], after: Mapping[str, str]) -> tuple[EnvChange, ...]:
    """The changes that turn ``before`` into ``after`` (shell bookkeeping excluded).

    A path-like value that grew at one end is recorded as a prepend or append, so it
    can be replayed onto a different base later.
    """
    changes: list[EnvChange] = []
    for name in sorted(set(before) | set(after)):
        if name in _SHELL_NOISE:
            continue
        old, new = before.get(name), after.get(name)
        if old == new:
            continue
        if new is None:
            changes.append(EnvChange(name, "unset"))
        elif old and new.endswith(os.pathsep + old):
            changes.append(EnvChange(name, "prepend", new[: -len(old) - 1]))
        elif old and new.startswith(old + os.pathsep):
            changes.append(EnvChange(name, "append", new[len(old) + 1 :]))
        else:
            changes.append(EnvChange(name, "set", new))
    return tuple(changes)


def _drop_path_entry(path: str, entry: str) -> str:
    return os.pathsep.join(p for p in path.split(os.pathsep) if p and p != entry)


def _conda_env_name(prefix: Path) -> str:
    if prefix.parent.name == "envs":
        return prefix.name
    if (prefix / "condabin").is_dir() or (prefix / "envs").is_dir():
        return "base"
    return str(prefix)


def _config_vars(prefix: Path) -> dict[str, str]:
    """``conda env config vars set`` values, stored in ``conda-meta/state``."""
    state = prefix / "conda-meta" / "state"
    try:
        data = json.loads(state.read_bytes())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise EnvironmentActivationError(
            f"cannot read {state}: {exc}; fix or delete that file"
        ) from exc
    env_vars = data.get("env_vars", {}) if isinstance(data, dict) else {}
    return {str(k): str(v) for k, v in env_vars.items()} if isinstance(env_vars, dict) else {}


def _leave_other_venv(environ: dict[str, str], target: Path) -> None:
    # A kernel from another environment must not inherit the launcher's own venv.
    other = environ.get("VIRTUAL_ENV")
    if other and os.path.realpath(other) != os.path.realpath(target):
        environ.pop("VIRTUAL_ENV", None)
        environ.pop("VIRTUAL_ENV_PROMPT", None)
        bin_dir = os.path.join(other, "Scripts" if os.name == "nt" else "bin")
        environ["PATH"] = _drop_path_entry(environ.get("PATH", ""), bin_dir)
    environ.pop("PYTHONHOME", None)


def _static_activation(env: Environment, base: Mapping[str, str]) -> dict[str, str]:
    """Everything activation sets that needs no subprocess."""
    out = dict(base)
    _leave_other_venv(out, env.prefix)
    path = out.get("PATH", "")
    bin_dir = str(env.bin_dir)
    if env.is_conda:
        old = out.get("CONDA_PREFIX")
        if old:
            path = _drop_path_entry(path, os.path.join(old, "bin"))
        try:
            level = int(out.get("CONDA_SHLVL") or 0)
        except ValueError:
            level = 0
        if old and os.path.realpath(old) != os.path.realpath(env.prefix):
            out[f"CONDA_PREFIX_{level}"] = old
        name = _conda_env_name(env.prefix)
        out["CONDA_PREFIX"] = str(env.prefix)
        out["CONDA_DEFAULT_ENV"] = name
        out["CONDA_SHLVL"] = str(level + 1 if old != str(env.prefix) else max(level, 1))
        out["CONDA_PROMPT_MODIFIER"] = f"({name}) "
        out.update(_config_vars(env.prefix))
    elif env.is_venv:
        out["VIRTUAL_ENV"] = str(env.prefix)
    out["PATH"] = bin_dir + (os.pathsep + _drop_path_entry(path, bin_dir) if path else "")
    return out


def _scripts(prefix: Path) -> list[Path]:
    directory = prefix / "etc" / "conda" / "activate.d"
    try:
        names = sorted(n for n in os.listdir(directory) if n.endswith(".sh"))
    except (FileNotFoundError, NotADirectoryError):
        return []
    except OSError as exc:
        raise EnvironmentActivationError(
            f"cannot list {directory}: {exc.strerror or exc}; fix its permissions"
        ) from exc
    return [directory / n for n in names]


def _fingerprint(scripts: list[Path]) -> list[list[object]]:
    out: list[list[object]] = []
    for script in scripts:
        try:
            st = script.stat()
        except OSError as exc:
            raise EnvironmentActivationError(
                f"cannot read activation script {script}: {exc.strerror or exc}"
            ) from exc
        out.append([script.name, st.st_mtime_ns, st.st_size])
    return out


def _tail(text: str) -> str:
    lines = [ln for ln in text.splitlines() if not ln.startswith(_MARK)]
    return "\n".join(lines[-_OUTPUT_TAIL:])


class Activator:
    """Activates environments for launching, caching what activation scripts do.

    One activator can be shared by threads. ``cache_dir=None`` keeps the cache in
    memory only; the default is :func:`default_activation_cache_dir`.
    """

    def __init__(
        self,
        *,
        cache_dir: str | os.PathLike[str] | Literal["default"] | None = "default",
        timeout: float = 10.0,
        shell: str = "bash",
    ) -> None:
        self._cache_dir = (
            default_activation_cache_dir()
            if cache_dir == "default"
            else (Path(cache_dir) if cache_dir is not None else None)
        )
        self._timeout = timeout
        self._shell = shell
        self._memory: dict[str, tuple[list[list[object]], tuple[EnvChange, ...]]] = {}
        self._lock = threading.Lock()
        self.script_runs = 0  # how many times scripts were actually run (for tests/benchmarks)

    @property
    def timeout(self) -> float:
        """The time limit for one prefix's activation scripts, in seconds."""
        return self._timeout

    def activate(self, env: Environment, base: Mapping[str, str] | None = None) -> dict[str, str]:
        """The full environment to launch a process of ``env`` with.

        ``base`` defaults to ``os.environ``. For a conda-like prefix this may run its
        activation scripts (the first time, or after they change).

        Raises:
            EnvironmentActivationError: a script failed, hung past the time limit, or
                could not be read; the message names the script and shows its output.
        """
        activated = _static_activation(env, os.environ if base is None else base)
        if env.is_conda:
            for change in self.script_changes(env.prefix, activated):
                change.apply(activated)
        return activated

    def script_changes(
        self, prefix: Path, environ: Mapping[str, str] | None = None
    ) -> tuple[EnvChange, ...]:
        """What ``prefix``'s ``etc/conda/activate.d/*.sh`` scripts change (cached).

        Raises:
            EnvironmentActivationError: as for :meth:`activate`.
        """
        scripts = _scripts(prefix)
        if not scripts:
            return ()
        fingerprint = _fingerprint(scripts)
        key = os.path.realpath(prefix)
        with self._lock:
            cached = self._memory.get(key)
        if cached is not None and cached[0] == fingerprint:
            return cached[1]
        changes = self._load(key, fingerprint)
        if changes is None:
            changes = self._run(prefix, scripts, environ if environ is not None else os.environ)
            self._store(key, fingerprint, changes)
        with self._lock:
            self._memory[key] = (fingerprint, changes)
        return changes

    def cached_script_changes(self, prefix: Path) -> tuple[EnvChange, ...] | None:
        """What ``prefix``'s activation scripts change, if known without running them
        (cached in memory or on disk, and the scripts unchanged since); ``()`` when it
        has none; None when unknown until it is activated.

        Raises:
            EnvironmentActivationError: the scripts cannot be listed or read.
        """
        scripts = _scripts(prefix)
        if not scripts:
            return ()
        fingerprint = _fingerprint(scripts)
        key = os.path.realpath(prefix)
        with self._lock:
            cached = self._memory.get(key)
        if cached is not None and cached[0] == fingerprint:
            return cached[1]
        return self._load(key, fingerprint)

    def clear(self) -> None:
        """Forget every cached activation, in memory and on disk."""
        with self._lock:
            self._memory.clear()
        if self._cache_dir is not None:
            shutil.rmtree(self._cache_dir, ignore_errors=True)

    def _cache_file(self, key: str) -> Path | None:
        if self._cache_dir is None:
            return None
        import hashlib  # here: a venv's activation (no scripts, no cache) needs none

        digest = hashlib.sha1(key.encode("utf-8", "surrogateescape")).hexdigest()
        return self._cache_dir / f"{digest}.json"

    def _load(self, key: str, fingerprint: list[list[object]]) -> tuple[EnvChange, ...] | None:
        path = self._cache_file(key)
        if path is None:
            return None
        try:
            data = json.loads(path.read_bytes())
            if (
                data.get("format") != _CACHE_FORMAT
                or data.get("prefix") != key
                or data.get("fingerprint") != fingerprint
            ):
                return None
            return tuple(EnvChange(str(n), op, str(v)) for n, op, v in data["changes"])
        except (OSError, ValueError, KeyError, TypeError):
            return None  # no cache, or a stale/garbled one: it is rebuilt below

    def _store(
        self, key: str, fingerprint: list[list[object]], changes: tuple[EnvChange, ...]
    ) -> None:
        path = self._cache_file(key)
        if path is None:
            return
        data = {
            "format": _CACHE_FORMAT,
            "prefix": key,
            "fingerprint": fingerprint,
            "changes": [[c.name, c.op, c.value] for c in changes],
        }
        try:
            atomic_write(path, json.dumps(data).encode(), private=False)
        except OSError as exc:
            # An unwritable cache only costs a re-run next time; activation itself worked.
            kernelkit_log().debug("cannot write the activation cache %s: %s", path, exc)

    def _run(
        self, prefix: Path, scripts: list[Path], environ: Mapping[str, str]
    ) -> tuple[EnvChange, ...]:
        shell = shutil.which(self._shell, path=environ.get("PATH")) or shutil.which(self._shell)
        if shell is None:
            raise EnvironmentActivationError(
                f"cannot activate {prefix}: {self._shell!r} is not installed, and its "
                "activation scripts need it"
            )
        # Imported here for start-up time: listing imports this module (to judge a
        # program on the activated PATH) and never runs a script.
        import signal
        import subprocess

        self.script_runs += 1
        env = dict(environ)
        proc = subprocess.Popen(
            [
                shell,
                "--noprofile",
                "--norc",
                "-c",
                _DRIVER,
                "kernelkit-activate",
                *map(str, scripts),
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            cwd=str(prefix),
            start_new_session=True,  # so a hung script and its children die together
        )
        try:
            out, err = proc.communicate(timeout=self._timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            try:
                out, err = proc.communicate(timeout=2.0)
            except subprocess.TimeoutExpired:
                # a child left the process group and holds our pipes: stop reading
                proc.kill()
                proc.wait()
                out, err = b"", b""
            text = err.decode("utf-8", "replace")
            script = _last_started(text) or str(scripts[0])
            raise EnvironmentActivationError(
                f"activation script {script} of {prefix} did not finish within "
                f"{self._timeout:g} s (it was killed); output:\n{_tail(text)}"
            ) from None
        text = err.decode("utf-8", "replace")
        if proc.returncode != 0 or not out:
            script = _last_started(text) or str(scripts[-1])
            status = _failed_status(text)
            how = (
                f"returned status {status}"
                if status is not None
                else f"exited the shell (status {proc.returncode})"
            )
            raise EnvironmentActivationError(
                f"activation script {script} of {prefix} failed: it {how}; output:\n{_tail(text)}"
            )
        after: dict[str, str] = {}
        for item in out.split(b"\0"):
            name, sep, value = item.partition(b"=")
            if sep and name:
                after[name.decode("utf-8", "surrogateescape")] = value.decode(
                    "utf-8", "surrogateescape"
                )
        return diff_environ(env, after)


def _last_started(stderr: str) -> str | None:
    started = [ln for ln in stderr.splitlines() if ln.startswith(_MARK + " start ")]
    return started[-1][len(_MARK) + 7 :] if started else None


def _failed_status(stderr: str) -> int | None:
    for line in stderr.splitlines():
        if line.startswith(_MARK + " failed "):
            with contextlib.suppress(ValueError):
                return int(line[len(_MARK) + 8 :])
    return None


def which_activated(
    env: Environment,
    program: str,
    *,
    activator: Activator | None = None,
    base: Mapping[str, str] | None = None,
) -> str | Literal[False] | None:
    """Where ``program`` (a bare name) is on ``env``'s ``PATH`` once activated, judged
    without running anything: the path; False when it is not there; None when that is
    unknown until the environment is activated (activation scripts that have not run
    yet, or changed since: only ``activator``'s cache would tell).

    ``base`` defaults to ``os.environ``; without ``activator`` only the static part of
    activation is known (a conda prefix with scripts is then unknown).
    """
    environ = _static_activation(env, os.environ if base is None else base)
    found = shutil.which(program, path=environ.get("PATH", ""))
    if found is not None:
        return found
    if not env.is_conda:
        return False
    try:
        if activator is not None:
            changes = activator.cached_script_changes(env.prefix)
        else:
            changes = () if not _scripts(env.prefix) else None
    except EnvironmentActivationError:
        return None  # activating it says what is wrong
    if changes is None:
        return None
    if not changes:
        return False
    for change in changes:
        change.apply(environ)
    return shutil.which(program, path=environ.get("PATH", "")) or False
