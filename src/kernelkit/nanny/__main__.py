"""``python -m kernelkit.nanny``: the supervisor beside one kernel (see ``_server``).

The kernel starts first (``_first``, ``_early``: a few imports); the rest of the nanny is
imported while it boots.
"""

import sys

from kernelkit.nanny._first import first_moment

first = first_moment()

from kernelkit.nanny._early import begin  # noqa: E402  (after the kernel's start, on purpose)

beginning = begin(first)

from kernelkit.nanny._server import main  # noqa: E402

sys.exit(main(beginning))
