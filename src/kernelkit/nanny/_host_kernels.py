"""What a host offers, as kernelkit reads it there: ``python -m kernelkit.nanny._host_kernels``
prints one JSON object, ``{"kernels": [...], "problems": [...]}``, with the host's
kernelspecs and environments (the ``spec`` and ``env`` providers; never its own SSH hosts
or servers). Run on the host over ssh by :mod:`kernelkit.nanny._ssh_listing`.

Each kernel: ``id`` (``spec/<name>``, ``env/<env-id>/<name>``), ``display_name``,
``language``, ``origin``, ``problems``, ``spec`` (kernel.json fields, or null) and
``environment`` (``name``, ``kind``, ``prefix``, or null).
"""

from __future__ import annotations

import json
import sys
from typing import Any

from kernelkit.discovery import KernelFinder, KernelType

__all__ = ["LISTED_PROVIDERS", "host_kernels", "main"]

#: The providers whose kernels a host offers.
LISTED_PROVIDERS = ("spec", "env")


def _entry(t: KernelType) -> dict[str, Any]:
    spec = None
    if t.spec is not None:
        spec = {**t.spec.to_dict(), "name": t.spec.name}
    env = None
    if t.environment is not None:
        e = t.environment
        env = {"name": e.name, "kind": str(e.kind), "prefix": str(e.prefix)}
    return {
        "id": t.id,
        "display_name": t.display_name,
        "language": t.language,
        "origin": t.origin,
        "problems": list(t.problems),
        "spec": spec,
        "environment": env,
    }


def host_kernels() -> dict[str, Any]:
    """This machine's kernelspecs and environments, as the listing sends them."""
    providers = [p for p in LISTED_PROVIDERS if p in KernelFinder().provider_names]
    found = KernelFinder().find(providers=providers)
    return {
        "kernels": [_entry(t) for t in found],
        "problems": [f"{p.provider}: {p.reason}" for p in found.problems],
    }


def main() -> int:
    sys.stdout.write(json.dumps(host_kernels()) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
