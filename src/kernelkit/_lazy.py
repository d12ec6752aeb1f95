"""Names of a package loaded from its modules on first use (PEP 562 ``__getattr__``).

A package keeps a table of its public names and the module each lives in, and gets its
``__getattr__`` from :func:`lazy_getattr`: importing the package costs nothing, and a
name, once loaded, is kept in the package's namespace (no second lookup).
"""

from __future__ import annotations

import importlib

# Not typing (the kernelspec listing and the nanny's first moment must not load it).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from typing import Any

__all__ = ["lazy_getattr"]


def lazy_getattr(
    package: str, where: Mapping[str, str], namespace: dict[str, Any]
) -> Callable[[str], Any]:
    """The ``__getattr__`` of ``package``: ``where`` maps each name to its module (a
    submodule's own name such as ``"_scan"``, or a full dotted path); ``namespace`` is
    the package's ``globals()``."""

    def __getattr__(name: str) -> Any:
        module = where.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        path = module if "." in module else f"{package}.{module}"
        value = getattr(importlib.import_module(path), name)
        namespace[name] = value
        return value

    return __getattr__
