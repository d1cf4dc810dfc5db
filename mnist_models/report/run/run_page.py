"""The report of one benchmark-suite run folder (``mnist-bench report [RUN_DIR]``, and the suite at the
end of every session): ``report.md``, ``report.html`` (one self-contained page, images embedded) and
``plots/*.png`` written into the run folder through the one publish path (``publish.write_files``: all
of them or none, so a full disk leaves the earlier report as it was).

The folder is read once by ``runs.folder.read_run`` (any version, finished or not; the tables
recomputed); ``document`` puts the sections in order (``timing_sections.py``, ``other_sections.py``);
``build_report`` renders the Markdown and the page; ``write_report`` writes the files. Bad input raises
``RunFolderError`` (one line naming the problem and the fix).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from ...runs.folder import RunFolder, check_folder, read_run
from ..html import page
from ..publish import write_files
from . import other_sections, timing_sections


@dataclass(frozen=True)
class RunReport:
    """The rendered report: Markdown (images as ``plots/<name>.png``), the self-contained HTML page,
    and each plot's PNG bytes by its path relative to the run folder."""

    markdown: str
    html: str
    plots: dict[str, bytes]
    warnings: list[str] = field(default_factory=list)  # one line each for stderr: the problems, incomplete


def document(run: RunFolder, store: dict[str, bytes], data_root: str | os.PathLike[str] | None) -> str:
    """The whole report's Markdown, section after section; figures go into ``store``."""
    sections = [timing_sections.title_section(run), timing_sections.machine_section(run),
                timing_sections.models_section(run, store), timing_sections.training_section(run, store),
                timing_sections.rounds_section(run, store), timing_sections.curves_section(run, store),
                timing_sections.inference_section(run, store), timing_sections.memory_section(run, store),
                timing_sections.roofline_section(run, store), other_sections.quality_section(run, store, data_root),
                other_sections.scaling_section(run, store), other_sections.tta_section(run),
                other_sections.cuts_section(run),
                other_sections.left_out_section(run.left_out), other_sections.skipped_section(run.skips),
                other_sections.compare_section(run), other_sections.profile_section(run, store),
                other_sections.sweeps_section(run)]
    return "\n".join(line for section in sections for line in section).rstrip() + "\n"


def build_report(run_dir: str | os.PathLike[str], data_root: str | os.PathLike[str] | None = None) -> RunReport:
    """The whole report of a run folder (nothing written)."""
    run = read_run(run_dir)
    plots: dict[str, bytes] = {}
    markdown = document(run, plots, data_root)
    said = [p.say(run.path) for p in run.problems]
    said += [f"{run.path}: {run.incomplete.say()}"] if run.incomplete else []
    return RunReport(markdown, page(markdown, plots, f"Benchmark run {run.run_id}"), plots, said)


def write_report(run_dir: str | os.PathLike[str], data_root: str | os.PathLike[str] | None = None,
                 report: RunReport | None = None) -> list[Path]:
    """Build the report (unless given) and write ``report.md``, ``report.html`` and ``plots/*.png`` into
    the run folder, all of them or none; then plots an earlier report left that this one does not draw
    are removed."""
    folder = check_folder(run_dir)
    report = report or build_report(folder, data_root)
    written = write_files(folder, {**report.plots, "report.md": report.markdown, "report.html": report.html})
    kept = {p.resolve() for p in written}
    plots_dir = folder / timing_sections.PLOTS
    for stale in plots_dir.glob("*.png") if plots_dir.is_dir() else []:
        if stale.resolve() not in kept:
            stale.unlink()
    return written
