"""The one launch sequence (launch_provisioner): pre_launch, launch_kernel, post_launch,
and on a failure in any of them (or a cancellation) stop and cleanup, nothing left."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence

import pytest

from kernelkit import ConnectionInfo, KernelStartError, ProvisioningError
from kernelkit.provisioning import (
    KernelProvisionerBase,
    KernelProvisionerFactory,
    LocalProvisioner,
    default_factory,
    launch_provisioner,
)
from tests.provisioning.helpers import fake_spec


class Recording(KernelProvisionerBase):
    """Records every call; ``fail`` names the step that raises, ``hang`` one that hangs."""

    def __init__(self, *, fail: str = "", hang: str = "", cleanup_fails: bool = False) -> None:
        super().__init__(kernel_id="k", kernel_spec=fake_spec())
        self.fail, self.hang, self.cleanup_fails = fail, hang, cleanup_fails
        self.calls: list[str] = []
        self.running = False
        self.hanging = asyncio.Event()

    async def _step(self, name: str) -> None:
        self.calls.append(name)
        if self.hang == name:
            self.hanging.set()
            await asyncio.Event().wait()
        if self.fail == name:
            raise KernelStartError(f"{name} failed", kernel_name="fake")

    @property
    def has_process(self) -> bool:
        return self.running

    async def poll(self) -> int | None:
        return None if self.running else 0

    async def wait(self) -> int | None:
        return 0

    async def send_signal(self, signum: int) -> None:
        pass

    async def kill(self, restart: bool = False) -> None:
        self.calls.append("kill")
        self.running = False

    async def terminate(self, restart: bool = False) -> None:
        self.calls.append("terminate")
        self.running = False

    async def pre_launch(
        self,
        *,
        env: Mapping[str, str] | None = None,
        inherit_env: bool = True,
        cwd: object = None,
        extra_arguments: Sequence[str] = (),
    ) -> object:  # type: ignore[override]
        params = await super().pre_launch(
            env=env, inherit_env=inherit_env, extra_arguments=extra_arguments
        )
        await self._step("pre_launch")
        return params

    async def launch_kernel(
        self, cmd: Sequence[str], *, env: Mapping[str, str] | None = None, cwd: str | None = None
    ) -> ConnectionInfo:
        self.running = True
        await self._step("launch_kernel")
        self.connection_info = ConnectionInfo(key=b"k")
        return self.connection_info

    async def post_launch(self) -> None:
        await self._step("post_launch")

    async def cleanup(self, restart: bool = False) -> None:
        self.calls.append(f"cleanup(restart={restart})")
        if self.cleanup_fails:
            raise ProvisioningError("cleanup failed")


async def test_a_launch_runs_the_three_steps_in_order() -> None:
    p = Recording()
    info = await launch_provisioner(p)
    assert info is p.connection_info
    assert p.calls == ["pre_launch", "launch_kernel", "post_launch"]


@pytest.mark.parametrize(
    ("step", "after"),
    [
        ("pre_launch", ["cleanup(restart=False)"]),
        ("launch_kernel", ["terminate", "kill", "cleanup(restart=False)"]),
        ("post_launch", ["terminate", "kill", "cleanup(restart=False)"]),
    ],
)
async def test_a_failure_in_any_step_stops_and_cleans_up(step: str, after: list[str]) -> None:
    p = Recording(fail=step)
    with pytest.raises(KernelStartError, match=f"{step} failed"):
        await launch_provisioner(p)
    assert p.calls[p.calls.index(step) + 1 :] == after
    assert not p.running


async def test_a_cancelled_launch_cleans_up_and_keeps_ports_on_restart() -> None:
    p = Recording(hang="post_launch")
    task = asyncio.ensure_future(launch_provisioner(p, restart=True))
    await p.hanging.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert p.calls[-3:] == ["terminate", "kill", "cleanup(restart=True)"]


async def test_a_failing_cleanup_is_logged_and_the_launch_error_raised(
    caplog: pytest.LogCaptureFixture,
) -> None:
    p = Recording(fail="pre_launch", cleanup_fails=True)
    with (
        caplog.at_level(logging.ERROR, "kernelkit.provisioning"),
        pytest.raises(KernelStartError, match="pre_launch failed"),
    ):
        await launch_provisioner(p)
    assert "cleaning up after a failed launch failed" in caplog.text


def test_one_default_factory_per_process() -> None:
    assert default_factory() is default_factory()
    assert isinstance(default_factory(), KernelProvisionerFactory)


def test_a_plan_may_name_the_provisioner_and_its_config() -> None:
    p = KernelProvisionerFactory().create_provisioner_instance(
        "k", fake_spec(), provisioner_name="local-provisioner", config={"startup_timeout": 7.0}
    )
    assert isinstance(p, LocalProvisioner)
