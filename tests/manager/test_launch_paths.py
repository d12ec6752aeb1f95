"""Every manager launches a kernel named by id or KernelType through the one launch path.

A provider of a new kind plugs in by naming its provisioner (tests/plugins/site's
``kk-launch`` provider and ``kk-test-provisioner``, installed as entry points): every
manager, async and blocking, launches its kernels with that provisioner and the plan's
configuration, and no manager knows about it.
"""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from kernelkit import DiscoveryError, ManagerError, NoSuchKernel, ProvisionerNotFound
from kernelkit.discovery import KernelFinder, KernelProvider, KernelType, LaunchPlan, plan_launch
from kernelkit.manager import (
    AsyncKernelManager,
    AsyncKernelPool,
    AsyncMultiKernelManager,
    KernelManager,
    KernelPool,
    MultiKernelManager,
)
from kernelkit.provisioning import KernelProvisionerBase, KernelProvisionerFactory
from tests.manager.fakes import fake_spec
from tests.plugins.site_dir import plugins_installed

KERNEL = "kk-launch/fake"


@pytest.fixture
def plugin() -> Iterator[ModuleType]:
    """The plugin pair installed; its module (its record of launches emptied)."""
    with plugins_installed():
        import kk_launch_plugin

        kk_launch_plugin.LAUNCHES.clear()
        yield kk_launch_plugin
        kk_launch_plugin.LAUNCHES.clear()


@pytest.fixture
def finder(plugin: ModuleType) -> KernelFinder:
    # Made while the plugins are installed: a finder reads the entry points once. The
    # kk-hangs plugin never answers: a short limit keeps each listing short.
    return KernelFinder(time_limit=0.5)


@pytest.fixture
def factory(plugin: ModuleType) -> KernelProvisionerFactory:
    return KernelProvisionerFactory()


def _environ(p: KernelProvisionerBase | None) -> dict[str, str]:
    pid = getattr(p, "pid", None)
    assert pid is not None
    raw = Path(f"/proc/{pid}/environ").read_bytes()
    return dict(item.split("=", 1) for item in raw.decode().split("\0") if "=" in item)


def _check_planned(plugin: ModuleType, p: KernelProvisionerBase | None, kernel_id: str) -> None:
    assert isinstance(p, plugin.RecordingProvisioner)
    assert p.greeting == plugin.GREETING  # the plan's config reached it
    assert (kernel_id, plugin.GREETING) in plugin.LAUNCHES
    assert _environ(p)["KK_PROVISIONED_BY"] == plugin.GREETING


async def test_async_kernel_manager(
    plugin: ModuleType, finder: KernelFinder, factory: KernelProvisionerFactory
) -> None:
    for km in (
        AsyncKernelManager(KERNEL, finder=finder, provisioner_factory=factory),
        AsyncKernelManager(
            kernel_type=finder.get(KERNEL), finder=finder, provisioner_factory=factory
        ),
    ):
        async with km, km.client() as kc:
            await kc.wait_for_ready(timeout=10)
            _check_planned(plugin, km.provisioner, km.kernel_id)
            assert km.kernel_name == KERNEL
            assert km.launch_plan is not None
            assert km.launch_plan.provisioner_name == "kk-test-provisioner"
            await km.restart_kernel(now=True)  # the plan is reused: one launch more
            await kc.wait_for_ready(timeout=10)
            assert plugin.LAUNCHES.count((km.kernel_id, plugin.GREETING)) == 2


def test_kernel_manager(
    plugin: ModuleType, finder: KernelFinder, factory: KernelProvisionerFactory
) -> None:
    with KernelManager(KERNEL, finder=finder, provisioner_factory=factory) as km:
        with km.client() as kc:
            kc.wait_for_ready(timeout=10)
        _check_planned(plugin, km.provisioner, km.kernel_id)
        assert km.kernel_type is not None
        assert km.kernel_type.id == KERNEL


async def test_async_multi_kernel_manager(
    plugin: ModuleType, finder: KernelFinder, factory: KernelProvisionerFactory
) -> None:
    async with AsyncMultiKernelManager(
        default_kernel_name=KERNEL, finder=finder, provisioner_factory=factory
    ) as mkm:
        ids = [
            await mkm.start_kernel(),
            await mkm.start_kernel(KERNEL),
            await mkm.start_kernel(kernel_type=finder.get(KERNEL)),
        ]
        for kernel_id in ids:
            _check_planned(plugin, mkm.get_kernel(kernel_id).provisioner, kernel_id)


def test_multi_kernel_manager(
    plugin: ModuleType, finder: KernelFinder, factory: KernelProvisionerFactory
) -> None:
    with MultiKernelManager(finder=finder, provisioner_factory=factory) as mkm:
        ids = [mkm.start_kernel(KERNEL), *mkm.start_kernels(2, kernel_type=finder.get(KERNEL))]
        for kernel_id in ids:
            _check_planned(plugin, mkm.get_kernel(kernel_id).provisioner, kernel_id)


async def test_async_kernel_pool(
    plugin: ModuleType, finder: KernelFinder, factory: KernelProvisionerFactory
) -> None:
    kernel_type = finder.get(KERNEL)
    async with AsyncKernelPool(
        KERNEL, size=1, finder=finder, provisioner_factory=factory, ready_timeout=10
    ) as pool:
        pool.set_size(kernel_type, 1)  # a KernelType and its id are one kind of kernel
        assert pool.size(KERNEL) == 1
        await pool.start(timeout=30)
        for kernel in (await pool.acquire(timeout=10), await pool.acquire(kernel_type)):
            async with kernel:
                _check_planned(plugin, kernel.manager.provisioner, kernel.kernel_id)


def test_kernel_pool(
    plugin: ModuleType, finder: KernelFinder, factory: KernelProvisionerFactory
) -> None:
    with (
        KernelPool(
            finder.get(KERNEL), size=1, finder=finder, provisioner_factory=factory, ready_timeout=10
        ) as pool,
        pool.acquire(timeout=30) as kernel,
    ):
        _check_planned(plugin, kernel.manager.provisioner, kernel.kernel_id)
        assert kernel.client.execute("result 42", timeout=10).content["status"] == "ok"


# ---------------------------------------------------------------------- what goes wrong


class _Provider(KernelProvider):
    def __init__(self, plan_provisioner: str = "local-provisioner") -> None:
        self._provisioner = plan_provisioner

    def find_kernels(self) -> list[KernelType]:
        return [
            KernelType("fake", "Fake", "fake", spec=fake_spec()),
            KernelType("broken", "Broken", "fake", problems=("the environment is gone",)),
        ]

    def prepare(self, kernel_type: KernelType) -> LaunchPlan:
        plan = plan_launch(kernel_type)
        return LaunchPlan(plan.kernel_type, plan.spec, plan.env, self._provisioner)


async def test_an_unknown_id_lists_close_ids_and_leaves_nothing() -> None:
    km = AsyncKernelManager("test/fakee", finder=KernelFinder({"test": _Provider()}))
    with pytest.raises(NoSuchKernel, match=r"'test/fakee' \(did you mean test/fake\?\)") as info:
        await km.start_kernel()
    assert "test/fake" in info.value.available
    assert km.state == "new"
    assert not km.has_kernel


async def test_a_broken_kernel_type_says_what_is_wrong() -> None:
    km = AsyncKernelManager("test/broken", finder=KernelFinder({"test": _Provider()}))
    with pytest.raises(DiscoveryError, match="cannot launch test/broken: the environment is gone"):
        await km.start_kernel()


async def test_a_plan_naming_a_missing_provisioner_lists_the_installed_ones() -> None:
    finder = KernelFinder({"test": _Provider("kk-nowhere")})
    async with AsyncMultiKernelManager(finder=finder) as mkm:
        with pytest.raises(ProvisionerNotFound, match=r"'kk-nowhere'.*local-provisioner"):
            await mkm.start_kernel("test/fake")
        assert mkm.list_kernel_ids() == []


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"kernel_name": 3}, "kernel_name is a kernelspec name"),
        ({"kernel_type": "test/fake"}, "kernel_type must be a KernelType"),
        ({"kernel_spec": "fake"}, "kernel_spec must be a KernelSpec"),
        (
            {"kernel_spec": fake_spec(), "kernel_type": KernelType("x", "X", "x")},
            "not both",
        ),
        (
            {"kernel_name": "spec/x", "kernel_type": KernelType("y", "Y", "y", provider="p")},
            "disagree",
        ),
    ],
)
def test_a_kernel_named_wrongly_is_a_manager_error(
    options: dict[str, object], message: str
) -> None:
    with pytest.raises(ManagerError, match=message):
        AsyncKernelManager(**options)  # type: ignore[arg-type]


def test_a_pool_of_something_that_is_not_a_kernel_says_what_a_kernel_is() -> None:
    with pytest.raises(ManagerError, match="kernel type id"):
        AsyncKernelPool(3.5)  # type: ignore[arg-type]


def test_the_blocking_faces_take_the_same_parameters() -> None:
    pairs = [
        (AsyncKernelManager.__init__, KernelManager.__init__),
        (AsyncKernelManager.start_kernel, KernelManager.start_kernel),
        (AsyncMultiKernelManager.__init__, MultiKernelManager.__init__),
        (AsyncMultiKernelManager.start_kernel, MultiKernelManager.start_kernel),
        (AsyncKernelPool.__init__, KernelPool.__init__),
    ]
    for async_fn, blocking_fn in pairs:
        a, b = inspect.signature(async_fn), inspect.signature(blocking_fn)
        assert list(a.parameters) == list(b.parameters), difflib.ndiff(
            list(a.parameters), list(b.parameters)
        )
        assert [p.default for p in a.parameters.values()] == [
            p.default for p in b.parameters.values()
        ]
