"""KernelFinder.prepare: an id or kernel type resolved to its LaunchPlan (provisioner and
config, kernelspec, activated environment). Filesystem layouts only: nothing is launched."""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path

import pytest

from kernelkit import DiscoveryError, KernelSpecError, NoSuchKernel, ProvisioningError
from kernelkit.discovery import (
    EnvProvider,
    KernelFinder,
    KernelProvider,
    KernelType,
    LaunchPlan,
    SpecProvider,
    plan_launch,
)
from kernelkit.envs import Activator, EnvLocations
from kernelkit.specs import load_kernel_spec
from tests.envs.layouts import python_spec, write_conda, write_spec, write_venv


@pytest.fixture
def finder(tmp_path: Path) -> KernelFinder:
    """A plain spec, a broken one, a venv with a spec, a conda prefix whose kernel's
    program is on PATH only once activated, and a venv whose interpreter is gone."""
    kernels = tmp_path / "kernels"
    write_spec(kernels, "shell", {"argv": ["/bin/sh", "{connection_file}"], "display_name": "Sh"})
    write_spec(kernels, "garbled", "{nope")
    workon = tmp_path / "workon"
    write_venv(workon / "proj", ipykernel=True, spec=True)
    write_conda(tmp_path / "conda" / "kr", kernel="kkr")
    write_venv(workon / "gone", ipykernel=True, spec=True)
    for python in (workon / "gone" / "bin").iterdir():
        python.unlink()
    activator = Activator(cache_dir=None)
    return KernelFinder(
        {
            "spec": SpecProvider([kernels], activator=activator),
            "env": EnvProvider(
                EnvLocations(
                    virtualenvwrapper_dirs=(workon,), conda_envs_dirs=(tmp_path / "conda",)
                ),
                activator=activator,
            ),
        }
    )


def _id(finder: KernelFinder, prefix: str) -> str:
    (found,) = [k.id for k in finder.find() if k.id.startswith(prefix)]
    return found


def test_a_plain_spec_gets_this_process_environment_and_the_callers_on_top(
    finder: KernelFinder, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KK_BASE", "base")
    plan = finder.prepare("shell", env={"KK_EXTRA": "1"})  # a bare name finds spec/shell
    assert isinstance(plan, LaunchPlan)
    assert plan.id == "spec/shell"
    assert plan.environment is None
    assert plan.spec.argv == ("/bin/sh", "{connection_file}")
    assert plan.env["KK_BASE"] == "base"
    assert plan.env["KK_EXTRA"] == "1"
    assert plan.env["PATH"] == os.environ["PATH"]


def test_an_environment_kernel_gets_its_environment_activated(
    finder: KernelFinder, tmp_path: Path
) -> None:
    prefix = tmp_path / "workon" / "proj"
    plan = finder.prepare(_id(finder, "env/proj-"))
    assert plan.environment is not None
    assert plan.environment.prefix == prefix
    assert plan.env["VIRTUAL_ENV"] == str(prefix)
    assert plan.env["PATH"].split(os.pathsep)[0] == str(prefix / "bin")
    assert plan.spec.resource_dir == prefix / "share" / "jupyter" / "kernels" / "python3"
    assert plan.spec.healthy


def test_a_program_on_the_environments_path_is_no_problem_in_the_plan(
    finder: KernelFinder, tmp_path: Path
) -> None:
    kernel = finder.get(_id(finder, "env/kr-"))
    assert kernel.spec is not None
    assert kernel.spec.problems  # not on this process's PATH ...
    assert kernel.healthy  # ... but on the environment's
    plan = finder.prepare(kernel.id)
    assert plan.spec.problems == ()
    assert plan.spec.argv[0] == "kkr-kernel"
    prefix = tmp_path / "conda" / "kr"
    assert plan.env["PATH"].split(os.pathsep)[0] == str(prefix / "bin")
    assert plan.env["CONDA_PREFIX"] == str(prefix)


def test_an_unknown_id_lists_the_ids(finder: KernelFinder) -> None:
    with pytest.raises(NoSuchKernel, match="no kernel named 'env/nope'") as info:
        finder.prepare("env/nope")
    assert "spec/shell" in info.value.available


@pytest.mark.parametrize("which", ["spec/garbled", "env/gone-"])
def test_a_broken_kernel_has_no_plan_and_says_why(finder: KernelFinder, which: str) -> None:
    type_id = which if not which.endswith("-") else _id(finder, which)
    with pytest.raises(KernelSpecError, match="is broken") as info:
        finder.prepare(type_id)
    assert type_id in str(info.value)
    assert type(info.value) is KernelSpecError  # not NoSuchKernel: it exists


def test_a_kernel_type_without_a_spec_cannot_be_prepared() -> None:
    class NoSpec(KernelProvider):
        def find_kernels(self) -> Iterable[KernelType]:
            return [KernelType("x", "X", "python", problems=("the environment is gone",))]

    with pytest.raises(DiscoveryError, match="cannot launch nospec/x: the environment is gone"):
        KernelFinder({"nospec": NoSpec()}).prepare("nospec/x")


def _spec_type(tmp_path: Path) -> KernelType:
    directory = write_spec(tmp_path / "k", "p", python_spec())
    return KernelType("p", "P", "python", source=directory, spec=load_kernel_spec(directory))


def test_a_plan_names_the_local_provisioner_by_default(tmp_path: Path) -> None:
    kernel = _spec_type(tmp_path)
    plan = plan_launch(kernel)
    assert plan.provisioner_name == "local-provisioner"
    assert plan.provisioner_config == {}


def test_a_plan_names_the_provisioner_the_spec_asks_for(tmp_path: Path) -> None:
    chosen = {"provisioner_name": "kk-other", "config": {"colour": "red"}}
    directory = write_spec(
        tmp_path / "k", "p", {**python_spec(), "metadata": {"kernel_provisioner": chosen}}
    )
    kernel = KernelType("p", "P", "python", source=directory, spec=load_kernel_spec(directory))
    plan = plan_launch(kernel)
    assert (plan.provisioner_name, dict(plan.provisioner_config)) == ("kk-other", {"colour": "red"})


def test_a_malformed_provisioner_choice_says_what_is_wrong(tmp_path: Path) -> None:
    directory = write_spec(
        tmp_path / "k", "p", {**python_spec(), "metadata": {"kernel_provisioner": "local"}}
    )
    kernel = KernelType("p", "P", "python", source=directory, spec=load_kernel_spec(directory))
    with pytest.raises(ProvisioningError, match="kernel_provisioner must be an object"):
        plan_launch(kernel)


def test_a_provider_of_another_kind_names_its_provisioner(tmp_path: Path) -> None:
    kernel = _spec_type(tmp_path)

    class Remote(KernelProvider):
        def find_kernels(self) -> Iterable[KernelType]:
            return [kernel]

        def prepare(self, kernel_type: KernelType) -> LaunchPlan:
            plan = plan_launch(kernel_type)
            return replace(plan, provisioner_name="kk-remote", provisioner_config={"host": "h"})

    finder = KernelFinder({"remote": Remote()})
    plan = finder.prepare("remote/p", env={"KK_X": "1"})
    assert plan.provisioner_name == "kk-remote"
    assert plan.provisioner_config == {"host": "h"}
    assert plan.env["KK_X"] == "1"
    # a KernelType from the listing prepares the same way
    assert finder.prepare(finder.get("remote/p")).provisioner_name == "kk-remote"


def test_a_kernel_type_not_listed_by_a_provider_gets_the_default_plan(tmp_path: Path) -> None:
    kernel = _spec_type(tmp_path)
    plan = KernelFinder({}).prepare(kernel)
    assert plan.kernel_type is kernel
    assert plan.provisioner_name == "local-provisioner"


def test_a_plan_naming_no_provisioner_is_a_discovery_error(tmp_path: Path) -> None:
    kernel = _spec_type(tmp_path)

    class Nameless(KernelProvider):
        def find_kernels(self) -> Iterable[KernelType]:
            return [kernel]

        def prepare(self, kernel_type: KernelType) -> LaunchPlan:
            return replace(plan_launch(kernel_type), provisioner_name="")

    with pytest.raises(DiscoveryError, match="naming no provisioner"):
        KernelFinder({"nameless": Nameless()}).prepare("nameless/p")


@pytest.mark.parametrize("junk", [None, "", 3])
def test_preparing_something_that_is_not_a_kernel_says_what_is(junk: object) -> None:
    with pytest.raises(DiscoveryError, match=r"kernel type id .* or a KernelType"):
        KernelFinder({}).prepare(junk)  # type: ignore[arg-type]


def test_a_duck_typed_provider_gets_the_default_plan(tmp_path: Path) -> None:
    kernel = _spec_type(tmp_path)

    class Duck:
        def find_kernels(self) -> Iterable[KernelType]:
            return [kernel]

    plan = KernelFinder({"duck": Duck()}).prepare("duck/p")  # type: ignore[dict-item]
    assert plan.spec == kernel.spec
    assert plan.id == "duck/p"


def test_a_provider_preparing_junk_is_a_discovery_error(tmp_path: Path) -> None:
    kernel = _spec_type(tmp_path)

    class Junk(KernelProvider):
        def find_kernels(self) -> Iterable[KernelType]:
            return [kernel]

        def prepare(self, kernel_type: KernelType) -> LaunchPlan:
            return "not a plan"  # type: ignore[return-value]

    with pytest.raises(DiscoveryError, match="prepared a str, not a LaunchPlan"):
        KernelFinder({"junk": Junk()}).prepare("junk/p")
