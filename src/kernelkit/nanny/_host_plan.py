"""A kernel type of the nanny's machine, by id (``env/<env-id>/python3``), made ready to
launch there: its kernelspec and its environment, activated (what an SSH host's
environments need, ``ssh/<host>/env/...``). Loaded only for such a kernel: discovery
costs more than the nanny's early start."""

from __future__ import annotations

from collections.abc import Mapping

from kernelkit._errors import ProvisioningError
from kernelkit.discovery import KernelFinder
from kernelkit.nanny._host_kernels import LISTED_PROVIDERS
from kernelkit.specs import DEFAULT_PROVISIONER, KernelSpec

__all__ = ["prepare_here"]


def prepare_here(
    type_id: str, env: Mapping[str, str], *, finder: KernelFinder | None = None
) -> tuple[KernelSpec, dict[str, str]]:
    """The spec and the complete environment (activated, ``env`` on top) of kernel type
    ``type_id`` on this machine (found by ``finder``, default: a new one).

    Raises:
        NoSuchKernel: no such kernel type here (the error lists the ids).
        KernelSpecError, EnvironmentActivationError, DiscoveryError: it cannot be launched.
        ProvisioningError: it is not a kernel the nanny launches (another provider's).
    """
    provider = type_id.partition("/")[0]
    if provider not in LISTED_PROVIDERS:
        raise ProvisioningError(
            f"kernel {type_id!r}: a host's kernels are its kernelspecs and environments "
            f"({', '.join(p + '/...' for p in LISTED_PROVIDERS)}), not {provider!r} ones"
        )
    plan = (finder or KernelFinder()).prepare(type_id, env=dict(env) or None)
    if plan.provisioner_name != DEFAULT_PROVISIONER:
        raise ProvisioningError(
            f"kernel {type_id!r} is launched by {plan.provisioner_name!r} on its host; the "
            "nanny launches kernels as local processes only"
        )
    return plan.spec, dict(plan.env)
