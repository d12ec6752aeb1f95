"""Python and conda environments: found from the filesystem alone, activated at launch.

Listing (:func:`find_environments`, :func:`inspect_environment`) never runs a
subprocess. Activation (:class:`Activator`) may run a conda prefix's activation
scripts, once, and caches the result.
"""

from kernelkit.envs._activation import (
    Activator,
    EnvChange,
    default_activation_cache_dir,
    diff_environ,
    which_activated,
)
from kernelkit.envs._environment import (
    CONDA_KINDS,
    Environment,
    EnvKind,
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
    "environment_id",
    "find_environments",
    "inspect_environment",
    "remember_environments",
    "which_activated",
]
