"""``python -m kernelkit.nanny``: the supervisor beside one kernel (see ``_server``)."""

import sys

from kernelkit.nanny._server import main

sys.exit(main())
