"""A third-party kernel provider that is also a traitlets LoggingConfigurable."""

from __future__ import annotations

import sys
from pathlib import Path

from traitlets import Unicode
from traitlets.config import LoggingConfigurable

from kernelkit.discovery import KernelProvider, KernelType
from kernelkit.specs import KernelSpec

RESOURCES = Path(__file__).resolve().parent / "echo"


class GoodProvider(KernelProvider, LoggingConfigurable):
    label = Unicode("plugin", help="Shown in the display name.").tag(config=True)

    def find_kernels(self) -> list[KernelType]:
        spec = KernelSpec(
            name="echo",
            resource_dir=RESOURCES,
            argv=(sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"),
            display_name=f"Echo ({self.label})",
            language="python",
            env={"KK_FROM_PLUGIN": "yes"},
        )
        return [
            KernelType(
                name="echo",
                display_name=spec.display_name,
                language="python",
                source=RESOURCES,
                spec=spec,
            )
        ]
