"""The commands' publish path: rendered tables → files under ``results/`` and this machine's
results-page block (``--readme docs/results/<kind>.md``).

``publish`` writes a report's rows (CSV) and its Markdown beside ``runs.jsonl``; ``write_files``
(``results.store.write_files``) writes any named files into a folder, the report and compare pages
among them. The page's new text (``readme_text``: ``readme.machine_block``) goes into the same
call: the files of one publish are all written or none (a full disk leaves every earlier file as it
was: ``results.store.atomic_write_files``). A benchmark run's folder is written by ``runs.writer``
alone. Nothing here decides what a table says: the renderers in this package do (``notebook_table``,
``speedup_table``, ``tta_table``, ``suite_summary``), each as ``render(rows, env, run_id, heading)``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from ..results.store import Content, write_files
from .readme import machine_block

__all__ = ["Report", "publish", "readme_text", "write_files"]


def readme_text(readme: str | os.PathLike[str] | None, block: tuple[str, str] | None,
                env: dict[str, Any] | None) -> dict[Path, str]:
    """{readme: its new text} with ``block`` (marker, Markdown) spliced in as this machine kind's
    sub-block; {} without a page (``--readme``) or its markers. Written with the files it belongs to."""
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
            env: dict[str, Any] | None = None, extra: Mapping[str, Content | None] | None = None) -> list[Path]:
    """Write ``<stem>.csv`` and ``<stem>.md`` (and ``extra``'s files: a figure) into ``results_dir`` and splice
    the Markdown into ``readme``'s block as this machine kind's sub-block, all or none. The tables' paths."""
    also = readme_text(readme, (report.marker, report.markdown), env)
    files = {f"{report.stem}.csv": report.rows, f"{report.stem}.md": report.markdown + "\n", **(extra or {})}
    return write_files(results_dir, files, also)[:2]
