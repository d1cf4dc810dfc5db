"""The ONE publish path: rendered tables → files under ``results/`` and this machine's README block.

Every command and the benchmark suite end here: ``publish`` writes a report's rows (CSV) and its
Markdown beside ``runs.jsonl``; ``publish_run`` writes a benchmark run's folder and moves
``latest``. Both write through ``write_files`` (each file atomic) and splice the README through
``readme.splice_machine_block``. Nothing here decides what a table says: the renderers in this
package do (``seed_table``, ``speedup``, ``tta``, ``bench``), each as ``render(rows, env, run_id,
heading)``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from ..results.store import _jsonable, new_run_folder, point_latest, write_text
from .readme import splice_machine_block

Content = str | pd.DataFrame | dict


def _text(name: str, content: Content) -> str:
    if isinstance(content, pd.DataFrame):
        return content.to_csv(index=False)
    if isinstance(content, dict):  # JSON; pytest-benchmark's own is written compactly
        indent = 1 if name == "benchmark.json" else 2
        return json.dumps(content, indent=indent, default=_jsonable if indent == 2 else str) + "\n"
    return content


def write_files(folder: str | os.PathLike[str], files: Mapping[str, Content | None]) -> list[Path]:
    """Write each named file into ``folder`` atomically (DataFrame → CSV, dict → JSON, str as it is);
    None entries are skipped."""
    return [write_text(Path(folder) / name, _text(name, content)) for name, content in files.items()
            if content is not None]


@dataclass(frozen=True)
class Report:
    """A rendered report: its rows (→ ``<stem>.csv``), its Markdown (→ ``<stem>.md``) and the README
    block it belongs in."""

    stem: str
    rows: pd.DataFrame
    markdown: str
    marker: str


def publish(report: Report, results_dir: str | os.PathLike[str], readme: str | os.PathLike[str] | None = None,
            env: dict[str, Any] | None = None) -> list[Path]:
    """Write ``<stem>.csv`` and ``<stem>.md`` into ``results_dir``; splice the Markdown into ``readme``'s
    block as this machine kind's sub-block."""
    paths = write_files(results_dir, {f"{report.stem}.csv": report.rows, f"{report.stem}.md": report.markdown + "\n"})
    if readme:
        splice_machine_block(readme, report.marker, report.markdown, env)
    return paths


def publish_run(results_dir: str | os.PathLike[str], run_id: str, files: Mapping[str, Content | None],
                readme: str | os.PathLike[str] | None = None, readme_block: tuple[str, str] | None = None,
                env: dict[str, Any] | None = None) -> Path:
    """Write one benchmark run to ``results_dir/run_id/`` (a new folder; earlier runs are never touched),
    point ``results_dir/latest`` at it, and splice ``readme_block`` (marker, Markdown) into ``readme``."""
    folder = new_run_folder(results_dir, run_id)
    write_files(folder, files)
    point_latest(results_dir, run_id)
    if readme and readme_block:
        splice_machine_block(readme, readme_block[0], readme_block[1], env)
    return folder
