"""The end of a benchmark-suite session (``pytest bench``), called once by ``bench/conftest.py``:

1. the run's tables from the session's rows (``runs.frames.run_tables``);
2. ``summary.md`` and the compact results-page block rendered from them (``suite_summary``);
3. the run folder finished by its one writer (``runs.writer.finish_run``: the tables and pages beside
   ``cases.jsonl``, ``machine.json`` last, then ``latest``), the results-page block (``--bench-readme``)
   in the same all-or-none write;
4. the run's report (report.md, report.html, plots/) drawn by ``mnist-bench report`` in a process of its
   own, after the session: matplotlib stays out of the timed session, and a report that fails (one line)
   cannot cost the run folder.

A session stopped before its end (interrupted, or a case's rows could not be written) publishes nothing
more: its folder keeps ``cases.jsonl``, an incomplete run, and ``latest`` stays where it was.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..experiments.suite_session import SuiteSession, SuiteUsageError
from ..measure.probes import measured_peaks
from ..results.provenance import environment
from ..results.store import ResultsError, read_rows
from ..runs.frames import run_tables
from ..runs.schema import CASES_FILE
from ..runs.writer import CaseLog, finish_run
from . import suite_summary
from .markers import has_markers
from .publish import readme_text

README_BATCH = 256  # the inference batch size a results page's compact summary shows
REPORT_TIMEOUT_S = 300


@dataclass(frozen=True)
class Ending:
    """What the end of a session says: ``lines`` for the terminal, and ``error`` (one stderr line; the
    session then fails) when the run folder could not be finished."""

    lines: list[str] = field(default_factory=list)
    error: str = ""


def check_readme(readme: str | None) -> None:
    """``--bench-readme FILE`` must hold the bench-summary block's markers: else one ``SuiteUsageError``
    line, before any case runs."""
    if readme is not None and not has_markers(readme, "bench-summary"):
        raise SuiteUsageError(f"--bench-readme {readme}: no such file or no <!-- bench-summary:start --> / "
                              "<!-- bench-summary:end --> markers; fix: add both markers to the file, or drop "
                              "--bench-readme")


def stopped_line(log: CaseLog) -> str:
    """What a session stopped before its end says about the rows it kept (the cases in cases.jsonl: an
    interrupt can land after a case's rows are down and before the log counts them)."""
    count = len({row.get("case") for row in read_rows(log.folder, CASES_FILE)}) if log.folder else 0
    cases = f"{count} finished case{'s' if count != 1 else ''}"
    where = (f"the rows of its {cases} are in {log.folder}/cases.jsonl; `mnist-bench report {log.folder}` reads "
             "them" if log.folder else "no row was written")
    return (f"mnist-bench: the session stopped before its end: {where} (an incomplete run; no tables, summary or "
            "results-page block, and results/latest is unchanged)")


def write_run(session: SuiteSession, benchmark: dict[str, Any] | None) -> Path:
    """Compute, render and write the finished session's run folder (and its results-page block); its path."""
    env = environment()
    tables = run_tables(session.train_rows, session.inference_rows, session.tta_rows, session.quality.values(),
                        session.scaling_rows)
    budget = session.budget_record()
    run = suite_summary.BenchRun(tables.train, tables.inference, session.profile.name, tta=tables.tta,
                                 scaling=tables.scaling,
                                 skips=session.skips, left_out=session.left_out, budget=budget,
                                 peaks=measured_peaks())
    run_id = session.log.run_id  # the folder cases.jsonl went into (-2… when another session took the name)
    compact = suite_summary.render(run.compact(README_BATCH), env, run_id, heading="###")
    return finish_run(session.log, tables, suite_summary.render(run, env, run_id), benchmark,
                      session.machine_record(env, budget), readme_text(session.readme, ("bench-summary", compact), env))


def draw_report(folder: Path, data_root: str | None) -> str:
    """Run ``mnist-bench report FOLDER`` in a process of its own; what it said (its last line), or why
    the report was not written with how to retry."""
    command = [sys.executable, "-m", "mnist_models", "report", str(folder)]
    command += ["--data-root", str(data_root)] if data_root else []
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=REPORT_TIMEOUT_S)
        said = (done.stdout if done.returncode == 0 else done.stderr).strip().splitlines()
        last = said[-1].removeprefix("mnist-bench: ") if said else f"exit {done.returncode}"
        report = last if done.returncode == 0 else f"report not written ({last})"
    except (OSError, subprocess.SubprocessError) as exc:
        report = f"report not written ({type(exc).__name__}: {exc})"
    if not report.startswith("wrote"):
        report += f"; the run's tables are in {folder}; retry: mnist-bench report {folder}"
    return report


def publish_session(session: SuiteSession, benchmark: dict[str, Any] | None, interrupted: bool = False) -> Ending:
    """Finish the session's run folder and draw its report (``benchmark``: pytest-benchmark's JSON, None
    when nothing was timed); what to say. Nothing is written for a session without rows, and nothing
    more for one stopped before its end."""
    if not any(session.tables().values()):
        return Ending()
    if interrupted or session.stopped or session.log.folder is None:
        return Ending([stopped_line(session.log)])
    try:
        folder = write_run(session, benchmark)
    except ResultsError as exc:  # a full disk, say: nothing half-written; the rows stay in cases.jsonl
        return Ending(error=f"mnist-bench: error: {exc} (the rows of every finished case are in "
                            f"{session.log.folder}/cases.jsonl)")
    elapsed = session.budget.elapsed()
    report = draw_report(folder, session.data_root)
    cuts = session.budget.cuts
    cut = f"; {len(cuts)} cases cut to keep the budget" if cuts else ""
    names = ", ".join(sorted(p.name for p in folder.iterdir()))
    return Ending([f"mnist-bench: wrote {folder} ({names}) in {elapsed:.0f} s{cut}", f"mnist-bench: {report}"])
