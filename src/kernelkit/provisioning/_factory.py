"""Finding provisioners: :class:`KernelProvisionerFactory` (entry points)."""

from __future__ import annotations

from collections.abc import Mapping
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from kernelkit._errors import ProvisionerNotFound, ProvisioningError
from kernelkit.provisioning._base import KernelProvisionerBase
from kernelkit.specs import KernelSpec

__all__ = [
    "DEFAULT_PROVISIONER",
    "ENTRY_POINT_GROUP",
    "KernelProvisionerFactory",
]

#: The entry point group provisioners are registered under.
ENTRY_POINT_GROUP = "kernelkit.provisioners"
#: The provisioner a kernelspec gets when its metadata names none.
DEFAULT_PROVISIONER = "local-provisioner"


class KernelProvisionerFactory:
    """Creates the provisioner a kernelspec asks for.

    A kernelspec picks one with ``metadata.kernel_provisioner = {"provisioner_name": ...,
    "config": {...}}``; without it, ``default_provisioner`` (``local-provisioner``).
    ``config`` becomes keyword arguments of the provisioner class. Provisioners are found
    through the ``kernelkit.provisioners`` entry point group (read once per factory).
    """

    def __init__(self, *, default_provisioner: str = DEFAULT_PROVISIONER) -> None:
        self.default_provisioner = default_provisioner
        self._entries: dict[str, EntryPoint] | None = None
        self._loaded: dict[str, type[KernelProvisionerBase]] = {}

    def get_provisioner_entries(self) -> dict[str, EntryPoint]:
        """Installed provisioners: name -> entry point."""
        if self._entries is None:
            self._entries = {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}
        return dict(self._entries)

    def provisioner_name(self, kernel_spec: KernelSpec) -> str:
        """The provisioner ``kernel_spec`` asks for (the default if it names none).

        Raises:
            ProvisioningError: ``metadata.kernel_provisioner`` is malformed.
        """
        name, _ = self._choice(kernel_spec)
        return name

    def _choice(self, kernel_spec: KernelSpec) -> tuple[str, Mapping[str, Any]]:
        chosen = kernel_spec.metadata.get("kernel_provisioner")
        if chosen is None:
            return self.default_provisioner, {}
        where = f"kernel {kernel_spec.name!r}: metadata.kernel_provisioner"
        if not isinstance(chosen, Mapping):
            raise ProvisioningError(f"{where} must be an object with 'provisioner_name'")
        name = chosen.get("provisioner_name", self.default_provisioner)
        if not isinstance(name, str) or not name:
            raise ProvisioningError(f"{where}.provisioner_name must be a non-empty string")
        config = chosen.get("config", {})
        if not isinstance(config, Mapping) or not all(isinstance(k, str) for k in config):
            raise ProvisioningError(f"{where}.config must be an object")
        return name, config

    def is_provisioner_available(self, kernel_spec: KernelSpec) -> bool:
        """True when the provisioner ``kernel_spec`` asks for is installed."""
        try:
            name = self.provisioner_name(kernel_spec)
        except ProvisioningError:
            return False
        return name in self.get_provisioner_entries()

    def _load(self, name: str, kernel_spec: KernelSpec) -> type[KernelProvisionerBase]:
        cls = self._loaded.get(name)
        if cls is not None:
            return cls
        entries = self.get_provisioner_entries()
        entry = entries.get(name)
        if entry is None:
            raise ProvisionerNotFound(name, installed=list(entries))
        try:
            loaded = entry.load()
        except Exception as exc:  # an installed plugin that fails to import
            raise ProvisioningError(
                f"kernel {kernel_spec.name!r}: provisioner {name!r} ({entry.value}) failed "
                f"to load: {type(exc).__name__}: {exc}"
            ) from exc
        if not (isinstance(loaded, type) and issubclass(loaded, KernelProvisionerBase)):
            raise ProvisioningError(
                f"provisioner {name!r} ({entry.value}) is not a KernelProvisionerBase subclass"
            )
        self._loaded[name] = loaded
        return loaded

    def create_provisioner_instance(
        self, kernel_id: str, kernel_spec: KernelSpec, *, parent: object | None = None
    ) -> KernelProvisionerBase:
        """A new provisioner for one launch of ``kernel_spec``.

        ``parent`` is passed on only when given (for provisioners that are traitlets
        ``Configurable``s).

        Raises:
            ProvisionerNotFound: the spec names a provisioner that is not installed
                (the error lists the installed ones).
            ProvisioningError: the provisioner fails to load, is not a provisioner, or
                rejects its config.
        """
        name, config = self._choice(kernel_spec)
        cls = self._load(name, kernel_spec)
        kwargs: dict[str, Any] = dict(config)
        if parent is not None:
            kwargs["parent"] = parent
        try:
            return cls(kernel_id=kernel_id, kernel_spec=kernel_spec, **kwargs)
        except TypeError as exc:
            # An option the class does not take, from metadata.kernel_provisioner.config.
            raise ProvisioningError(
                f"kernel {kernel_spec.name!r}: provisioner {name!r} rejected its config "
                f"{sorted(config)}: {exc}"
            ) from exc
