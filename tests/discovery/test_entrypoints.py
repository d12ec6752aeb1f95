"""The on-disk cache of provider entry points, keyed by the sys.path directories."""

from __future__ import annotations

import json
import os
import posixpath
from pathlib import Path

import pytest

from kernelkit.discovery._entrypoints import load_entry_point, read_entry_points
from tests.plugins.site_dir import plugins_installed

GROUP = "kernelkit.providers"


def test_entry_points_are_cached_until_sys_path_changes(tmp_path: Path) -> None:
    first = read_entry_points(GROUP, cache_dir=tmp_path)
    assert ("env", "kernelkit.discovery:EnvProvider") in first
    assert ("spec", "kernelkit.discovery:SpecProvider") in first
    (cache,) = tmp_path.glob("entry-points-*.json")
    data = json.loads(cache.read_text())
    assert data["entries"] == [list(e) for e in first]
    # a cached answer is served as long as the key matches (proved by editing it)
    data["entries"].append(["from-cache", "x:y"])
    cache.write_text(json.dumps(data))
    assert ("from-cache", "x:y") in read_entry_points(GROUP, cache_dir=tmp_path)
    # installing a package (here: a new sys.path entry) invalidates it
    with plugins_installed():
        installed = dict(read_entry_points(GROUP, cache_dir=tmp_path))
    assert installed["kk-good"] == "kk_provider_good:GoodProvider"
    assert "from-cache" not in installed
    assert "kk-good" not in dict(read_entry_points(GROUP, cache_dir=tmp_path))


def test_a_garbled_or_unwritable_cache_only_costs_a_scan(tmp_path: Path) -> None:
    read_entry_points(GROUP, cache_dir=tmp_path)
    for cache in tmp_path.glob("entry-points-*.json"):
        cache.write_text("{garbled")
    assert dict(read_entry_points(GROUP, cache_dir=tmp_path))["spec"]
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    assert dict(read_entry_points(GROUP, cache_dir=blocker / "sub"))["env"]


def test_load_entry_point_resolves_module_and_attributes() -> None:
    assert load_entry_point("os.path:join") is posixpath.join
    assert load_entry_point("os:path.join [extra]") is posixpath.join
    assert load_entry_point("os") is os
    with pytest.raises(ModuleNotFoundError):
        load_entry_point("kk_no_such_module:x")
