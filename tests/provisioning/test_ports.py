"""The port-mode rule: which way a kernel's ports get chosen (pure, table-driven)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from kernelkit import KernelSpecError
from kernelkit.provisioning import PORT_MODES, choose_port_mode

IPYKERNEL = ["/env/bin/python", "-m", "ipykernel_launcher", "-f", "{connection_file}"]
XPYTHON = ["python3.11", "-m", "xpython_launcher", "-f", "{connection_file}"]
BASH = ["/env/bin/python", "-m", "bash_kernel", "-f", "{connection_file}"]
IR = ["R", "--slave", "-e", "IRkernel::main()", "--args", "{connection_file}"]


@pytest.mark.parametrize(
    ("argv", "metadata", "version", "transport", "override", "expected"),
    [
        # Explicit choices win, metadata before the provisioner option.
        (IR, {"kernelkit": {"ports": "handshake"}}, None, "tcp", None, "handshake"),
        (IR, {"kernelkit.ports": "write-back"}, None, "tcp", None, "write-back"),
        (IPYKERNEL, {"kernelkit": {"ports": "parent"}}, None, "tcp", "auto", "parent"),
        (IPYKERNEL, {}, None, "tcp", "parent", "parent"),
        # ipc endpoints are unique names: nothing to race for.
        (IPYKERNEL, {}, None, "ipc", None, "parent"),
        # The spec declares JEP 66.
        (IR, {}, "5.6", "tcp", None, "handshake"),
        (IR, {}, "5.10", "tcp", None, "handshake"),
        (IPYKERNEL, {}, "5.5", "tcp", None, "write-back"),  # ipykernel 7.4 claims 5.5
        # ipykernel anywhere in argv.
        (IPYKERNEL, {}, None, "tcp", None, "write-back"),
        (["python", "-m", "ipykernel", "-f", "x"], {}, None, "tcp", None, "write-back"),
        (["conda", "run", "python", "/x/ipykernel_launcher.py"], {}, None, "tcp", None,
         "write-back"),
        # Other Python kernels: let the kernel's behaviour answer.
        (XPYTHON, {}, None, "tcp", None, "auto"),
        (BASH, {}, None, "tcp", None, "auto"),
        (["pypy3", "-m", "k"], {}, None, "tcp", None, "auto"),
        (["C:\\py\\python.exe", "-m", "k"], {}, None, "tcp", None, "auto"),
        # Everything else: the last resort.
        (IR, {}, None, "tcp", None, "parent"),
        (["xcpp", "-f", "{connection_file}"], {}, "5.3", "tcp", None, "parent"),
        ([], {}, None, "tcp", None, "parent"),
        (IR, {}, "garbage", "tcp", None, "parent"),
    ],
)  # fmt: skip
def test_rule(
    argv: list[str],
    metadata: dict[str, Any],
    version: str | None,
    transport: str,
    override: str | None,
    expected: str,
) -> None:
    mode, reason = choose_port_mode(
        kernel_name="k",
        argv=argv,
        metadata=metadata,
        kernel_protocol_version=version,
        transport=transport,
        override=override,
    )
    assert mode == expected
    assert reason


@pytest.mark.parametrize(
    ("metadata", "override", "where"),
    [
        ({"kernelkit": {"ports": "random"}}, None, "metadata.kernelkit.ports"),
        ({"kernelkit.ports": 5}, None, "metadata.kernelkit.ports"),
        ({}, "writeback", "port_mode option"),
    ],
)
def test_bad_explicit_choice(metadata: dict[str, Any], override: str | None, where: str) -> None:
    with pytest.raises(KernelSpecError, match=f"kernel 'k': .*{where}.*use one of 'handshake'"):
        choose_port_mode(
            kernel_name="k",
            argv=IPYKERNEL,
            metadata=metadata,
            kernel_protocol_version=None,
            override=override,
        )


def test_modes() -> None:
    assert PORT_MODES == ("handshake", "write-back", "auto", "parent")


def test_reading_a_written_back_file(tmp_path: Path) -> None:
    from kernelkit.provisioning._portwait import ports_from_file

    path = tmp_path / "kernel.json"
    full = json.dumps({"shell_port": 1, "iopub_port": 2, "stdin_port": "3", "control_port": 4,
                       "hb_port": 5, "key": "k"})  # fmt: skip
    assert ports_from_file(path) is None  # not there (ipykernel unlinks, then re-creates)
    for partial in ("", full[: len(full) // 2], "[]", full.replace('"hb_port": 5', '"hb_port": 0')):
        path.write_text(partial)
        assert ports_from_file(path) is None
    path.write_text(full)
    assert ports_from_file(path) == {
        "shell_port": 1, "iopub_port": 2, "stdin_port": 3, "control_port": 4, "hb_port": 5,
    }  # fmt: skip
