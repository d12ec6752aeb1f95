"""Finding provisioners: :class:`KernelProvisionerFactory` (entry points), and the one
factory this process launches with (:func:`default_factory`)."""

from __future__ import annotations

import importlib
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from kernelkit._errors import ProvisionerNotFound, ProvisioningError
from kernelkit.provisioning._base import KernelProvisionerBase
from kernelkit.specs import (
    DEFAULT_PROVISIONER,
    JUPYTER_BRIDGE,
    JUPYTER_PROVISIONERS,
    KernelSpec,
    installed_provisioners,
    provisioner_choice,
)

if TYPE_CHECKING:
    import importlib.metadata

# importlib.metadata is imported on first use (it costs about as much as the rest of the
# manager's imports); the annotations name its EntryPoint through the importlib package,
# so they resolve at run time (typing.get_type_hints) once it is loaded.

__all__ = [
    "DEFAULT_PROVISIONER",
    "ENTRY_POINT_GROUP",
    "KernelProvisionerFactory",
    "default_factory",
]

#: The entry point group provisioners are registered under.
ENTRY_POINT_GROUP = "kernelkit.provisioners"


class KernelProvisionerFactory:
    """Creates the provisioner a kernel type or kernelspec asks for.

    A kernelspec picks one with ``metadata.kernel_provisioner = {"provisioner_name": ...,
    "config": {...}}``; without it, ``default_provisioner`` (``local-provisioner``). A
    launch plan may name one itself (see :meth:`create_provisioner_instance`).
    ``config`` becomes keyword arguments of the provisioner class. Provisioners are found
    through the ``kernelkit.provisioners`` entry point group (read once per factory).
    """

    def __init__(self, *, default_provisioner: str = DEFAULT_PROVISIONER) -> None:
        self.default_provisioner = default_provisioner
        self._entries: dict[str, importlib.metadata.EntryPoint] | None = None
        self._loaded: dict[str, type[KernelProvisionerBase]] = {}
        self._lock = threading.Lock()

    def get_provisioner_entries(self) -> dict[str, importlib.metadata.EntryPoint]:
        """Installed provisioners: name -> entry point."""
        with self._lock:
            if self._entries is None:
                # Imported here for start-up time: importlib.metadata costs about as much
                # as importing the manager, and only creating a provisioner needs it.
                from importlib.metadata import entry_points

                self._entries = {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}
            return dict(self._entries)

    def provisioner_name(self, kernel_spec: KernelSpec) -> str:
        """The provisioner ``kernel_spec`` asks for (the default if it names none).

        Raises:
            ProvisioningError: ``metadata.kernel_provisioner`` is malformed.
        """
        name, _ = provisioner_choice(kernel_spec, default=self.default_provisioner)
        return name

    def is_provisioner_available(self, kernel_spec: KernelSpec) -> bool:
        """True when the provisioner ``kernel_spec`` asks for is installed."""
        try:
            name = self.provisioner_name(kernel_spec)
        except ProvisioningError:
            return False
        entries = self.get_provisioner_entries()
        if name in entries:
            return True
        return JUPYTER_BRIDGE in entries and name in installed_provisioners(JUPYTER_PROVISIONERS)

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
        self,
        kernel_id: str,
        kernel_spec: KernelSpec,
        *,
        parent: object | None = None,
        provisioner_name: str | None = None,
        config: Mapping[str, Any] | None = None,
    ) -> KernelProvisionerBase:
        """A new provisioner for one launch of ``kernel_spec``.

        ``provisioner_name`` and ``config`` name the provisioner and its options (what a
        :class:`~kernelkit.discovery.LaunchPlan` says); without them, the spec's
        ``metadata.kernel_provisioner`` decides. ``parent`` is passed on only when given
        (for provisioners that are traitlets ``Configurable``\\ s).

        Raises:
            ProvisionerNotFound: no provisioner by that name is installed (the error
                lists the installed ones).
            ProvisioningError: the provisioner fails to load, is not a provisioner, or
                rejects its config.
        """
        if provisioner_name is None:
            name, chosen = provisioner_choice(kernel_spec, default=self.default_provisioner)
            if config is None:
                config = chosen
        else:
            name = provisioner_name
        if name not in self.get_provisioner_entries() and name in installed_provisioners(
            JUPYTER_PROVISIONERS
        ):
            # A jupyter_client provisioner: kernelkit.jupyter's bridge runs it.
            config = {"jupyter_provisioner": name, "jupyter_config": dict(config or {})}
            name = JUPYTER_BRIDGE
        cls = self._load(name, kernel_spec)
        kwargs: dict[str, Any] = dict(config or {})
        if parent is not None:
            kwargs["parent"] = parent
        try:
            return cls(kernel_id=kernel_id, kernel_spec=kernel_spec, **kwargs)
        except TypeError as exc:
            # An option the class does not take, from the plan or the spec's metadata.
            raise ProvisioningError(
                f"kernel {kernel_spec.name!r}: provisioner {name!r} rejected its config "
                f"{sorted(config or {})}: {exc}"
            ) from exc


_default: KernelProvisionerFactory | None = None
_default_lock = threading.Lock()


def default_factory() -> KernelProvisionerFactory:
    """The factory of this process (it reads the provisioner entry points once); every
    manager uses it unless given another."""
    global _default
    with _default_lock:
        if _default is None:
            _default = KernelProvisionerFactory()
        return _default
