"""Third-party provider plugins for the tests, installed the way pip would leave them.

``site/`` holds four packages and their ``*.dist-info`` (METADATA and
``entry_points.txt`` in the ``kernelkit.providers`` and ``kernelkit.provisioners``
groups). Putting ``site/`` on
``sys.path`` (or ``PYTHONPATH`` for a subprocess) is all an install does for
``importlib.metadata``, so no install step is needed:

- ``kk-good``: a provider that is also a traitlets ``LoggingConfigurable`` and offers
  one launchable kernel (ipykernel on this interpreter);
- ``kk-raises``: ``find_kernels`` raises;
- ``kk-hangs``: ``find_kernels`` blocks until released (``release_hanging_provider``),
  or 60 s at most;
- ``kk-missing``: an entry point whose module does not exist;
- ``kk-launch`` with the provisioner ``kk-test-provisioner`` (``kk_launch_plugin``): a
  provider of a new kind whose plan names its own provisioner and configuration.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

SITE = Path(__file__).resolve().parent / "site"
PLUGIN_NAMES = ("kk-good", "kk-hangs", "kk-launch", "kk-missing", "kk-raises")


def release_hanging_provider() -> None:
    """Let every blocked ``kk-hangs`` listing return (so its thread ends)."""
    module = sys.modules.get("kk_provider_hangs")
    if module is not None:
        module.RELEASE.set()


def rearm_hanging_provider() -> None:
    module = sys.modules.get("kk_provider_hangs")
    if module is not None:
        module.RELEASE.clear()


@contextmanager
def plugins_installed() -> Iterator[Path]:
    """The plugins visible to ``importlib.metadata`` (and importable) in this process."""
    sys.path.insert(0, str(SITE))
    importlib.invalidate_caches()
    rearm_hanging_provider()  # an earlier test may have released it
    try:
        yield SITE
    finally:
        release_hanging_provider()
        sys.path.remove(str(SITE))
        importlib.invalidate_caches()
