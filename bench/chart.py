"""The side-by-side results of bench/run.py as a PNG: requests/s, and p50/p99 latency, per setup.

    .venv/bin/python bench/chart.py [.artifacts/bench/results.json] [-o bench/results.png]
                                    [--note "2 cores, one run, wrk -t2 -c50"] [--date YYYY-MM-DD]

Generic over the setups in the file (``name -> {rps, p50_ms, p99_ms, errors, ...}``), in their
order; a setup whose value is missing (null) is left out, a missing number leaves its bar out. Where
the setups were also run at a fixed offered load (``fixed_p50_ms``, ``fixed_p99_ms``,
``fixed_offered_rps``), a third panel shows those latencies.
Needs matplotlib (``LOCK=requirements/requirements-bench.lock scripts/setup.sh``).
"""

from __future__ import annotations

import argparse
import json
import math
import os
from datetime import date
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import FuncFormatter  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
LOG_WHEN = 20.0
"""Latency on a log scale when the largest bar is this many times the smallest."""


def number(row: dict[str, Any], key: str) -> float | None:
    value = row.get(key)
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


def load(path: Path) -> dict[str, dict[str, Any]]:
    data = json.loads(path.read_text())
    return {name: row for name, row in data.items() if isinstance(row, dict) and "rps" in row}


def draw(results: dict[str, dict[str, Any]], title: str, png: Path) -> None:
    names = list(results)
    y = list(range(len(names)))
    rates = {v for r in results.values() if (v := number(r, "fixed_offered_rps")) is not None}
    fig, axes = plt.subplots(
        1, 3 if rates else 2, figsize=(21 if rates else 14, 1.6 + 0.75 * len(names)), sharey=True,
        layout="constrained", gridspec_kw={"width_ratios": [1.15, 1, 1] if rates else [1.15, 1]},
    )  # fmt: skip
    left = axes[0]
    fig.suptitle(title, fontsize=13)

    rps = [number(results[n], "rps") for n in names]
    finite = sorted((r for r in rps if r is not None), reverse=True)
    top = finite[0] if finite else 1.0
    if len(finite) > 1 and finite[0] > 5 * finite[1]:
        top = finite[1]  # a far larger ceiling (the upstream direct) is drawn cut off, its number written
    cap = top * 1.25
    left.barh(y, [min(r or 0, cap) for r in rps], height=0.6, color="#4c72b0")
    for i, (name, r) in enumerate(zip(names, rps, strict=True)):
        errors = number(results[name], "errors") or 0
        label = "n/a" if r is None else f"{r:,.0f}" + ("  (axis cut)" if r > cap else "")
        if errors:
            label += f"  ({errors:,.0f} errors)"
        left.text(min(r or 0, cap) + top * 0.01, i, label, va="center", fontsize=11,
                  color="#c0392b" if errors else "black")  # fmt: skip
    left.set_xlim(0, top * 1.6)
    if top >= 10_000:
        left.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v / 1000:g}k" if v else "0"))
    left.set_title("requests/s (higher is better)", fontsize=12)
    left.set_yticks(y, names, fontsize=11)
    left.invert_yaxis()  # the first setup on top

    latency(axes[1], results, names, "", "latency at full load, ms")
    if rates:
        rate = f"{min(rates):,.0f}" if len(rates) == 1 else "various"
        latency(axes[2], results, names, "fixed_", f"latency at a fixed {rate} req/s, ms")
    for ax in axes:
        ax.set_axisbelow(True)
        ax.tick_params(axis="x", labelsize=10)
        ax.spines[["top", "right"]].set_visible(False)
    left.grid(axis="x", alpha=0.3)
    fig.savefig(png, dpi=120)
    plt.close(fig)


def latency(ax: Any, results: dict[str, dict[str, Any]], names: list[str], prefix: str, title: str) -> None:
    """p50 and p99 bars per setup from ``{prefix}p50_ms`` / ``{prefix}p99_ms``."""
    h = 0.36
    lat = {k: [number(results[n], prefix + k) for n in names] for k in ("p50_ms", "p99_ms")}
    values = [v for vs in lat.values() for v in vs if v is not None and v > 0]
    log = bool(values) and max(values) / min(values) >= LOG_WHEN
    for off, (key, color, label) in zip(
        (-h / 2, h / 2), (("p50_ms", "#55a868", "p50"), ("p99_ms", "#dd8452", "p99")), strict=True
    ):
        vals = lat[key]
        pos = [i + off for i, v in enumerate(vals) if v is not None]
        shown = [v for v in vals if v is not None]
        ax.barh(pos, shown, height=h, color=color, label=label)
        for p, v in zip(pos, shown, strict=True):
            x = v * 1.04 if log else v + max(values) * 0.01
            ax.text(x, p, f"{v:.2f} ms" if v < 10 else f"{v:.1f} ms", va="center", fontsize=10)
        for i in (i for i, v in enumerate(vals) if v is None):
            x = min(values) if log and values else 0
            ax.text(x, i + off, f" {label} n/a", va="center", fontsize=10, color="0.4")
    if log:
        ax.set_xscale("log")
        ax.set_xlim(min(values) / 1.5, max(values) * 4)
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    elif values:
        ax.set_xlim(0, max(values) * 1.25)
    ax.set_title(f"{title} (lower is better{', log scale' if log else ''})", fontsize=12)
    ax.legend(loc="best", fontsize=11)
    ax.tick_params(axis="y", left=False)
    ax.grid(axis="x", alpha=0.3, which="both" if log else "major")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("results", nargs="?", type=Path, default=ROOT / ".artifacts" / "bench" / "results.json")
    ap.add_argument("-o", "--output", type=Path, default=ROOT / "bench" / "results.png")
    ap.add_argument("--note", default=f"{os.cpu_count()} cores, one run, wrk -t2 -c50")
    ap.add_argument("--date", help="default: the day results.json was written")
    args = ap.parse_args()
    results = load(args.results)
    if not results:
        raise SystemExit(f"chart: no results in {args.results}")
    day = args.date or date.fromtimestamp(args.results.stat().st_mtime).isoformat()
    draw(results, f"auth-proxy benchmark, {day} ({args.note})", args.output)
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
