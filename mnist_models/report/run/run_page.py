"""The report of one benchmark-suite run folder (``mnist-bench report [RUN_DIR]``, and the suite at the
end of every session): ``report.md``, ``report.html`` (one self-contained page, images embedded) and
``plots/*.png`` written into the run folder through the one publish path (``publish.write_files``: all
of them or none, so a full disk leaves the earlier report as it was).

``load_run`` reads a run folder of any version (the oldest lack columns, ``rounds.csv``,
``confusion.csv``, ``predictions.csv`` and most of ``machine.json``; what is missing is said, never
guessed) and recomputes the tables with ``runs.frames.bench_frames``; ``document`` puts the sections
in order (``timing_sections.py``, ``other_sections.py``); ``build_report`` renders the Markdown and the page;
``write_report`` writes the files. Bad input raises ``RunFolderError``
(one line naming the problem and the fix).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from ...runs.files import CASES_FILE, Incomplete, Problem, RunFileError, RunFiles, RunFolderError, recorded_skips
from ...runs.frames import bench_frames, is_missing
from ...runs.keys import ENV_KEYS
from ..html import page
from ..publish import write_files
from . import other_sections, timing_sections

RUN_FIX = ("fix: pass a run folder written by the benchmark suite (`make bench` writes results/<run-id>/; "
           "results/latest points at the newest)")
READS = ("train.csv", "inference.csv", "rounds.csv", "tta.csv", "confusion.csv", "predictions.csv", "machine.json",
         "summary.md", "compare.md", CASES_FILE)  # what the report is made from (named in its first lines)
DERIVED = ("speedup_vs_eager", "acc_delta_vs_eager_pct", "acc_band")  # recomputed by bench_frames



@dataclass(frozen=True)
class RunFolder:
    """What a run folder holds, read once: the recomputed tables, the per-round samples and the
    prediction records where the run wrote them (None otherwise), machine.json and the summary."""

    path: Path
    run_id: str
    machine: dict[str, Any]
    env: dict[str, Any]
    train: pd.DataFrame
    inference: pd.DataFrame
    tta: pd.DataFrame
    rounds: pd.DataFrame | None
    confusion: pd.DataFrame | None
    predictions: pd.DataFrame | None
    summary: str
    files: list[str] = field(default_factory=list)  # the files of READS the folder has
    problems: list[Problem] = field(default_factory=list)  # what was skipped or left out, file and line
    incomplete: Incomplete | None = None  # a session that stopped before its end (only cases.jsonl)


@dataclass(frozen=True)
class RunReport:
    """The rendered report: Markdown (images as ``plots/<name>.png``), the self-contained HTML page,
    and each plot's PNG bytes by its path relative to the run folder."""

    markdown: str
    html: str
    plots: dict[str, bytes]
    warnings: list[str] = field(default_factory=list)  # one line each for stderr: the problems, incomplete


def _or_empty(frame: pd.DataFrame | None) -> pd.DataFrame:
    return pd.DataFrame() if frame is None else frame


def check_run_dir(run_dir: str | os.PathLike[str]) -> Path:
    """The run folder, or RunFolderError saying why it is not one."""
    path = Path(run_dir)
    if not path.exists():
        raise RunFolderError(f"{path}: no such folder; {RUN_FIX}")
    if not path.is_dir():
        raise RunFolderError(f"{path} is a file, not a run folder; {RUN_FIX}")
    if not RunFiles(path).has_rows():
        if (path / "latest").is_dir():
            raise RunFolderError(f"{path} is a results folder, not a run; fix: pass {path / 'latest'} or one of its "
                             "<run-id> folders")
        raise RunFolderError(f"{path} is not a benchmark run folder (no train.csv, inference.csv or {CASES_FILE} in "
                         f"it); {RUN_FIX}")
    return path


def _environment(machine: dict[str, Any], frames: list[pd.DataFrame]) -> dict[str, Any]:
    """machine.json's environment, completed from the first row's environment columns (older runs'
    machine.json lack the capabilities); keys the header needs and nobody recorded say so."""
    env: dict[str, Any] = {}
    for frame in frames:
        if not frame.empty:
            first = frame.iloc[0]
            env |= {k: first[k] for k in ENV_KEYS if k in first and not is_missing(first[k]) and k not in env}
    env |= {k: v for k, v in machine.items() if not isinstance(v, (dict, list)) and v is not None}
    return {"torch": "not recorded", "cpu": "not recorded", "torch_threads": "?", "cpu_count": "?", "cuda": None,
            "cudnn": None, "git_commit": None, "gpu": None, **env}


def _frames(train: pd.DataFrame | None, inference: pd.DataFrame | None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The tables recomputed with ``bench_frames`` (speed-up, accuracy delta, band flag), so every
    run reads by today's definitions; older runs' rows lack the band columns: no verdict then."""
    rows = [[] if f is None or f.empty else f.drop(columns=[c for c in DERIVED if c in f]).to_dict("records")
            for f in (train, inference)]
    return bench_frames(rows[0], rows[1])


def load_run(run_dir: str | os.PathLike[str]) -> RunFolder:
    """Read a run folder of any version (see the module's docstring). A file it cannot go on without:
    ``RunFolderError`` naming the file and line; what it skipped is in ``problems``."""
    path = check_run_dir(run_dir)
    files = RunFiles(path)
    try:
        machine = files.machine()
        raw_train, raw_inference = files.table("train.csv"), files.table("inference.csv")
        tables = {name: files.table(name) for name in ("tta.csv", "rounds.csv", "confusion.csv", "predictions.csv")}
        summary = files.text("summary.md")
    except RunFileError as exc:
        raise RunFolderError(exc.say(path)) from None
    train, inference = _frames(raw_train, raw_inference)
    return RunFolder(
        path=path, run_id=path.resolve().name, machine=machine,
        env=_environment(machine, [f for f in (raw_train, raw_inference) if f is not None]),
        train=train, inference=inference, tta=_or_empty(tables["tta.csv"]), rounds=tables["rounds.csv"],
        confusion=tables["confusion.csv"], predictions=tables["predictions.csv"], summary=summary,
        files=[name for name in READS if (path / name).is_file() and (name != CASES_FILE or files.incomplete)],
        problems=files.problems,
        incomplete=files.incomplete)


def skips(run: RunFolder) -> tuple[list[tuple[str, str]], str | None]:
    """(case, reason) of every skipped case and where they were read (``runs.files.recorded_skips``)."""
    return recorded_skips(run.machine, run.summary)


def document(run: RunFolder, store: dict[str, bytes], data_root: str | os.PathLike[str] | None) -> str:
    """The whole report's Markdown, section after section; figures go into ``store``."""
    sections = [timing_sections.title_section(run), timing_sections.machine_section(run),
                timing_sections.models_section(run, store), timing_sections.training_section(run, store),
                timing_sections.rounds_section(run, store), timing_sections.curves_section(run, store),
                timing_sections.inference_section(run, store), timing_sections.memory_section(run, store),
                timing_sections.roofline_section(run, store), other_sections.quality_section(run, store, data_root),
                other_sections.tta_section(run), other_sections.cuts_section(run),
                other_sections.skipped_section(*skips(run)), other_sections.compare_section(run),
                other_sections.profile_section(run, store)]
    return "\n".join(line for section in sections for line in section).rstrip() + "\n"


def build_report(run_dir: str | os.PathLike[str], data_root: str | os.PathLike[str] | None = None) -> RunReport:
    """The whole report of a run folder (nothing written)."""
    run = load_run(run_dir)
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
    folder = check_run_dir(run_dir)
    report = report or build_report(folder, data_root)
    written = write_files(folder, {**report.plots, "report.md": report.markdown, "report.html": report.html})
    kept = {p.resolve() for p in written}
    plots_dir = folder / timing_sections.PLOTS
    for stale in plots_dir.glob("*.png") if plots_dir.is_dir() else []:
        if stale.resolve() not in kept:
            stale.unlink()
    return written
