"""Results out: a markdown table, a JSON file with every sample, a PNG chart of the ratios."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bench._core import EXTRA, FLOOR, JUPYTER_CLIENT, KERNELKIT, GroupResult, Metric

MAIN_ROLES = (KERNELKIT, JUPYTER_CLIENT, FLOOR)


@dataclass
class Row:
    """One line of the table: a metric, with every contestant's numbers and kernelkit's ratios."""

    figure: int
    group: str
    metric: Metric
    cells: dict[str, str]  # role -> text
    vs_jc: float | None
    vs_floor: float | None
    verdict: str  # met | MISSED | missing | failed | n/a
    target_value: float | None  # the ratio or value compared with the target
    extras: list[tuple[str, str, float | None]]  # (name, cell, kernelkit/that)


def fmt(x: float) -> str:
    if x == 0:
        return "0"
    a = abs(x)
    if a >= 1e4:
        return f"{x:,.0f}"
    if a >= 100:
        return f"{x:.0f}"
    if a >= 10:
        return f"{x:.1f}"
    if a >= 1:
        return f"{x:.2f}"
    return f"{x:.3g}"


def _ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or b == 0:
        return None
    return a / b


def _short(reason: str, n: int = 70) -> str:
    reason = reason.replace("|", "/").replace("\n", " ")
    return reason if len(reason) <= n else reason[: n - 1] + "…"


def rows(results: list[GroupResult]) -> list[Row]:
    out = []
    for g in results:
        for m in g.metrics:
            cells: dict[str, str] = {}
            medians: dict[str, float | None] = {}
            for role in MAIN_ROLES:
                c = g.by_role(role)
                if c is None:
                    cells[role], medians[role] = "n/a", None
                    continue
                st = c.stats(m.key)
                medians[role] = st[1] if st else None
                if st:
                    cells[role] = f"{fmt(st[1])} ({fmt(st[0])}..{fmt(st[2])})"
                    if c.failures:
                        cells[role] += f" + {len(c.failures)} failed: {_short(c.failures[0], 50)}"
                elif c.status != "ok":
                    cells[role] = f"{c.status}: {_short(c.reason)}"
                else:
                    cells[role] = "n/a"
            kk = medians[KERNELKIT]
            counted = m.unit == "count"  # a count is compared with its target, not a ratio
            vs_jc = None if counted else _ratio(kk, medians[JUPYTER_CLIENT])
            vs_floor = None if counted else _ratio(kk, medians[FLOOR])
            extras = []
            for c in g.contestants:
                if c.role != EXTRA:
                    continue
                st = c.stats(m.key)
                if st:
                    cell = f"{fmt(st[1])} ({fmt(st[0])}..{fmt(st[2])})"
                    extras.append((c.name, cell, _ratio(kk, st[1])))
                elif c.status != "ok":
                    extras.append((c.name, f"{c.status}: {_short(c.reason)}", None))
            verdict, value = _verdict(g, m, kk, vs_jc, vs_floor)
            kkr = g.by_role(KERNELKIT)
            if kkr is not None and kkr.failures and kk is not None:
                verdict = f"{verdict}; {len(kkr.failures)} failed".lstrip("; ")
            out.append(Row(g.figure, g.name, m, cells, vs_jc, vs_floor, verdict, value, extras))
    return out


def _verdict(
    g: GroupResult, m: Metric, kk: float | None, vs_jc: float | None, vs_floor: float | None
) -> tuple[str, float | None]:
    kkr = g.by_role(KERNELKIT)
    if kk is None:
        if kkr is None:
            return "n/a", None
        return (kkr.status if kkr.status != "ok" else "n/a"), None
    t = m.target
    if t is None:
        return "", None
    value = {"abs": kk, FLOOR: vs_floor, JUPYTER_CLIENT: vs_jc}[t.against]
    if value is None:
        return "n/a", None
    return ("met" if t.met(value) else "MISSED"), value


def markdown(results: list[GroupResult], meta: dict[str, Any]) -> str:
    head = ("fig", "metric", "unit", "kernelkit", "jupyter_client", "floor")
    head += ("kk/jc", "kk/floor", "target", "")
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]

    def r(x: float | None) -> str:
        return "-" if x is None else f"{x:.2f}"

    for row in rows(results):
        m = row.metric
        target = m.target.text(m.unit) if m.target else ""
        arrow = " ↑" if m.higher_is_better else ""
        lines.append(
            f"| {row.figure} | {m.label} | {m.unit}{arrow} | {row.cells[KERNELKIT]} | "
            f"{row.cells[JUPYTER_CLIENT]} | {row.cells[FLOOR]} | {r(row.vs_jc)} | "
            f"{r(row.vs_floor)} | {target} | {row.verdict} |"
        )
        for name, cell, ratio in row.extras:
            lines.append(f"|  | ↳ {name} | | | {cell} | | {r(ratio)} | | | |")
    lines.append("")
    lines.append(
        "Each cell: median (min..max) over the samples; ratios are kernelkit's median over the "
        "other's (for ↑ metrics higher is better). Samples were taken in rotating turns."
    )
    notes = []
    for g in results:
        if g.note:
            notes.append(f"- fig {g.figure} {g.name}: {g.note}")
        if g.truncated:
            notes.append(f"- fig {g.figure} {g.name}: stopped early (time budget)")
        for c in g.contestants:
            if c.note:
                notes.append(f"- fig {g.figure} {g.name}, {c.name}: {c.note}")
            if c.status != "ok":
                notes.append(f"- fig {g.figure} {g.name}, {c.name} **{c.status}**: {c.reason}")
            for failure in c.failures[1:] if c.status != "ok" else c.failures:
                notes.append(f"- fig {g.figure} {g.name}, {c.name} **sample failed**: {failure}")
            for err in c.extra.get("teardown_errors", []):
                notes.append(f"- fig {g.figure} {g.name}, {c.name} teardown: {err}")
    if notes:
        lines += ["", "Notes:", *notes]
    env = meta.get("environment") or {}
    if env:
        lines += ["", "Environment: " + ", ".join(f"{k} {v}" for k, v in env.items())]
    return "\n".join(lines)


def to_json(results: list[GroupResult], meta: dict[str, Any]) -> dict[str, Any]:
    return {
        "meta": meta,
        "groups": [
            {
                "figure": g.figure,
                "name": g.name,
                "note": g.note,
                "seconds": round(g.seconds, 3),
                "truncated": g.truncated,
                "metrics": [asdict(m) for m in g.metrics],
                "contestants": [asdict(c) for c in g.contestants],
            }
            for g in results
        ],
        "rows": [
            {
                "figure": row.figure,
                "group": row.group,
                "metric": row.metric.key,
                "label": row.metric.label,
                "kernelkit_over_jupyter_client": row.vs_jc,
                "kernelkit_over_floor": row.vs_floor,
                "target": asdict(row.metric.target) if row.metric.target else None,
                "verdict": row.verdict,
            }
            for row in rows(results)
        ],
    }


def write_json(path: Path, results: list[GroupResult], meta: dict[str, Any]) -> None:
    path.write_text(json.dumps(to_json(results, meta), indent=1, default=str))


def chart(path: Path, results: list[GroupResult], title: str) -> None:
    """Horizontal bars of kernelkit/jupyter_client and kernelkit/floor per metric (log
    scale, clipped to [1/50, 50] with the true value written) with each ratio target
    marked; absolute targets and counts are written into the row's label; a label is red
    when kernelkit misses its target, failed, or is missing."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    all_rows = rows(results)
    n = max(1, len(all_rows))
    fig, ax = plt.subplots(figsize=(12, 0.42 * n + 1.6))
    ys = list(range(n))[::-1]
    h = 0.38
    lo, hi = 1 / 50, 50.0
    for y, row in zip(ys, all_rows, strict=True):
        if row.metric.unit != "count":
            for off, value, color, label in (
                (h / 2, row.vs_jc, "#4c72b0", "kernelkit / jupyter_client"),
                (-h / 2, row.vs_floor, "#dd8452", "kernelkit / floor"),
            ):
                if value is not None and value > 0:
                    shown = min(max(value, lo * 1.05), hi / 1.3)
                    ax.barh(y + off, shown, height=h, color=color, label=label)
                    text = f"{value:.2f}" if value >= 0.01 else f"{value:.1e}"
                    ax.text(shown * 1.04, y + off, text, va="center", fontsize=7)
        t = row.metric.target
        if t is not None and t.against != "abs":
            ty = y + (h / 2 if t.against == JUPYTER_CLIENT else -h / 2)
            ax.plot([t.value, t.value], [ty - h / 2, ty + h / 2], color="black", lw=2)
        if row.vs_jc is None and row.vs_floor is None and row.metric.unit != "count":
            color = "#c44e52" if _bad(row.verdict) else "black"
            ax.text(lo * 1.1, y, row.verdict or "no ratio", va="center", fontsize=8, color=color)
    labels = []
    for row in all_rows:
        label = f"{row.figure}. {row.metric.label}"
        if row.metric.higher_is_better:
            label += " ↑"
        label = label if len(label) < 60 else label[:58] + "…"
        t = row.metric.target
        if row.metric.unit == "count":
            label += " [" + ", ".join(
                f"{who} {row.cells[role].split(' (')[0]}"
                for who, role in (("kk", KERNELKIT), ("jc", JUPYTER_CLIENT), ("floor", FLOOR))
            )
            label += f"; target {t.op} {t.value:g}]" if t is not None else "]"
        elif t is not None and t.against == "abs":
            value = row.cells[KERNELKIT].split(" (")[0]
            label += f" [kk {_short(value, 30)} {row.metric.unit}; target {t.op} {t.value:g}]"
        labels.append(label)
    ax.set_yticks(ys)
    ax.set_yticklabels(labels, fontsize=8)
    for tick, row in zip(ax.get_yticklabels(), all_rows, strict=True):
        if _bad(row.verdict):
            tick.set_color("#c44e52")
    ax.set_xscale("log")
    ax.set_xlim(lo, hi)
    ax.axvline(1.0, color="grey", lw=0.8, ls="--")
    handles, names = ax.get_legend_handles_labels()
    uniq = dict(zip(names, handles, strict=True))
    uniq["target (ratio)"] = Line2D([0], [0], color="black", lw=2)
    ax.legend(uniq.values(), uniq.keys(), loc="lower right", fontsize=8)
    ax.set_xlabel(
        "kernelkit's median over the other's (log scale). ↑ rows: higher is better; "
        "others: lower is better.\nRed label: target missed, a sample failed, or kernelkit "
        "missing. [brackets]: absolute targets and counts."
    )
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _bad(verdict: str) -> bool:
    return verdict in ("MISSED", "missing") or "failed" in verdict or "MISSED" in verdict


def summary_lines(results: list[GroupResult]) -> list[str]:
    out = []
    for row in rows(results):
        if _bad(row.verdict):
            out.append(f"fig {row.figure} {row.metric.label}: {row.verdict}")
    return out


__all__ = ["chart", "markdown", "rows", "summary_lines", "write_json"]
