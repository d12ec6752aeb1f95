"""The human listing of ``kernelkit list``: one section per provider, kernels grouped by
where they live, broken ones with their reasons underneath.

Layout rules, for an 80-column terminal as much as a wide one: an id is never broken
(it is what people copy), paths are shown once per group rather than once per kernel,
problems wrap under the kernel across the whole width instead of inside a narrow
column, and no line ends in padding. The text is laid out here as styled parts, printed
once, rather than with rich tables: a table of a thousand kernels took seconds.

Where rich would print no styles (stdout is not a terminal: a pipe, a file, a test), the
parts are written as plain text without importing rich, which costs about as much as the
rest of ``kernelkit list``; the text is what rich prints (tests/cli/test_list_plain.py).
Anything the plain writer does not reproduce (tabs, Windows, Jupyter) goes through rich.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

from kernelkit.cli._list_plain import STRIPPED, plain_stdout_width, write_plain
from kernelkit.discovery import DiscoveryProblem, FindResult, KernelType
from kernelkit.envs import Environment

TYPE_CHECKING = False
if TYPE_CHECKING:
    from rich.console import Console

__all__ = ["render_listing"]

_KIND_LABELS = {
    "jupyter_server": "Jupyter Server",
    "kernel_gateway": "Kernel Gateway",
    "enterprise_gateway": "Enterprise Gateway",
}


def remote_group(kernel: KernelType) -> tuple[str, str] | None:
    """(heading, note) of the group ``kernel_list`` shows a remote kernel in: its server
    with its URL, and what the server is and whether it answered (its health); None for
    a kernel that is not on a server."""
    remote = kernel.metadata.get("remote") if kernel.provider == "remote" else None
    if not isinstance(remote, dict) or "server" not in remote:
        return None
    heading = f"server {remote['server']}  {remote.get('url', '')}"
    kind = remote.get("server_kind")
    if kind is None:  # it did not answer, or refused us: the reason is under the entry
        return heading, "(not usable: see below)"
    label = _KIND_LABELS.get(str(kind), str(kind))
    version = remote.get("server_version")
    return heading, f"({label}{' ' + str(version) if version else ''}, answering)"


_SECTIONS = {
    "spec": "Jupyter kernelspecs",
    "env": "Python and conda environments",
    "remote": "Remote servers",
}
_INDENT = 4  # kernels sit under their group heading
_GAP = "  "  # between columns
_STATUS_WIDTH = len("broken")
_MIN_TEXT = 12  # narrowest a wrapped column gets, however narrow the terminal


def _home() -> str:
    home = os.path.expanduser("~")
    return "" if home in ("", "/") else home.rstrip(os.sep)


def _tilde(text: str, home: str) -> str:
    """``text`` with the home directory written as ``~`` wherever a path starts with it."""
    if not home:
        return text
    if text == home:
        return "~"
    return text.replace(home + os.sep, "~" + os.sep)


def _environment_label(env: Environment) -> str:
    version = f", Python {env.python_version}" if env.python_version else ""
    return f"{env.kind}{version}"


def _group(kernel: KernelType, home: str) -> tuple[str, str]:
    """(heading, note) of the group a kernel is shown in: its kernels directory for a
    kernelspec, its environment for an environment's kernel; none for plugins."""
    remote = remote_group(kernel)
    if remote is not None:
        return remote
    env = kernel.environment
    if kernel.provider == "env":
        where = env.prefix if env is not None else kernel.source
        note = f"({_environment_label(env)})" if env is not None else ""
        return _tilde(os.fspath(where) if where is not None else "", home), note
    if kernel.provider == "spec" and kernel.source is not None:
        kernels_dir = os.path.dirname(os.fspath(kernel.source))
        note = f"(in {env.kind} environment {env.name})" if env is not None else ""
        return _tilde(kernels_dir, home), note
    return "", ""


def _reasons(kernel: KernelType, home: str) -> list[str]:
    """The kernel's problems, once each, without repeating the path its group shows."""
    own_json = (
        os.path.join(os.fspath(kernel.source), "kernel.json") + ": "
        if kernel.source is not None
        else None
    )
    out: list[str] = []
    for problem in kernel.problems:
        text = problem
        if own_json is not None and text.startswith(own_json):
            text = "kernel.json: " + text[len(own_json) :]
        text = _tilde(text, home)
        if text not in out:
            out.append(text)
    return out


#: What textwrap treats as whitespace besides the space (it turns each into a space).
_WRAP_BLANKS = frozenset("\t\n\x0b\x0c\r")


def _wrap(text: str, width: int) -> list[str]:
    width = max(width, _MIN_TEXT)
    if (
        0 < len(text) <= width
        and not text[0].isspace()
        and not text[-1].isspace()
        and _WRAP_BLANKS.isdisjoint(text)
    ):
        # What textwrap returns for text that fits, without importing it (most lines).
        return [text]
    import textwrap  # start-up time: only a line that does not fit needs it

    # A word longer than the line (a path, mostly) stays whole on a line of its own: the
    # terminal folds it, and it can still be copied.
    return textwrap.wrap(text, width, break_long_words=False, break_on_hyphens=False) or [""]


class _Layout:
    """Column widths shared by every section (so all the ids line up), and the text."""

    def __init__(self, kernels: Iterable[KernelType], width: int) -> None:
        kernels = list(kernels)
        self.width = width
        longest = max((len(k.id) for k in kernels), default=0)
        # a longer id gets a line of its own (an id is never cut)
        self.id = max(12, min(longest, (width - _INDENT) * 36 // 100))
        self.language = min(12, max((len(k.language) for k in kernels), default=0))
        #: (text, style) in order; "" is no style
        self.parts: list[tuple[str, str]] = []

    def line(self, *parts: tuple[str, str]) -> None:
        """One line of (text, style) parts; no line ends in whitespace (an empty column,
        a name ending in blanks), once the control characters rich drops are gone."""
        line = [(text.translate(STRIPPED), style) for text, style in parts]
        while line and not line[-1][0].rstrip():
            line.pop()
        if line:
            line[-1] = (line[-1][0].rstrip(), line[-1][1])
        self.parts.extend(line)
        self.parts.append(("\n", ""))

    def kernel(self, kernel: KernelType, home: str) -> None:
        pad = " " * _INDENT
        language = kernel.language
        if len(language) > self.language:
            language = language[: max(self.language - 1, 0)] + "…"
        lead = len(pad) + self.id + len(_GAP) + _STATUS_WIDTH + len(_GAP)
        lead += self.language + len(_GAP)
        names = _wrap(kernel.display_name, self.width - lead)
        status, status_style = ("ok", "green") if kernel.healthy else ("broken", "bold red")
        if len(kernel.id) > self.id:
            self.line((pad, ""), (kernel.id, "cyan"))
            first_id = " " * self.id
        else:
            first_id = kernel.id.ljust(self.id)
        self.line(
            (pad, ""),
            (first_id, "cyan"),
            (_GAP, ""),
            (status.ljust(_STATUS_WIDTH), status_style),
            (_GAP, ""),
            (language.ljust(self.language), ""),
            (_GAP, ""),
            (names[0], ""),
        )
        for more in names[1:]:
            self.line((" " * lead, ""), (more, ""))
        reasons = _reasons(kernel, home)
        bullet = len(reasons) > 1
        indent = " " * (_INDENT + 2)
        for reason in reasons:
            hang = "  " if bullet else ""
            wrapped = _wrap(reason, self.width - len(indent) - len(hang))
            for i, piece in enumerate(wrapped):
                mark = ("- " if i == 0 else hang) if bullet else ""
                self.line((indent + mark, ""), (piece, "red"))


def _section(layout: _Layout, provider: str, members: list[KernelType], home: str) -> None:
    layout.line(
        (_SECTIONS.get(provider, f"Provider {provider}"), "bold"), (f"  ({provider}/...)", "dim")
    )
    groups: dict[tuple[str, str], list[KernelType]] = {}
    for kernel in members:
        groups.setdefault(_group(kernel, home), []).append(kernel)
    for (heading, note), kernels in groups.items():
        if heading:
            # a path is never broken; its note goes below it when both do not fit
            if note and 2 + len(heading) + 2 + len(note) > layout.width:
                layout.line(("  " + heading, ""))
                layout.line(("    " + note, "dim"))
            else:
                layout.line(("  " + heading, ""), (f"  {note}" if note else "", "dim"))
        for kernel in kernels:
            layout.kernel(kernel, home)
    layout.line()


def _problems(layout: _Layout, problems: Iterable[DiscoveryProblem], home: str) -> None:
    problems = list(problems)
    layout.line(("Providers that failed", "bold red"))
    width = max(len(p.provider) for p in problems)
    for problem in problems:
        lead = 2 + width + len(_GAP)
        wrapped = _wrap(_tilde(problem.reason, home), layout.width - lead)
        layout.line(("  " + problem.provider.ljust(width) + _GAP, "bold"), (wrapped[0], "red"))
        for more in wrapped[1:]:
            layout.line((" " * lead, ""), (more, "red"))
    layout.line()


def _summary(result: FindResult, kernels: tuple[KernelType, ...], broken_only: bool) -> str:
    failed = len(result.problems)
    failed_text = f"; {failed} provider{'s' if failed != 1 else ''} failed" if failed else ""
    if broken_only:
        return f"{len(kernels)} broken{failed_text}."
    broken = len(result.broken)
    noun = "kernel" if len(kernels) == 1 else "kernels"
    text = f"{len(kernels)} {noun}: {len(kernels) - broken} ok, {broken} broken{failed_text}."
    if broken or failed:
        text += "\nOnly what is broken, and why: kernelkit list --broken"
    return text


def render_listing(
    result: FindResult, *, broken_only: bool, console: Console | None = None
) -> None:
    """Print ``result``: a section per provider (kernels grouped by kernels directory or
    environment), the providers that failed, then a summary line.

    With no ``console``, to stdout: as plain text when rich would print no styles there.
    """
    width = plain_stdout_width() if console is None else None
    if width is None:
        from kernelkit.cli import _list_rich  # rich: only for a terminal (start-up time)

        console = console or _list_rich.new_console()
        width = console.width
    home = _home()
    kernels = result.broken if broken_only else result.kernels
    if not kernels and not result.problems:
        message = "Nothing is broken." if broken_only else "No kernels found."
        _print([(message, "")], console)
        return
    sections: dict[str, list[KernelType]] = {}
    for kernel in kernels:
        sections.setdefault(kernel.provider, []).append(kernel)
    layout = _Layout(kernels, width)
    for provider, members in sections.items():
        _section(layout, provider, members, home)
    if result.problems:
        _problems(layout, result.problems, home)
    layout.line((_summary(result, kernels, broken_only), "dim"))
    _print(layout.parts, console)


def _print(parts: list[tuple[str, str]], console: Console | None) -> None:
    if console is None and write_plain(parts):
        return
    from kernelkit.cli import _list_rich

    _list_rich.print_parts(parts, console or _list_rich.new_console())
