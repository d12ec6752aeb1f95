"""KernelFinder: isolation and time limits, ordering, duplicates, cache, lookup, plugins."""

from __future__ import annotations

import dataclasses
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from traitlets.config import Config, LoggingConfigurable

from kernelkit import DiscoveryError, NoSuchKernel
from kernelkit.discovery import (
    ORIGIN_INTERPRETER,
    FindResult,
    KernelFinder,
    KernelProvider,
    KernelType,
    SpecProvider,
    resolve_duplicates,
)
from kernelkit.discovery._finder import _stamped
from kernelkit.envs import inspect_environment
from kernelkit.specs import KernelSpec, load_kernel_spec
from tests.envs.layouts import python_spec, write_spec, write_venv
from tests.plugins.site_dir import (
    plugins_installed,
    rearm_hanging_provider,
    release_hanging_provider,
)


def _kt(name: str, **kw: object) -> KernelType:
    return KernelType(name=name, display_name=name.title(), language="python", **kw)  # type: ignore[arg-type]


class Static(KernelProvider):
    def __init__(self, *names: str, watched: list[Path] | None = None) -> None:
        self.names = names
        self.calls = 0
        self._watched = watched

    def find_kernels(self) -> list[KernelType]:
        self.calls += 1
        return [_kt(n) for n in self.names]

    def watched_paths(self) -> list[Path] | None:
        return self._watched


class Raises(KernelProvider):
    def find_kernels(self) -> list[KernelType]:
        raise OSError("the registry is down")


class Hangs(KernelProvider):
    def __init__(self) -> None:
        self.release = threading.Event()
        self.calls = 0

    def find_kernels(self) -> list[KernelType]:
        self.calls += 1
        self.release.wait(30)
        return [_kt("late")]


@pytest.fixture
def hangs() -> Iterator[Hangs]:
    provider = Hangs()
    yield provider
    provider.release.set()


def test_kernels_come_in_provider_order_with_ids(tmp_path: Path) -> None:
    finder = KernelFinder(
        {"zeta": Static("z"), "env": Static("e"), "alpha": Static("a"), "spec": Static("s")}
    )
    result = finder.find()
    assert [k.id for k in result] == ["spec/s", "env/e", "alpha/a", "zeta/z"]
    assert finder.provider_names == ["spec", "env", "alpha", "zeta"]
    assert result.problems == ()


def test_a_raising_provider_is_reported_and_hides_nothing() -> None:
    result = KernelFinder({"ok": Static("a"), "bad": Raises()}).find()
    assert [k.id for k in result] == ["ok/a"]
    assert len(result.problems) == 1
    assert result.problems[0].provider == "bad"
    assert "raised OSError: the registry is down" in result.problems[0].reason


def test_a_hanging_provider_costs_at_most_the_time_limit(hangs: Hangs) -> None:
    finder = KernelFinder({"ok": Static("a"), "slow": hangs}, time_limit=0.3)
    started = time.monotonic()
    result = finder.find()
    assert time.monotonic() - started < 2
    assert [k.id for k in result] == ["ok/a"]
    assert "did not answer within 0.3 s" in result.problems[0].reason
    # asked again while still hung: no second thread, no second wait
    started = time.monotonic()
    again = finder.find()
    assert time.monotonic() - started < 0.25
    assert hangs.calls == 1
    assert "still listing" in again.problems[0].reason
    # once it answers, its kernels show up
    hangs.release.set()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        result = finder.find()
        if any(k.id == "slow/late" for k in result):
            break
        time.sleep(0.01)
    assert [k.id for k in result] == ["ok/a", "slow/late"]


def test_a_kernelspec_is_found_without_asking_the_other_providers(
    hangs: Hangs, tmp_path: Path
) -> None:
    write_spec(tmp_path / "kernels", "py", python_spec())
    others = Static("a")
    finder = KernelFinder(
        {"spec": SpecProvider([tmp_path / "kernels"]), "other": others, "slow": hangs},
        time_limit=30,
    )
    started = time.monotonic()
    assert finder.get("py").id == "spec/py"  # a bare name that is a kernelspec
    assert finder.get("spec/py").id == "spec/py"
    assert finder.prepare("py").spec.name == "py"
    assert time.monotonic() - started < 10  # not the 30 s the hung provider would cost
    assert (hangs.calls, others.calls) == (0, 0)
    assert [k.id for k in finder.find(providers=("other",))] == ["other/a"]
    assert hangs.calls == 0


def test_ids_that_are_not_kernelspecs_ask_every_provider(tmp_path: Path) -> None:
    write_spec(tmp_path / "kernels", "py", python_spec())
    finder = KernelFinder({"spec": SpecProvider([tmp_path / "kernels"]), "o": Static("a")})
    assert finder.get("a").id == "o/a"  # a bare name: not a kernelspec, the only "a"
    with pytest.raises(NoSuchKernel) as info:
        finder.get("spec/nope")
    assert set(info.value.available) == {"spec/py", "o/a"}  # the full listing's ids


def test_a_hung_provider_listed_first_does_not_starve_the_next(hangs: Hangs) -> None:
    # providers start one after another while each is quick; a slow one gets company
    finder = KernelFinder({"a-slow": hangs, "b-ok": Static("b")}, time_limit=0.4)
    started = time.monotonic()
    result = finder.find()
    assert time.monotonic() - started < 2
    assert [k.id for k in result] == ["b-ok/b"]
    assert [p.provider for p in result.problems] == ["a-slow"]


def test_junk_and_duplicate_names_from_a_provider_are_reported() -> None:
    class Junk(KernelProvider):
        def find_kernels(self) -> list[object]:  # type: ignore[override]
            return [_kt("a"), "not a kernel type", _kt("a")]

    result = KernelFinder({"junk": Junk()}).find()
    assert [k.id for k in result] == ["junk/a"]
    reasons = sorted(p.reason for p in result.problems)
    assert reasons == ["yielded a str, not a KernelType", "yielded two kernel types named 'a'"]


def test_a_listing_is_cached_while_the_paths_it_read_are_unchanged(tmp_path: Path) -> None:
    watched = tmp_path / "watched"
    watched.mkdir()
    old = time.time() - 60  # older than the racy window
    os.utime(watched, (old, old))
    cached = Static("a", watched=[watched, tmp_path / "not-yet"])
    uncached = Static("b")
    finder = KernelFinder({"c": cached, "u": uncached})
    finder.find()
    finder.find()
    assert cached.calls == 1
    assert uncached.calls == 2  # no watched paths: asked every time
    (watched / "new").mkdir()  # changes the directory's mtime
    os.utime(watched, (old + 1, old + 1))
    finder.find()
    assert cached.calls == 2
    (tmp_path / "not-yet").mkdir()  # a path appearing counts as a change
    finder.find()
    assert cached.calls == 3
    finder.refresh()
    assert cached.calls == 4


def test_a_recently_modified_path_is_not_trusted_for_caching(tmp_path: Path) -> None:
    provider = Static("a", watched=[tmp_path])  # tmp_path was just created
    finder = KernelFinder({"p": provider})
    finder.find()
    finder.find()
    assert provider.calls == 2


def test_lookup_by_id_alias_and_bare_name() -> None:
    finder = KernelFinder({"spec": Static("python3"), "other": Static("julia", "python3")})
    result = finder.find()
    assert result.get("other/julia").id == "other/julia"
    assert result.get("python3").id == "spec/python3"  # spec/<name> first
    assert result.get("julia").id == "other/julia"  # the only one with that name
    with pytest.raises(NoSuchKernel) as info:
        finder.get("nope/x")
    assert "spec/python3" in str(info.value)
    assert isinstance(info.value, LookupError)
    with pytest.raises(DiscoveryError, match="no kernel provider named 'nope'; installed: spec"):
        finder.provider("nope")


def test_same_spec_directory_reached_twice_is_listed_once(tmp_path: Path) -> None:
    kernels = tmp_path / "share" / "jupyter" / "kernels"
    write_spec(kernels, "python3", python_spec())
    link = tmp_path / "linked-kernels"
    link.symlink_to(kernels)
    finder = KernelFinder({"spec": SpecProvider([kernels]), "mirror": SpecProvider([link])})
    result = finder.find()
    assert [k.id for k in result] == ["spec/python3"]
    assert result.get("mirror/python3").id == "spec/python3"
    assert result.kernels[0].aliases == ("mirror/python3",)


def test_a_spec_directory_linked_under_another_name_is_listed_once(tmp_path: Path) -> None:
    kernels = tmp_path / "kernels"
    write_spec(kernels, "python3", python_spec())
    write_spec(kernels, "copy", python_spec())  # same contents, its own directory
    (kernels / "py").symlink_to(kernels / "python3")
    result = KernelFinder({"spec": SpecProvider([kernels])}).find()
    assert [k.id for k in result] == ["spec/copy", "spec/py"]  # first in sorted order
    assert result.get("spec/python3").id == "spec/py"


def test_stamping_the_provider_keeps_every_other_field(tmp_path: Path) -> None:
    env = inspect_environment(write_venv(tmp_path / "env", ipykernel=True))
    directory = write_spec(tmp_path / "k", "p", python_spec())
    values: dict[str, object] = {
        "name": "p",
        "display_name": "P",
        "language": "python",
        "provider": "",
        "origin": ORIGIN_INTERPRETER,
        "source": directory,
        "metadata": {"a": 1},
        "problems": ("x",),
        "spec": load_kernel_spec(directory),
        "environment": env,
        "aliases": ("o/p",),
    }
    # every field is set above: a new field must be added here (and is then checked)
    assert set(values) == {f.name for f in dataclasses.fields(KernelType)}
    kernel = KernelType(**values)  # type: ignore[arg-type]
    assert _stamped(kernel, "mine") == dataclasses.replace(kernel, provider="mine")
    assert _stamped(kernel, "") is kernel


def test_an_unchanged_listing_gives_the_same_result(tmp_path: Path) -> None:
    watched = tmp_path / "watched"
    watched.mkdir()
    old = time.time() - 60
    os.utime(watched, (old, old))
    finder = KernelFinder({"c": Static("a", watched=[watched])})
    first = finder.find()
    assert finder.find() is first  # nothing re-listed, nothing re-resolved
    os.utime(watched, (old + 1, old + 1))
    assert finder.find() is not first


def test_an_interpreter_already_started_by_a_spec_is_listed_once(tmp_path: Path) -> None:
    env = inspect_environment(write_venv(tmp_path / "env", ipykernel=True))
    assert env is not None
    global_kernels = tmp_path / "global"
    write_spec(
        global_kernels,
        "myenv",
        {
            "argv": [str(env.interpreter), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
            "display_name": "My env",
            "language": "python",
        },
    )
    spec_type = KernelType(
        name="myenv",
        display_name="My env",
        language="python",
        provider="spec",
        source=global_kernels / "myenv",
        spec=load_kernel_spec(global_kernels / "myenv"),
    )
    interpreter = KernelType(
        name=f"{env.id}/python3",
        display_name="Python",
        language="python",
        provider="env",
        origin=ORIGIN_INTERPRETER,
        source=env.prefix,
        environment=env,
        spec=KernelSpec(
            name="python3",
            resource_dir=env.prefix,
            argv=(str(env.interpreter), "-m", "ipykernel_launcher", "-f", "{connection_file}"),
            display_name="Python",
            language="python",
        ),
    )
    other_env = inspect_environment(write_venv(tmp_path / "other", ipykernel=True))
    assert other_env is not None
    unrelated = KernelType(
        name=f"{other_env.id}/python3",
        display_name="Other",
        language="python",
        provider="env",
        origin=ORIGIN_INTERPRETER,
        source=other_env.prefix,
        environment=other_env,
        spec=interpreter.spec,
    )
    kept = resolve_duplicates([spec_type, interpreter, unrelated])
    assert [k.id for k in kept] == ["spec/myenv", unrelated.id]
    assert kept[0].aliases == (interpreter.id,)


def test_two_specs_running_the_same_interpreter_are_both_kept(tmp_path: Path) -> None:
    kernels = tmp_path / "kernels"
    for name in ("py", "py-debug"):
        write_spec(kernels, name, python_spec(name))
    result = KernelFinder({"spec": SpecProvider([kernels])}).find()
    assert [k.id for k in result] == ["spec/py", "spec/py-debug"]


def test_a_provider_can_be_a_traitlets_logging_configurable() -> None:
    class Configured(KernelProvider, LoggingConfigurable):
        def find_kernels(self) -> list[KernelType]:
            return [_kt("c")]

    provider = Configured(config=Config())
    assert provider.log is not None
    assert [k.id for k in KernelFinder({"cfg": provider}).find()] == ["cfg/c"]


def test_a_duck_typed_provider_works_too() -> None:
    class Duck:
        def find_kernels(self) -> list[KernelType]:
            return [_kt("quack")]

    result = KernelFinder({"duck": Duck()}).find()  # type: ignore[dict-item]
    assert [k.id for k in result] == ["duck/quack"]


def test_find_result_views() -> None:
    result = FindResult((_kt("a"), _kt("b", problems=("bad",))))
    assert [k.name for k in result.healthy] == ["a"]
    assert [k.name for k in result.broken] == ["b"]
    assert len(result) == 2


def test_the_finder_loads_providers_from_entry_points_in_isolation(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KERNELKIT_CACHE_DIR", str(tmp_path))  # the entry-point cache
    with plugins_installed():
        rearm_hanging_provider()
        finder = KernelFinder(time_limit=1.0)
        started = time.monotonic()
        result = finder.find()
        elapsed = time.monotonic() - started
        release_hanging_provider()
    assert elapsed < 3
    names = finder.provider_names
    assert names[:2] == ["spec", "env"]
    assert {"kk-good", "kk-raises", "kk-hangs", "kk-missing"} <= set(names)
    good = result.get("kk-good/echo")
    assert good.display_name == "Echo (plugin)"
    assert [p.name for p in good.resource_files] == ["logo-svg.svg"]
    by_provider = {p.provider: p.reason for p in result.problems}
    assert "ConnectionRefusedError" in by_provider["kk-raises"]
    assert "did not answer within 1 s" in by_provider["kk-hangs"]
    assert "failed to load (kk_provider_not_installed:Provider)" in by_provider["kk-missing"]
    assert "ModuleNotFoundError" in by_provider["kk-missing"]


class Slow(KernelProvider):
    """Answers after ``seconds`` (a listing that takes a while, but answers)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.calls = 0

    def find_kernels(self) -> list[KernelType]:
        self.calls += 1
        time.sleep(self.seconds)
        return [_kt("late")]


def test_two_calls_at_once_share_one_listing_and_both_wait_for_it() -> None:
    # The second call used to report "still listing after 0.0 s" and leave the kernel out.
    slow = Slow(0.5)
    finder = KernelFinder({"slow": slow}, time_limit=30)
    results: list[list[str]] = []
    problems: list[object] = []

    def find() -> None:
        result = finder.find()
        results.append([k.id for k in result])
        problems.extend(result.problems)

    threads = [threading.Thread(target=find) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert results == [["slow/late"], ["slow/late"]]
    assert problems == []
    assert slow.calls == 1
