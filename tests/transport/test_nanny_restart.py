"""Following a restart told by a nanny (``kernel_restarted``): pure."""

from __future__ import annotations

from kernelkit import ConnectionInfo
from kernelkit.transport import follow_restart


def test_a_restart_is_followed_on_this_side_s_address() -> None:
    info = ConnectionInfo(
        ip="10.0.0.2", shell_port=1, iopub_port=2, stdin_port=3, control_port=4, hb_port=5,
        key=b"k", nanny="tcp://10.0.0.2:9",
    )  # fmt: skip
    moved = {"connection": {"ip": "0.0.0.0", "shell_port": 11, "iopub_port": 12,
                            "stdin_port": 13, "control_port": 14, "hb_port": 15},
             "ports_changed": True}  # fmt: skip
    after = follow_restart(info, moved)
    assert (after.ip, after.shell_port, after.hb_port) == ("10.0.0.2", 11, 15)
    assert after.key == b"k"
    assert after.nanny == info.nanny
    # Same ports (the usual restart): nothing to follow, whatever the nanny's addresses.
    assert follow_restart(info, {**moved, "ports_changed": False}) is info
    assert follow_restart(info, {"connection": None}) is info
    bad = {"connection": {"shell_port": "x", "hb_port": True}, "ports_changed": True}
    assert follow_restart(info, bad) == info
