"""Which provisioner a kernelspec asks for: ``metadata.kernel_provisioner``.

Read here, below both discovery and provisioning, so that a launch plan can name the
provisioner without importing provisioning (which listing never needs).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kernelkit._errors import ProvisioningError
from kernelkit.specs._spec import KernelSpec

__all__ = [
    "DEFAULT_PROVISIONER",
    "provisioner_choice",
]

#: The provisioner a kernelspec gets when its metadata names none.
DEFAULT_PROVISIONER = "local-provisioner"


def provisioner_choice(
    kernel_spec: KernelSpec, *, default: str = DEFAULT_PROVISIONER
) -> tuple[str, dict[str, Any]]:
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
