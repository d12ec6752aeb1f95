"""Which provisioner a kernelspec asks for: ``metadata.kernel_provisioner``.

Read here, below both discovery and provisioning, so that a launch plan can name the
provisioner without importing provisioning (which listing never needs).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping

from kernelkit._errors import ProvisioningError
from kernelkit.specs._spec import KernelSpec

# typing in annotations only, imported when they are inspected (kernelkit.specs._typing)
TYPE_CHECKING = False
if not TYPE_CHECKING:
    from kernelkit.specs._typing import typing
else:
    import typing

__all__ = [
    "DEFAULT_PROVISIONER",
    "JUPYTER_BRIDGE",
    "JUPYTER_PROVISIONERS",
    "installed_provisioners",
    "provisioner_choice",
    "provisioner_problem",
]

#: The provisioner a kernelspec gets when its metadata names none.
DEFAULT_PROVISIONER = "local-provisioner"

#: The entry point group of jupyter_client's provisioners; a kernelspec naming one is
#: launched through kernelkit.jupyter (the extra ``kernelkit[jupyter]``).
JUPYTER_PROVISIONERS = "jupyter_client.kernel_provisioners"
#: kernelkit's provisioner that runs a jupyter_client one (kernelkit.jupyter).
JUPYTER_BRIDGE = "jupyter-client-provisioner"
_KERNELKIT_PROVISIONERS = "kernelkit.provisioners"


def provisioner_choice(
    kernel_spec: KernelSpec, *, default: str = DEFAULT_PROVISIONER
) -> tuple[str, dict[str, typing.Any]]:
    """The provisioner ``kernel_spec`` asks for and its config: from
    ``metadata.kernel_provisioner = {"provisioner_name": ..., "config": {...}}``, else
    ``(default, {})``.

    Raises:
        ProvisioningError: ``metadata.kernel_provisioner`` is malformed (the message says
            which part and what it must be).
    """
    chosen = kernel_spec.metadata.get("kernel_provisioner")
    if chosen is None:
        return default, {}
    where = f"kernel {kernel_spec.name!r}: metadata.kernel_provisioner"
    if not isinstance(chosen, Mapping):
        raise ProvisioningError(f"{where} must be an object with 'provisioner_name'")
    name = chosen.get("provisioner_name", default)
    if not isinstance(name, str) or not name:
        raise ProvisioningError(f"{where}.provisioner_name must be a non-empty string")
    config = chosen.get("config", {})
    if not isinstance(config, Mapping) or not all(isinstance(k, str) for k in config):
        raise ProvisioningError(f"{where}.config must be an object")
    return name, dict(config)


@functools.lru_cache(maxsize=4)
def installed_provisioners(group: str = _KERNELKIT_PROVISIONERS) -> frozenset[str]:
    """The names of the provisioners registered in entry point ``group`` (read once)."""
    # Imported here for start-up time: importlib.metadata (email, zipfile, csv...) costs
    # more than scanning a thousand kernelspecs, and only a spec naming a provisioner asks.
    from importlib.metadata import entry_points

    return frozenset(ep.name for ep in entry_points(group=group))


def provisioner_problem(kernel_spec: KernelSpec) -> str | None:
    """Why the provisioner ``kernel_spec`` names cannot launch it here; None when it
    names none, or an installed one (a jupyter_client provisioner counts when
    jupyter_client is installed: kernelkit.jupyter runs it)."""
    if kernel_spec.metadata.get("kernel_provisioner") is None:
        return None
    try:
        name, _ = provisioner_choice(kernel_spec)
    except ProvisioningError as exc:
        return str(exc)
    if name in installed_provisioners(_KERNELKIT_PROVISIONERS):
        return None
    if name in installed_provisioners(JUPYTER_PROVISIONERS):
        import importlib.util  # start-up time: only a spec naming a provisioner asks

        if importlib.util.find_spec("jupyter_client") is not None:
            return None
        return (
            f"its provisioner {name!r} is a jupyter_client provisioner and jupyter_client "
            "is not installed: pip install 'kernelkit[jupyter]'"
        )
    return (
        f"its provisioner {name!r} is not installed (no entry point by that name in "
        f"{_KERNELKIT_PROVISIONERS} or {JUPYTER_PROVISIONERS})"
    )
