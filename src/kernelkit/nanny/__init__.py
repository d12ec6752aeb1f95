"""The nanny: a supervisor process beside each kernel (DESIGN.md, layer 6).

``python -m kernelkit.nanny`` launches one kernel, adopts everything it starts (child
subreaper), keeps its output, answers signed control requests and announces its death;
:class:`NannyProvisioner` (entry point ``nanny-provisioner``) runs kernels under one, and
:class:`AttachedKernel` (and the lower-level :class:`NannyControl`) control a kernel
from any process that has its connection file.
"""

from kernelkit.nanny._attached import AttachedKernel
from kernelkit.nanny._control import NannyControl
from kernelkit.nanny._provisioner import NannyProvisioner
from kernelkit.nanny._wire import ACTIONS, NannyConfig

__all__ = ["ACTIONS", "AttachedKernel", "NannyConfig", "NannyControl", "NannyProvisioner"]
