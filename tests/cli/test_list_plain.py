"""``kernelkit list`` written without rich where rich would print no styles: the same
text as rich prints, for awkward content at several widths; and rich where it is needed."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import pytest
from rich.console import Console

from kernelkit.cli._list_table import render_listing
from kernelkit.discovery import DiscoveryProblem, FindResult, KernelType

_RICH_ENV = ("TTY_COMPATIBLE", "FORCE_COLOR", "COLUMNS", "LINES", "JUPYTER_COLUMNS")


def _result(tmp_path: Path, *, tabs: bool = False) -> FindResult:
    kernels = tmp_path / "share" / "jupyter" / "kernels"
    long_word = "/very/long/path/" + "x" * 90
    kernels_list = [
        KernelType("python3", "Python 3 (ipykernel)", "python", "spec", source=kernels / "py"),
        KernelType(
            "a-rather-long-kernel-name-that-gets-a-line-of-its-own",
            "A display name long enough to be wrapped over several lines at narrow widths "
            "and then some more words",
            "a-language-longer-than-twelve",
            "spec",
            source=kernels / "long",
        ),
        KernelType(
            "broken",
            "Bell\x07 back\x08space\x0bvt\x0cff\rcr   ",
            "r",
            "spec",
            source=kernels / "broken",
            problems=(
                f"{kernels / 'broken' / 'kernel.json'}: argv[0] '{long_word}' does not exist",
                "a second problem, wrapped under the kernel: " + "word " * 30,
                "trailing whitespace at the end   ",
            ),
        ),
        KernelType("wide", "全角の名前 with wide characters ✓", "日本語", "spec", source=kernels),
        KernelType("plugin-kernel", "Plugin", "", "myplugin", problems=("it failed\tbadly",)[:0]),
        KernelType("nameless", "", "", "myplugin"),
    ]
    if tabs:
        kernels_list.append(KernelType("tabbed", "a\tname\twith tabs", "x", "myplugin"))
    problems = (
        DiscoveryProblem("hung", "did not answer within 5 s (running for 5.0 s); " * 3),
        DiscoveryProblem("x", "raised ValueError: nope"),
    )
    return FindResult(tuple(kernels_list), problems)


def _via_rich(result: FindResult, width: int, *, broken_only: bool = False) -> str:
    out = io.StringIO()
    render_listing(result, broken_only=broken_only, console=Console(file=out, width=width))
    return out.getvalue()


@pytest.mark.parametrize("width", [1, 20, 60, 80, 200])
@pytest.mark.parametrize("broken_only", [False, True])
def test_plain_text_is_what_rich_prints(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    width: int,
    broken_only: bool,
) -> None:
    for var in _RICH_ENV:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("COLUMNS", str(width))
    monkeypatch.setenv("HOME", str(tmp_path))  # paths under it are shown as ~
    result = _result(tmp_path)
    render_listing(result, broken_only=broken_only)
    plain = capsys.readouterr().out
    assert plain == _via_rich(result, width, broken_only=broken_only)
    assert "\x07" not in plain
    assert "\r" not in plain


def test_empty_listings_are_what_rich_prints(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for var in _RICH_ENV:
        monkeypatch.delenv(var, raising=False)
    for broken_only in (False, True):
        render_listing(FindResult(()), broken_only=broken_only)
        assert capsys.readouterr().out == _via_rich(FindResult(()), 80, broken_only=broken_only)


def test_tabs_and_forced_colour_go_through_rich(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for var in _RICH_ENV:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("COLUMNS", "70")
    result = _result(tmp_path, tabs=True)
    render_listing(result, broken_only=False)
    out = capsys.readouterr().out
    assert "\t" not in out  # rich expanded them
    assert out == _via_rich(result, 70)
    monkeypatch.setenv("FORCE_COLOR", "1")
    render_listing(result, broken_only=False)
    assert "\x1b[" in capsys.readouterr().out  # styled, as rich does when forced


def test_the_listing_command_does_not_import_rich_when_piped(tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "sys.argv = ['kernelkit', 'list']\n"
        "from kernelkit.cli import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "print('rich' in sys.modules, file=sys.stderr)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "JUPYTER_PATH": str(tmp_path)},
    )
    assert proc.stderr.strip().splitlines()[-1] == "False"
    assert "kernels" in proc.stdout or "No kernels found." in proc.stdout


@pytest.mark.parametrize(
    "text",
    [
        "Python 3 (ipykernel)",
        "x" * 30,
        "a b",
        " leading",
        "trailing ",
        "ends in an ideographic space\u3000",
        "\u3000starts with one",
        "inner\u00a0no-break space",
        "a\tb",
        "line\nbreak",
        "",
        "   ",
        "a" * 31,
        "a few words that do not fit in the width",
    ],
)
def test_lines_that_fit_are_not_wrapped_by_textwrap(text: str) -> None:
    import textwrap

    from kernelkit.cli._list_table import _wrap

    expected = textwrap.wrap(text, 30, break_long_words=False, break_on_hyphens=False) or [""]
    assert _wrap(text, 30) == expected
