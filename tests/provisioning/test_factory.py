"""KernelProvisionerFactory (entry points) and the base class (plain, traitlets-friendly)."""

from __future__ import annotations

import pytest
from traitlets import Integer
from traitlets.config import LoggingConfigurable

from kernelkit import ProvisionerNotFound, ProvisioningError
from kernelkit.provisioning import (
    KernelProvisionerBase,
    KernelProvisionerFactory,
    LocalProvisioner,
)
from tests.provisioning.helpers import fake_spec


def test_local_provisioner_is_installed_and_the_default() -> None:
    factory = KernelProvisionerFactory()
    entries = factory.get_provisioner_entries()
    assert entries["local-provisioner"].value == "kernelkit.provisioning:LocalProvisioner"
    spec = fake_spec()
    assert factory.is_provisioner_available(spec)
    p = factory.create_provisioner_instance("kid", spec)
    assert type(p) is LocalProvisioner
    assert p.kernel_id == "kid"
    assert p.kernel_spec is spec
    assert not p.has_process


def test_spec_chooses_provisioner_and_config() -> None:
    spec = fake_spec(
        metadata={
            "kernel_provisioner": {
                "provisioner_name": "local-provisioner",
                "config": {"startup_timeout": 3, "port_mode": "parent"},
            }
        },
        ports=None,
    )
    p = KernelProvisionerFactory().create_provisioner_instance("kid", spec)
    assert isinstance(p, LocalProvisioner)
    assert p._startup_timeout == 3
    assert p._port_mode_option == "parent"


def test_interrupt_mode_comes_from_the_spec() -> None:
    factory = KernelProvisionerFactory()
    assert factory.create_provisioner_instance("a", fake_spec()).interrupt_mode == "signal"
    by_message = fake_spec(interrupt_mode="message")
    # The manager or client sends interrupt_request on control for this one.
    assert factory.create_provisioner_instance("b", by_message).interrupt_mode == "message"


def test_unknown_provisioner_lists_installed_ones() -> None:
    spec = fake_spec(metadata={"kernel_provisioner": {"provisioner_name": "docker"}})
    factory = KernelProvisionerFactory()
    assert not factory.is_provisioner_available(spec)
    with pytest.raises(ProvisionerNotFound, match=r"'docker'.*installed: .*local-provisioner"):
        factory.create_provisioner_instance("kid", spec)


@pytest.mark.parametrize(
    ("chosen", "message"),
    [
        ("local-provisioner", "must be an object"),
        ({"provisioner_name": 3}, "provisioner_name must be a non-empty string"),
        ({"provisioner_name": "local-provisioner", "config": [1]}, "config must be an object"),
    ],
)
def test_malformed_choice(chosen: object, message: str) -> None:
    spec = fake_spec(metadata={"kernel_provisioner": chosen})
    factory = KernelProvisionerFactory()
    assert not factory.is_provisioner_available(spec)
    pattern = rf"kernel 'fake': metadata\.kernel_provisioner.*{message}"
    with pytest.raises(ProvisioningError, match=pattern):
        factory.create_provisioner_instance("kid", spec)


def test_config_the_provisioner_does_not_take() -> None:
    spec = fake_spec(
        metadata={"kernel_provisioner": {"provisioner_name": "local-provisioner",
                                         "config": {"colour": "blue"}}}
    )  # fmt: skip
    with pytest.raises(ProvisioningError, match=r"rejected its config \['colour'\]"):
        KernelProvisionerFactory().create_provisioner_instance("kid", spec)


# ---------------------------------------------------------------- the base class


class TraitletsProvisioner(KernelProvisionerBase, LoggingConfigurable):
    """A third-party provisioner that is also a traitlets Configurable."""

    retries = Integer(1).tag(config=True)

    @property
    def has_process(self) -> bool:
        return False


class TraitletsFirst(LoggingConfigurable, LocalProvisioner):
    """The other base order: traitlets first in the MRO."""

    retries = Integer(1).tag(config=True)


def test_base_mixes_with_traitlets_configurable() -> None:
    parent = LoggingConfigurable()
    p = TraitletsProvisioner(kernel_id="k", kernel_spec=fake_spec(), parent=parent, retries=4)
    assert p.parent is parent
    assert p.retries == 4
    assert p.kernel_id == "k"
    assert not p.has_process
    assert p.get_shutdown_wait_time() == 5.0
    assert p.get_stable_start_time(recommended=3.0) == 3.0
    assert p.connection_file is None  # writes no file unless it says so


def test_local_provisioner_under_traitlets_first() -> None:
    p = TraitletsFirst(kernel_id="k", kernel_spec=fake_spec(), retries=2, startup_timeout=5)
    assert p.retries == 2
    assert p._startup_timeout == 5
    assert p.log is not None


async def test_required_methods_say_who_must_implement_them() -> None:
    p = TraitletsProvisioner(kernel_id="k", kernel_spec=fake_spec())
    with pytest.raises(NotImplementedError, match="TraitletsProvisioner must implement poll"):
        await p.poll()


async def test_base_provisioner_info_round_trip() -> None:
    p = TraitletsProvisioner(kernel_id="k", kernel_spec=fake_spec())
    assert await p.get_provisioner_info() == {"kernel_id": "k", "connection_info": None}
    q = TraitletsProvisioner(kernel_id="other", kernel_spec=fake_spec())
    await q.load_provisioner_info({"kernel_id": "k", "connection_info": None})
    assert q.kernel_id == "k"


async def test_base_pre_launch_formats_the_spec() -> None:
    p = TraitletsProvisioner(kernel_id="k", kernel_spec=fake_spec("writeback", env={"A": "1"}))
    params = await p.pre_launch(env={"B": "2"}, extra_arguments=["--extra"])
    assert params.cmd[-1] == "--extra"
    assert params.cmd[2].endswith("kernel-k.json")
    assert params.env["A"] == "1"
    assert params.env["B"] == "2"


async def test_base_pre_launch_with_a_complete_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("KK_LAUNCHER_ONLY", "1")
    p = TraitletsProvisioner(kernel_id="k", kernel_spec=fake_spec(env={"A": "${ONLY}-a"}))
    params = await p.pre_launch(env={"ONLY": "x"}, inherit_env=False)
    assert dict(params.env) == {"ONLY": "x", "A": "x-a"}
    params = await p.pre_launch(env={"ONLY": "x"})
    assert params.env["KK_LAUNCHER_ONLY"] == "1"
