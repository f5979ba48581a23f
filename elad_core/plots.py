"""The run's learning curve as a PNG: a metric against cumulative teacher tokens (issue #16,
docs/design.md §3: what the Prefect UI shows per run).

Pure (matplotlib, no Prefect); tasks/artifacts.py writes it next to summary.json and shows it
as an image artifact.
"""

from __future__ import annotations

import base64
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: no display, also on a headless worker
import matplotlib.pyplot as plt  # noqa: E402


def curve_png(rows: list[dict], metric: str, path: Path, title: str) -> Path:
    """Draw `metric` (y, a fraction in [0, 1] shown as %) against `cumulative_teacher_tokens`
    (x, thousands) of `rows` (summary.json's rounds, round order; rows without the metric,
    e.g. a round stopped before evaluation, are left out) and write it to `path` (PNG, about
    600×400 px). Each point is labelled with its round. Returns `path`."""
    pts = [(r["cumulative_teacher_tokens"] / 1000, 100 * r[metric], r["round"])
           for r in rows if r.get(metric) is not None and r.get("cumulative_teacher_tokens")
           is not None]
    fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
    if pts:
        xs, ys, labels = zip(*pts)
        ax.plot(xs, ys, marker="o")
        for x, y, r in pts:
            ax.annotate(f"round {r}", (x, y), textcoords="offset points", xytext=(4, 4),
                        fontsize=8)
    else:
        ax.text(0.5, 0.5, "no evaluated round yet", ha="center", va="center",
                transform=ax.transAxes)
    ax.set_xlabel("cumulative teacher tokens (thousands)")
    ax.set_ylabel(f"{metric} %")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, format="png")
    plt.close(fig)
    return path


def png_data_uri(path: Path) -> str:
    """`path`'s bytes as a data: URI (what an image artifact's URL can be without a server
    to host the file)."""
    return "data:image/png;base64," + base64.b64encode(Path(path).read_bytes()).decode("ascii")
