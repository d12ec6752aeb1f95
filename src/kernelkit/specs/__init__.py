"""Kernelspecs: the ``kernel.json`` model, Jupyter's search paths, scanning with health
checks, and install/remove (DESIGN.md, layer 2: no launching, no sockets)."""

from kernelkit.specs._install import install_kernel_spec, remove_kernel_spec
from kernelkit.specs._paths import (
    kernel_spec_dirs,
    prefix_kernels_dir,
    system_kernels_dir,
    user_kernels_dir,
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

__all__ = [
    "KernelSpec",
    "check_kernel_json",
    "find_kernel_specs",
    "get_kernel_spec",
    "install_kernel_spec",
    "is_bare_python",
    "is_valid_kernel_name",
    "kernel_spec_dirs",
    "load_kernel_spec",
    "prefix_kernels_dir",
    "remove_kernel_spec",
    "scan_kernel_specs",
    "system_kernels_dir",
    "user_kernels_dir",
]
