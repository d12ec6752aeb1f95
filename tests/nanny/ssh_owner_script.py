"""An owner for the SSH tests: ``python -m tests.nanny.ssh_owner_script OUT``.

Starts the registered host ``second``'s python3 kernel (``KERNELKIT_HOSTS_DIR`` names the
registry) under a nanny there, with a short owner grace. Before the start it writes its
kernel id and ssh control socket to OUT (JSON), then waits to be killed.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys

from kernelkit.nanny import SSHProvisioner
from kernelkit.provisioning import launch_provisioner
from tests.nanny.helpers import nanny_spec


def _write(path: str, record: dict[str, str]) -> None:
    with open(path + ".tmp", "w") as f:
        f.write(json.dumps(record))
    os.rename(path + ".tmp", path)  # atomic: the test never reads half a record


async def main(out: str) -> None:
    kernel_id = os.urandom(8).hex()
    p = SSHProvisioner(
        kernel_id=kernel_id, kernel_spec=nanny_spec(), host="second", owner_grace=0.5
    )
    _write(out, {"kernel_id": kernel_id, "ctl_sock": p._ctl_path()})
    await launch_provisioner(p)
    signal.pause()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
