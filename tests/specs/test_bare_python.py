"""is_bare_python is written out by hand (no regular expression to compile while
listing): it must say what the expression it replaces says."""

from __future__ import annotations

import itertools
import re

from kernelkit.specs import is_bare_python

_RULE = re.compile(r"python(?:[23](?:\.\d+)?)?(?:w)?(?:\.exe)?", re.IGNORECASE)


def test_is_bare_python_matches_the_rule() -> None:
    heads = ["python", "PYTHON", "Python", "pyth", "py"]
    versions = ["", "2", "3", "4", "3.", "3.11", "2.7", "3.1a", "3.\u0661\u0661", "3.\u00b2"]
    versions += [".11", "311", "3.11.2"]
    ws = ["", "w", "W", "ww"]
    exes = ["", ".exe", ".EXE", ".exe.exe", "exe", ".ex"]
    extras = ["", "x", " ", "/"]
    checked = 0
    for head, version, w, exe, extra in itertools.product(heads, versions, ws, exes, extras):
        for arg in (head + version + w + exe + extra, extra + head + version + w + exe):
            assert is_bare_python(arg) == (_RULE.fullmatch(arg) is not None), arg
            checked += 1
    assert checked > 10_000
