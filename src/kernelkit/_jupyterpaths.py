"""Jupyter's directories (data, runtime, the search path), as jupyter_core computes them.

jupyter_core stays the authority (DESIGN.md: "Jupyter paths: jupyter_core"). Importing
``jupyter_core.paths`` pulls in platformdirs, tempfile and shutil, which cost more than
listing a thousand kernelspecs, and for the usual case (a POSIX system, no
``$JUPYTER_PLATFORM_DIRS``) its answers are a few environment variables and two fixed
directories. Those are computed here; every other case (Windows, platformdirs opted in,
or ``jupyter_core.paths`` already imported, perhaps patched) asks jupyter_core itself.
tests/test_jupyterpaths.py checks every answer against jupyter_core under the
environment variables that change it.
"""

from __future__ import annotations

import os
import site
import sys
from pathlib import Path

__all__ = ["jupyter_config_dir", "jupyter_data_dir", "jupyter_path", "jupyter_runtime_dir"]

# jupyter_core.paths.SYSTEM_JUPYTER_PATH on POSIX without platformdirs.
_POSIX_SYSTEM_PATH = ("/usr/local/share/jupyter", "/usr/share/jupyter")


def _envset(name: str) -> bool:
    # jupyter_core.paths.envset with default False.
    value = os.environ.get(name)
    return value is not None and value.lower() not in ("no", "n", "false", "off", "0", "0.0")


def _ask_jupyter_core() -> bool:
    return (
        os.name != "posix"
        or "jupyter_core.paths" in sys.modules
        or _envset("JUPYTER_PLATFORM_DIRS")
    )


def _home() -> str:
    # jupyter_core.paths.get_home_dir: the home directory with symlinks resolved.
    return os.path.realpath(os.path.expanduser("~"))


def jupyter_data_dir() -> str:
    """``jupyter_core.paths.jupyter_data_dir()``."""
    if os.environ.get("JUPYTER_DATA_DIR"):
        return os.environ["JUPYTER_DATA_DIR"]
    if _ask_jupyter_core():
        import jupyter_core.paths  # the uncommon platforms (see the module docstring)

        return jupyter_core.paths.jupyter_data_dir()
    if sys.platform == "darwin":
        return str(Path(_home(), "Library", "Jupyter"))
    xdg = os.environ.get("XDG_DATA_HOME") or os.path.join(_home(), ".local", "share")
    return os.path.join(xdg, "jupyter")


def jupyter_config_dir() -> str:
    """``jupyter_core.paths.jupyter_config_dir()``."""
    if os.environ.get("JUPYTER_NO_CONFIG") or _ask_jupyter_core():
        import jupyter_core.paths  # the uncommon cases (see the module docstring)

        return jupyter_core.paths.jupyter_config_dir()
    if os.environ.get("JUPYTER_CONFIG_DIR"):
        return os.environ["JUPYTER_CONFIG_DIR"]
    return os.path.join(_home(), ".jupyter")


def jupyter_runtime_dir() -> str:
    """``jupyter_core.paths.jupyter_runtime_dir()``."""
    if os.environ.get("JUPYTER_RUNTIME_DIR"):
        return os.environ["JUPYTER_RUNTIME_DIR"]
    return os.path.join(jupyter_data_dir(), "runtime")


def _owned_by_me(path: str) -> bool:
    # jupyter_core.paths._do_i_own: the nearest existing ancestor is owned by the login
    # user's name, else by the effective uid, else at least writable.
    p = os.path.realpath(path)
    while not os.path.exists(p) and p != os.path.dirname(p):
        p = os.path.dirname(p)
    try:
        import pwd  # POSIX only, as this path is

        by_name = pwd.getpwuid(os.stat(p).st_uid).pw_name == os.getlogin()
    except (KeyError, OSError):  # no login name (no terminal) or an unknown uid
        by_name = None
    if by_name is not None:
        return by_name
    try:
        return os.stat(p).st_uid == os.geteuid()
    except OSError:
        return os.access(p, os.W_OK)


def _prefer_environment() -> bool:
    # jupyter_core.paths.prefer_environment_over_user.
    if "JUPYTER_PREFER_ENV_PATH" in os.environ:
        return _envset("JUPYTER_PREFER_ENV_PATH")
    if sys.prefix != sys.base_prefix and _owned_by_me(sys.prefix):
        return True
    conda = os.environ.get("CONDA_PREFIX")
    return (
        conda is not None
        and sys.prefix.startswith(conda)
        and os.environ.get("CONDA_DEFAULT_ENV", "base") != "base"
        and _owned_by_me(sys.prefix)
    )


def jupyter_path(*subdirs: str) -> list[str]:
    """``jupyter_core.paths.jupyter_path(*subdirs)``: where Jupyter looks for data files."""
    if _ask_jupyter_core():
        import jupyter_core.paths  # the uncommon platforms (see the module docstring)

        return jupyter_core.paths.jupyter_path(*subdirs)
    paths: list[str] = []
    if os.environ.get("JUPYTER_PATH"):
        paths.extend(p.rstrip(os.sep) for p in os.environ["JUPYTER_PATH"].split(os.pathsep))
    user = [jupyter_data_dir()]
    if site.ENABLE_USER_SITE:
        userbase = site.getuserbase()
        if userbase:
            userdir = str(Path(userbase, "share", "jupyter"))
            if userdir not in user:
                user.append(userdir)
    env_path = str(Path(sys.prefix, "share", "jupyter"))
    env = [] if env_path in _POSIX_SYSTEM_PATH else [env_path]
    paths.extend(env + user if _prefer_environment() else user + env)
    paths.extend(p for p in _POSIX_SYSTEM_PATH if p not in paths)
    if subdirs:
        paths = [os.path.join(p, *subdirs) for p in paths]
    return paths
