"""What both methods publish: keyed Prefect artifacts (docs/design.md §2 step 8, §3).

Keys are stable per run and round, so the Prefect UI shows each key's history across
invocations. A round's metrics markdown and a run's summary.json, curve table and curve PNG
are written here for ELAD and EvoKD alike; the per-method round tables live in
tasks/elad/artifacts.py and tasks/evokd/artifacts.py.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TypeVar

from prefect.artifacts import create_image_artifact, create_table_artifact

from elad_core.files import write_json
from elad_core.plots import curve_png, png_data_uri
from elad_core.run_summary import SummaryJson

MAX_ROWS = 200  # rows shown per table artifact; the parquet files hold everything


def artifact_key(run_name: str, suffix: str) -> str:
    """Prefect artifact keys allow lowercase letters, digits and dashes only."""
    return re.sub(r"[^a-z0-9-]+", "-", f"{run_name}-{suffix}".lower()).strip("-")


def metrics_markdown(title: str, manifest: dict, keys: tuple[str, ...],
                     sections: dict[str, str] | None = None) -> str:
    """A round's metrics markdown: `title`, a table of `keys` of the manifest, optional
    titled text sections (e.g. the teacher's analysis), then the wall seconds per step."""
    lines = [f"# {title}", "", "| metric | value |", "|---|---|"]
    lines += [f"| {key} | {_fmt(manifest.get(key))} |" for key in keys]
    for name, text in (sections or {}).items():
        if text:
            lines += ["", f"## {name}", "", text]
    lines += ["", "| step | wall s |", "|---|---|"]
    lines += [f"| {k} | {v:.2f} |" for k, v in manifest["step_wall_s"].items()]
    return "\n".join(lines)


def _fmt(value) -> str:
    """Floats at 4 significant digits (a UI table, not the record: manifest.json keeps all)."""
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _shown(value):
    """A table cell: floats rounded to 4 decimals (summary.json keeps every digit)."""
    return round(value, 4) if isinstance(value, float) else value


_Summary = TypeVar("_Summary", bound=SummaryJson)


def publish_run(run_dir: Path, run_summary: _Summary, curve: str,
                columns: tuple[str, ...], metric: str, description: str) -> _Summary:
    """Write this invocation's summary.json (`run_summary.as_dict()`), its curve table artifact
    (`columns` of each of its rounds; key <run>-<curve>) and the curve as a picture: `metric`
    against cumulative teacher tokens in <run_dir>/<curve>.png, shown as an image artifact (key
    <run>-<curve>-plot, the PNG inlined as a data URI), in the flow run. Returns run_summary."""
    run_dir, summary = Path(run_dir), run_summary.as_dict()
    run_name = summary["run_name"]
    write_json(run_dir / "summary.json", summary)
    create_table_artifact(key=artifact_key(run_name, curve),
                          table=[{k: _shown(row.get(k)) for k in columns}
                                 for row in summary["rounds"]],
                          description=description)
    png = curve_png(summary["rounds"], metric, run_dir / f"{curve}.png",
                    f"{run_name}: {metric} against teacher tokens")
    create_image_artifact(png_data_uri(png), key=artifact_key(run_name, f"{curve}-plot"),
                          description=f"{description} Also in {png.name} in the run folder.")
    return run_summary
