"""Python and conda environments: found from the filesystem alone, activated at launch.

Listing (:func:`find_environments`, :func:`inspect_environment`) never runs a
subprocess. Activation (:class:`Activator`) may run a conda prefix's activation
scripts, once, and caches the result.
"""

from kernelkit.envs._environment import (
    CONDA_KINDS,
    Environment,
    EnvKind,
    environment_holding,
    environment_id,
    inspect_environment,
)
from kernelkit.envs._locations import (
    EnvironmentScan,
    EnvLocations,
    ScanProblem,
    find_environments,
    remember_environments,
)

# Activation loads on first use: listing never activates, and activation's imports
# (subprocess, shutil, hashlib, logging) cost more than finding fifty environments. The
# TYPE_CHECKING import is its mirror for type checkers.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from kernelkit.envs._activation import (
        Activator,
        EnvChange,
        default_activation_cache_dir,
        diff_environ,
        which_activated,
    )

_LAZY = {
    "Activator",
    "EnvChange",
    "default_activation_cache_dir",
    "diff_environ",
    "which_activated",
}


def __getattr__(name: str) -> object:
    if name in _LAZY:
        from kernelkit.envs import _activation

        value = getattr(_activation, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "CONDA_KINDS",
    "Activator",
    "EnvChange",
    "EnvKind",
    "EnvLocations",
    "Environment",
    "EnvironmentScan",
    "ScanProblem",
    "default_activation_cache_dir",
    "diff_environ",
    "environment_holding",
    "environment_id",
    "find_environments",
    "inspect_environment",
    "remember_environments",
    "which_activated",
]
