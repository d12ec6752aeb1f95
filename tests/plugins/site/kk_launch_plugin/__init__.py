"""A provider of a new kind and the provisioner it names: the pair a remote server, SSH
host or sandbox plugin would be, reduced to what proves the plumbing.

``PlannedProvider`` lists one kernel type (``kk-launch/fake``: the fast fake kernel of the
manager tests) whose plan names the provisioner ``kk-test-provisioner`` with a
``greeting`` in its config. ``RecordingProvisioner`` is a local provisioner that takes
that config, records each launch in ``LAUNCHES`` and hands the greeting to the kernel as
``KK_PROVISIONED_BY``, so a test can see it ran with the plan's configuration.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from kernelkit.discovery import KernelProvider, KernelType, LaunchPlan, plan_launch
from kernelkit.provisioning import LaunchParams, LocalProvisioner
from kernelkit.specs import KernelSpec
from kernelkit.testing import fake_kernel_argv

GREETING = "hello from the plan"
#: (kernel id, greeting) of every launch by RecordingProvisioner, in order.
LAUNCHES: list[tuple[str, str]] = []


class PlannedProvider(KernelProvider):
    def find_kernels(self) -> list[KernelType]:
        spec = KernelSpec(
            name="fake",
            resource_dir=Path(__file__).resolve().parent,
            argv=fake_kernel_argv(),
            display_name="Fake (planned)",
            language="fake",
            metadata={"kernelkit": {"ports": "write-back"}},
        )
        return [KernelType("fake", spec.display_name, "fake", spec=spec)]

    def prepare(self, kernel_type: KernelType) -> LaunchPlan:
        return replace(
            plan_launch(kernel_type),
            provisioner_name="kk-test-provisioner",
            provisioner_config={"greeting": GREETING},
        )


class RecordingProvisioner(LocalProvisioner):
    def __init__(self, *, greeting: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.greeting = greeting

    async def pre_launch(
        self,
        *,
        env: Mapping[str, str] | None = None,
        inherit_env: bool = True,
        cwd: str | os.PathLike[str] | None = None,
        extra_arguments: Sequence[str] = (),
    ) -> LaunchParams:
        params = await super().pre_launch(
            env=env, inherit_env=inherit_env, cwd=cwd, extra_arguments=extra_arguments
        )
        LAUNCHES.append((self.kernel_id, self.greeting))
        return replace(params, env={**params.env, "KK_PROVISIONED_BY": self.greeting})
