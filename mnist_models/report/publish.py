"""The ONE publish path: rendered tables → files under ``results/`` and this machine's README block.

Every command and the benchmark suite end here: ``publish`` writes a report's rows (CSV) and its
Markdown beside ``runs.jsonl``; ``publish_run`` writes a benchmark run's folder and moves
``latest``. Both write through ``write_files``, and the README's new text (``readme.machine_block``)
goes into the same call: the files of one publish are all written or none (a full disk leaves every
earlier file as it was: ``results.store.atomic_write_files``). Nothing here decides what a table
says: the renderers in this package do (``notebook_table``, ``speedup_table``, ``tta_table``,
``suite_summary``), each as ``render(rows, env, run_id, heading)``.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from ..results.store import _jsonable, atomic_write_files, new_run_folder, point_latest
from .readme import machine_block

Content = str | bytes | pd.DataFrame | dict


def _bytes(name: str, content: Content) -> bytes:
    if isinstance(content, bytes):  # a PNG, a gzipped trace
        return content
    if isinstance(content, pd.DataFrame):
        return content.to_csv(index=False).encode("utf-8")
    if isinstance(content, dict):  # JSON; pytest-benchmark's own is written compactly
        indent = 1 if name == "benchmark.json" else 2
        content = json.dumps(content, indent=indent, default=_jsonable if indent == 2 else str) + "\n"
    return content.encode("utf-8")


def write_files(folder: str | os.PathLike[str], files: Mapping[str, Content | None],
                also: Mapping[Path, str] | None = None) -> list[Path]:
    """Write each named file into ``folder`` (DataFrame → CSV, dict → JSON, str as UTF-8, bytes as they
    are; None entries skipped), and ``also``'s files (path → text) with them: all of them or none
    (``results.store.atomic_write_files``). The paths written, ``folder``'s first."""
    contents = {Path(folder) / name: _bytes(name, content) for name, content in files.items() if content is not None}
    contents |= {Path(path): text.encode("utf-8") for path, text in (also or {}).items()}
    return atomic_write_files(contents)


def _readme_text(readme: str | os.PathLike[str] | None, block: tuple[str, str] | None,
                 env: dict[str, Any] | None) -> dict[Path, str]:
    """{readme: its new text} with ``block`` (marker, Markdown) spliced in; {} without a README or markers."""
    text = machine_block(readme, block[0], block[1], env) if readme and block else None
    return {Path(readme): text} if text is not None else {}


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
    """Write ``<stem>.csv`` and ``<stem>.md`` into ``results_dir`` and splice the Markdown into ``readme``'s
    block as this machine kind's sub-block, all three or none. The tables' paths."""
    also = _readme_text(readme, (report.marker, report.markdown), env)
    return write_files(results_dir, {f"{report.stem}.csv": report.rows, f"{report.stem}.md": report.markdown + "\n"},
                       also)[:2]


def publish_run(results_dir: str | os.PathLike[str], run_id: str, files: Mapping[str, Content | None],
                readme: str | os.PathLike[str] | None = None, readme_block: tuple[str, str] | None = None,
                env: dict[str, Any] | None = None, existing: bool = False) -> Path:
    """Write one benchmark run to ``results_dir/run_id/`` (a new folder; earlier runs are never touched) and
    splice ``readme_block`` (marker, Markdown) into ``readme``, all or none; then point ``results_dir/latest``
    at the run (only once its files are whole). A run whose files could not be written leaves no folder.
    ``existing``: the run made its folder itself (the suite, when its first case ended: ``cases.jsonl``)."""
    folder = Path(results_dir) / run_id if existing else new_run_folder(results_dir, run_id)
    try:
        write_files(folder, files, _readme_text(readme, readme_block, env))
    except BaseException:
        with contextlib.suppress(OSError):  # only while empty: nothing else is ever removed
            folder.rmdir()
        raise
    point_latest(results_dir, run_id)
    return folder
