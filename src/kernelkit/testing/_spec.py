"""A kernelspec that runs the fake kernel process (``python -m kernelkit.testing``)."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from kernelkit.specs import KernelSpec

__all__ = ["fake_kernel_argv", "fake_kernel_spec"]


def fake_kernel_argv(*options: str, python: str | None = None) -> tuple[str, ...]:
    """The command line of the fake kernel process, with ``{connection_file}`` and
    ``options`` (see ``python -m kernelkit.testing --help``)."""
    return (python or sys.executable, "-m", "kernelkit.testing", "{connection_file}", *options)


def fake_kernel_spec(
    *options: str,
    name: str = "fake",
    display_name: str | None = None,
    interrupt_mode: Literal["signal", "message"] = "signal",
    env: Mapping[str, str] | None = None,
    metadata: Mapping[str, Any] | None = None,
    resource_dir: Path | None = None,
    python: str | None = None,
) -> KernelSpec:
    """A :class:`~kernelkit.specs.KernelSpec` running the fake kernel with ``options``.

    It chooses its own ports (``metadata.kernelkit.ports`` is ``write-back``: ports of 0
    in the connection file are bound and written back, as ipykernel does); keys of
    ``metadata`` are added to that. ``python`` is the interpreter (default: this one),
    which must be able to import kernelkit.
    """
    meta: dict[str, Any] = {"kernelkit": {"ports": "write-back"}}
    meta.update(metadata or {})
    return KernelSpec(
        name=name,
        resource_dir=resource_dir or Path(__file__).parent,
        argv=fake_kernel_argv(*options, python=python),
        display_name=display_name or " ".join(("Fake kernel", *options)),
        language="fake",
        interrupt_mode=interrupt_mode,
        env=dict(env or {}),
        metadata=meta,
    )
