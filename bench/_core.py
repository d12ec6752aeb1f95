"""The benchmark model and runner: metrics, targets, contestants, interleaved samples.

A :class:`Group` is one thing measured (say, a kernel's lifecycle): several metrics
(start, restart, shutdown) taken from each sample, by every contestant. The runner takes
samples in turns (kernelkit, jupyter_client, floor, then the next round, rotating who
goes first), so a noisy moment on a shared machine hits every contestant alike.
"""

from __future__ import annotations

import asyncio
import statistics
import time
import traceback
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

KERNELKIT = "kernelkit"
JUPYTER_CLIENT = "jupyter_client"
FLOOR = "floor"
EXTRA = "extra"  # another variant shown beside the three (e.g. jupyter_client's json packer)
MAX_FAILURES = 2  # failed samples before a contestant is out of a group


class Missing(Exception):
    """A contestant that cannot run yet (its API does not exist, or does not apply)."""


def last_words(text: str) -> str:
    """The line of a failed command's output that says what went wrong.

    The last line that names an error, else the last line with words in it (rich/typer
    draw boxes around their messages; the box characters are dropped).
    """
    lines = [ln.strip(" │╭╮╰╯─┃━") for ln in text.strip().splitlines()]
    lines = [ln.strip() for ln in lines if any(ch.isalpha() for ch in ln)]
    for ln in reversed(lines):
        if "Error" in ln or "rror:" in ln or "No such" in ln:
            return ln
    return lines[-1] if lines else "no output"


@dataclass(frozen=True)
class Target:
    """A goal for kernelkit: compared with a contestant's median, or an absolute value."""

    against: str  # FLOOR, JUPYTER_CLIENT, or "abs"
    op: str  # "<=", ">=", "=="
    value: float

    def met(self, x: float) -> bool:
        if self.op == "<=":
            return x <= self.value
        if self.op == ">=":
            return x >= self.value
        return x == self.value

    def text(self, unit: str) -> str:
        if self.against == "abs":
            return f"{self.op} {self.value:g} {unit}"
        who = "floor" if self.against == FLOOR else "jc"
        return f"{self.op} {self.value:g}x {who}"


@dataclass(frozen=True)
class Metric:
    key: str
    label: str
    unit: str
    higher_is_better: bool = False
    target: Target | None = None


class Contestant:
    """One side in a group. Subclasses override :meth:`setup`, :meth:`sample`, :meth:`teardown`.

    ``setup`` raising :class:`Missing`, ``ImportError`` or ``AttributeError`` marks the
    contestant missing (shown with the reason); anything else marks it failed.
    """

    name: str = ""
    role: str = EXTRA
    note: str = ""
    warming: bool = False  # set by the runner while it takes warm-up samples

    def setup(self) -> None:
        pass

    def sample(self) -> dict[str, float]:
        raise NotImplementedError

    def teardown(self) -> None:
        pass


class AsyncContestant(Contestant):
    """A contestant whose work is async: it gets an event loop of its own for its lifetime."""

    loop: asyncio.AbstractEventLoop | None = None

    def run(self, coro: Coroutine[Any, Any, Any]) -> Any:
        assert self.loop is not None
        return self.loop.run_until_complete(coro)

    def setup(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.run(self.asetup())

    def sample(self) -> dict[str, float]:
        result: dict[str, float] = self.run(self.asample())
        return result

    def teardown(self) -> None:
        if self.loop is None:
            return
        try:
            self.run(self.ateardown())
        finally:
            loop, self.loop = self.loop, None
            try:
                pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
                for t in pending:
                    t.cancel()
                if pending:
                    loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
                loop.run_until_complete(loop.shutdown_asyncgens())
            finally:
                loop.close()

    async def asetup(self) -> None:
        pass

    async def asample(self) -> dict[str, float]:
        raise NotImplementedError

    async def ateardown(self) -> None:
        pass


@dataclass
class Group:
    figure: int
    name: str
    metrics: list[Metric]
    contestants: list[Callable[[], Contestant]]
    reps: int
    warmup: int = 1
    budget_s: float = 60.0
    note: str = ""


@dataclass
class ContestantResult:
    name: str
    role: str
    note: str = ""
    status: str = "ok"  # ok | missing | failed
    reason: str = ""
    samples: dict[str, list[float]] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)  # samples that raised, and why

    def stats(self, key: str) -> tuple[float, float, float] | None:
        xs = self.samples.get(key)
        if not xs:
            return None
        return min(xs), statistics.median(xs), max(xs)


@dataclass
class GroupResult:
    figure: int
    name: str
    metrics: list[Metric]
    contestants: list[ContestantResult]
    note: str = ""
    seconds: float = 0.0
    truncated: bool = False

    def by_role(self, role: str) -> ContestantResult | None:
        for c in self.contestants:
            if c.role == role:
                return c
        return None


def describe(exc: BaseException) -> str:
    text = str(exc) if isinstance(exc, Missing) else f"{type(exc).__name__}: {exc}".strip()
    return text if len(text) <= 300 else text[:297] + "..."


def run_group(group: Group, *, log: Callable[[str], None]) -> GroupResult:
    """Set up every contestant, take samples in rotating turns, tear everything down."""
    t0 = time.monotonic()
    made: list[tuple[Contestant, ContestantResult]] = []
    for factory in group.contestants:
        c = factory()
        r = ContestantResult(name=c.name, role=c.role, note=c.note)
        try:
            c.setup()
        except (Missing, ImportError, AttributeError) as exc:
            r.status, r.reason = "missing", describe(exc)
            _safe_teardown(c, r)
        except Exception as exc:
            r.status, r.reason = "failed", f"setup: {describe(exc)}"
            log(f"    {c.name}: setup failed\n{traceback.format_exc()}")
            _safe_teardown(c, r)
        else:
            r.note = c.note  # setup may have learned more (e.g. the packer in use)
        made.append((c, r))

    active = [(c, r) for c, r in made if r.status == "ok"]
    truncated = False
    try:
        total = group.warmup + group.reps
        for i in range(total):
            warm = i < group.warmup
            if not warm and i > group.warmup and time.monotonic() - t0 > group.budget_s:
                truncated = True
                done = i - group.warmup
                log(f"    time budget of {group.budget_s:.0f} s spent after {done} rounds")
                break
            shift = i % max(1, len(active))
            for c, r in active[shift:] + active[:shift]:
                if r.status != "ok":
                    continue
                c.warming = warm
                try:
                    values = c.sample()
                except Exception as exc:
                    # A failed sample is a finding: keep it, and keep sampling (a second
                    # failure, or one in the warm-up, ends this contestant's turn).
                    where = "warm-up" if warm else f"sample {i - group.warmup + 1}"
                    r.failures.append(f"{where}: {describe(exc)}")
                    log(f"    {c.name}: sample failed\n{traceback.format_exc()}")
                    if warm or len(r.failures) >= MAX_FAILURES:
                        r.status, r.reason = "failed", r.failures[0]
                    continue
                if warm:
                    continue
                for key, value in values.items():
                    if key.startswith("_"):
                        r.extra.setdefault(key[1:], []).append(value)
                    else:
                        r.samples.setdefault(key, []).append(value)
    finally:
        for c, r in active:
            _safe_teardown(c, r)
    return GroupResult(
        figure=group.figure,
        name=group.name,
        metrics=group.metrics,
        contestants=[r for _, r in made],
        note=group.note,
        seconds=time.monotonic() - t0,
        truncated=truncated,
    )


def _safe_teardown(c: Contestant, r: ContestantResult) -> None:
    try:
        c.teardown()
    except Exception as exc:
        r.extra.setdefault("teardown_errors", []).append(describe(exc))
