"""Kernelspecs: the ``kernel.json`` model, Jupyter's search paths, scanning with health
checks, and install/remove (DESIGN.md, layer 2: no launching, no sockets).

Differences from jupyter_client's KernelSpecManager, on purpose:

- Only specs on disk are listed. jupyter_client adds a "native" ``python3`` spec for the
  running interpreter when ipykernel is importable and no ``python3`` directory exists;
  kernelkit never imports ipykernel, and the running interpreter's kernel is offered by
  the environments provider instead.
- A broken spec is returned with its ``problems`` (jupyter_client logs and drops it), and
  ``get_kernel_spec`` raises :class:`~kernelkit.KernelSpecError` listing them.
- Names differing only in case within one directory resolve to the first in sorted order
  (jupyter_client: whichever ``os.listdir`` returns last).
"""

from kernelkit._lazy import lazy_getattr

# Names load on first use: the nanny reads a KernelSpec (``_spec``) before it starts its
# kernel, without the scanning, paths and installing modules. The TYPE_CHECKING block is
# the table's mirror for type checkers.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from kernelkit.specs._check import connection_file_problem
    from kernelkit.specs._install import install_kernel_spec, remove_kernel_spec
    from kernelkit.specs._paths import (
        kernel_spec_dirs,
        prefix_kernels_dir,
        system_kernels_dir,
        user_kernels_dir,
    )
    from kernelkit.specs._provisioner import (
        DEFAULT_PROVISIONER,
        JUPYTER_BRIDGE,
        JUPYTER_PROVISIONERS,
        installed_provisioners,
        provisioner_choice,
        provisioner_problem,
    )
    from kernelkit.specs._scan import (
        check_kernel_json,
        find_kernel_specs,
        get_kernel_spec,
        is_valid_kernel_name,
        load_kernel_spec,
        scan_kernel_specs,
    )
    from kernelkit.specs._spec import KernelSpec, is_bare_python

_WHERE = {
    "connection_file_problem": "_check",
    "install_kernel_spec": "_install",
    "remove_kernel_spec": "_install",
    "kernel_spec_dirs": "_paths",
    "prefix_kernels_dir": "_paths",
    "system_kernels_dir": "_paths",
    "user_kernels_dir": "_paths",
    "DEFAULT_PROVISIONER": "_provisioner",
    "JUPYTER_BRIDGE": "_provisioner",
    "JUPYTER_PROVISIONERS": "_provisioner",
    "installed_provisioners": "_provisioner",
    "provisioner_choice": "_provisioner",
    "provisioner_problem": "_provisioner",
    "check_kernel_json": "_scan",
    "find_kernel_specs": "_scan",
    "get_kernel_spec": "_scan",
    "is_valid_kernel_name": "_scan",
    "load_kernel_spec": "_scan",
    "scan_kernel_specs": "_scan",
    "KernelSpec": "_spec",
    "is_bare_python": "_spec",
}


__getattr__ = lazy_getattr(__name__, _WHERE, globals())


__all__ = [
    "DEFAULT_PROVISIONER",
    "JUPYTER_BRIDGE",
    "JUPYTER_PROVISIONERS",
    "KernelSpec",
    "check_kernel_json",
    "connection_file_problem",
    "find_kernel_specs",
    "get_kernel_spec",
    "install_kernel_spec",
    "is_bare_python",
    "is_valid_kernel_name",
    "kernel_spec_dirs",
    "load_kernel_spec",
    "prefix_kernels_dir",
    "installed_provisioners",
    "provisioner_choice",
    "provisioner_problem",
    "remove_kernel_spec",
    "scan_kernel_specs",
    "system_kernels_dir",
    "user_kernels_dir",
]
