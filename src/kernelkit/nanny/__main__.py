"""``python -m kernelkit.nanny``: the supervisor beside one kernel (see ``_server``).

The kernel starts first (``_first``, ``_early``: a few imports); the rest of the nanny is
imported while it boots. The provisioners start it as ``python -c`` with
:data:`~kernelkit.nanny._first.NANNY_CODE`, which does the same without runpy.
"""

import sys

from kernelkit.nanny._first import run

sys.exit(run())
