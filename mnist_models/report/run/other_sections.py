"""The run report's sections after the timing ones: prediction quality (confusion matrices, a seeded
grid of test images, the 3×3 prediction grids), data-parallel scaling (``report.scaling_table``'s table and
figure, where the suite ran with ``--bench-ddp``), time to accuracy (``report.tta_table.render``), what the
budget cut, the skipped cases with their reasons, and, where their files exist, a comparison
(``compare.md`` in the run folder, from ``mnist-bench compare``) and the latest profile beside the run
(``<results>/profiles/<id>/``, from ``mnist-bench profile``), and links to the sweeps' pages
(``<results>/sweeps/<study>/``, from ``mnist-bench sweep``). A section whose data the run did not
record says so; the comparison, the profile and the scaling section are simply absent without their files.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ... import data
from ...runs.keys import case_name
from ...runs.profiles import ProfileFolder, latest_profile, read_profile
from .. import plots, scaling_table
from .. import tta_table as tta_report
from ..markdown import fmt_columns, markdown_table
from . import digit_figures as digits
from .timing_sections import figure

if TYPE_CHECKING:
    from ...runs.folder import RunFolder


def _file_name(*parts: str) -> str:
    return "_".join(re.sub(r"[^A-Za-z0-9.-]+", "-", p) for p in parts)


def _confusion_lines(frame: pd.DataFrame) -> list[str]:
    """Per model: accuracy, the weakest class and the commonest confusion."""
    lines = []
    for (model, device), rows in plots.cases(frame):
        matrix = digits.confusion_matrix(rows)
        per_class = np.diag(matrix) / np.maximum(matrix.sum(axis=1), 1)
        off = matrix.copy()
        np.fill_diagonal(off, 0)
        true, predicted = np.unravel_index(int(off.argmax()), off.shape)
        lines.append(f"- {model} · {device}: {100 * np.trace(matrix) / max(matrix.sum(), 1):.2f}% correct; "
                     f"weakest class {int(per_class.argmin())} ({100 * per_class.min():.1f}%); commonest "
                     f"confusion {true} → {predicted} ({off.max()} images)")
    return lines


def _test_images(data_root: str | os.PathLike[str] | None, dataset: str = "mnist") -> tuple[Any, Any, str]:
    """(images, labels, "") of the dataset's test split, or (None, None, why not)."""
    try:
        images, labels = data.load_split("test", data_root, dataset)
    except (data.DataError, OSError) as exc:
        return None, None, (f"{data.title(dataset)}'s test images are not available here ({exc}), so the image "
                            f"grids are not drawn; `{data.data_command(dataset)}` prepares them.")
    return images, labels, ""


def quality_section(run: RunFolder, store: dict[str, bytes], data_root: str | os.PathLike[str] | None) -> list[str]:
    """Confusion matrices, the sample grid and the prediction grids (what the run recorded)."""
    lines = ["## Prediction quality", ""]
    if run.confusion is None or run.confusion.empty:
        lines += ["Confusion matrices: not recorded (this run has no `confusion.csv`; the suite writes it since "
                  "it keeps its inference weights' predictions).", ""]
    else:
        lines += ["The inference weights (eager fp32, trained by the suite for its inference cases) on the test "
                  "set: counts computed with torchmetrics' `MulticlassConfusionMatrix` when the suite ran "
                  "(`confusion.csv`); colour: the share of the true class.", "",
                  *figure(store, "confusion", digits.confusion(run.confusion), "Confusion matrices"),
                  *_confusion_lines(run.confusion), ""]
    images, labels, why = _test_images(data_root, run.dataset)
    lines += ["### Test images", ""]
    if images is None:
        return [*lines, why, ""]
    lines += figure(store, "test_images", digits.sample_grid(images, labels), "Random MNIST test images")
    lines += ["### Predictions on a fixed sample", ""]
    if run.predictions is None or run.predictions.empty:
        return [*lines, "Not recorded (this run has no `predictions.csv`).", ""]
    lines += ["The same nine test images in every run (`predictions.csv`), as the seed notebook drew them: "
              "green when the prediction is right, red when wrong; p: the predicted class's probability.", ""]
    for (model, device), rows in plots.cases(run.predictions):
        steps = plots.numeric(rows, "weight_steps").iloc[0]
        trained = f" (weights: {int(steps):,} steps)" if not np.isnan(steps) else ""
        grid = digits.prediction_grid(images, rows, f"{model} · {device}{trained}")
        lines += figure(store, _file_name("predictions", model, device), grid, f"Predictions of {model} on {device}")
    return lines


def tta_section(run: RunFolder) -> list[str]:
    """``report.tta_table.render`` per device, where the run has ``tta.csv``."""
    if run.tta.empty:
        return []
    lines = ["## Time to accuracy", ""]
    for _, rows in run.tta.groupby("device", sort=False) if "device" in run.tta else [(None, run.tta)]:
        try:
            lines += [tta_report.render(rows.reset_index(drop=True), run.env, run.run_id, "###"), ""]
        except (KeyError, ValueError, TypeError) as exc:  # an older tta.csv: say what is missing, keep going
            lines += [f"The time-to-accuracy rows could not be summarised ({type(exc).__name__}: {exc}: `tta.csv` "
                      "lacks what the report reads); the rows are in the file.", ""]
    return lines


def scaling_section(run: RunFolder, store: dict[str, bytes]) -> list[str]:
    """``report.scaling_table``'s table and figure per device, where the run has scaling rows (``--bench-ddp``)."""
    if run.scaling is None or run.scaling.empty:
        return []
    lines = ["## Data-parallel scaling", "", "The suite's `--bench-ddp` case (`scaling.csv`): the same model and "
             "global steps at each process count, as `mnist-bench scaling` measures them.", ""]
    for device, rows in run.scaling.groupby("device", sort=False):
        rows = rows.reset_index(drop=True)
        try:
            lines += [scaling_table.render(rows, run.env, run.run_id, "###"), ""]
        except (KeyError, ValueError, TypeError) as exc:  # rows of an incomplete run that lack a column
            lines += [f"The scaling rows on {device} could not be summarised ({type(exc).__name__}: {exc}); the "
                      "rows are in the file.", ""]
            continue
        lines += figure(store, _file_name("scaling", str(device)), scaling_table.figure(rows),
                        f"Data-parallel scaling on {device}")
    return lines


def cuts_section(run: RunFolder) -> list[str]:
    cuts = [c for c in run.machine.get("cuts") or [] if isinstance(c, (list, tuple)) and len(c) == 2]
    if not cuts:
        return []
    table = pd.DataFrame([(case_name(str(case)), what) for case, what in cuts], columns=["case", "what was cut"])
    return ["## Cut to keep the time budget", "", f"{len(cuts)} cases ran less work to keep the session's budget "
            "(flag `cut` in the tables).", "", markdown_table(table), ""]


def left_out_section(left_out: tuple[tuple[str, str], ...]) -> list[str]:
    """What the session never collected, each with its reason (machine.json's ``left_out``); nothing when
    it left nothing out or did not record it."""
    if not left_out:
        return []
    return ["## Left out", "", "Not collected in this session because they do not apply here (nothing failed; "
            "machine.json's `left_out`).", "",
            markdown_table(pd.DataFrame(left_out, columns=["left out", "reason"])), ""]


def skipped_section(skipped: tuple[tuple[str, str], ...] | None) -> list[str]:
    """The skipped cases with their reasons (machine.json's ``skips``; None: not recorded)."""
    if skipped is None:
        return ["## Skipped", "", "No skipped case is recorded: this run has no machine.json, or one without "
                "`skips`.", ""]
    if not skipped:
        return ["## Skipped", "", "No case was skipped (machine.json lists none).", ""]
    return ["## Skipped", "", f"{len(skipped)} cases could not run here and were skipped, each with its reason.", "",
            markdown_table(pd.DataFrame(skipped, columns=["case", "reason"])), ""]


def _demote(markdown: str, levels: int) -> list[str]:
    """Markdown with every heading ``levels`` deeper (at most level 6), so it nests in a section."""
    out = []
    for line in markdown.splitlines():
        found = re.match(r"^(#{1,6})(\s.*)$", line)
        out.append("#" * min(6, len(found.group(1)) + levels) + found.group(2) if found else line)
    return out


def compare_section(run: RunFolder) -> list[str]:
    path = run.path / "compare.md"
    if not path.is_file():
        return []
    return ["## Comparison with another run", "", "From `compare.md` in this folder (`mnist-bench compare`).", "",
            *_demote(path.read_text(encoding="utf-8", errors="replace"), 2), ""]


def _breakdown(profile: ProfileFolder) -> list[str]:
    rows = profile.breakdown()
    if rows is None:  # a damaged or hand-edited breakdown (text where a number belongs) is said, not drawn
        return ["(`breakdown.csv` could not be read.)", ""]
    shown = fmt_columns(rows, {"ms_per_step": "{:.3f}", "share_pct": "{:.1f}"})
    return [markdown_table(shown.rename(columns={"ms_per_step": "ms/step", "share_pct": "% of step"})), ""]


def profile_section(run: RunFolder, store: dict[str, bytes]) -> list[str]:
    """The newest profile beside the run (``runs.profiles.latest_profile``): what ran (profile.json's
    ``ran``; "not recorded" where the folder lacks it), the breakdown's chart and table."""
    found = latest_profile(run.path.resolve().parent)
    if found is None:
        return []
    profile = read_profile(found)
    link = Path(os.path.relpath(found, run.path)).as_posix()
    ran = profile.ran or f"Ran: not recorded ({profile.problem or 'profile.json has no `ran`'})."
    lines = ["## Latest profile", "",
             f"The newest profile beside this run: [`{found.name}`]({link}/summary.md) (`mnist-bench profile`, a "
             "run of its own under torch.profiler, apart from the timed cases). " + ran, ""]
    png_path = found / "breakdown.png"
    if png_path.is_file():
        lines += figure(store, "profile_breakdown", png_path.read_bytes(), f"Step-time breakdown of {found.name}")
    if (found / "breakdown.csv").is_file():
        lines += ["Step-time breakdown (mean over the recorded steps):", "", *_breakdown(profile)]
    return lines


def sweeps_section(run: RunFolder) -> list[str]:
    """A link to each sweep's page under the same results folder (``mnist-bench sweep``), with its trial
    count and best trial from its ``trials.csv``."""
    pages = sorted(run.path.resolve().parent.glob("sweeps/*/report.html"))
    if not pages:
        return []
    lines = ["## Sweeps", "", "The sweeps beside this run (`mnist-bench sweep`; each page is drawn from its study):",
             ""]
    for page in pages:
        link = Path(os.path.relpath(page, run.path)).as_posix()
        trials = pd.read_csv(page.parent / "trials.csv") if (page.parent / "trials.csv").is_file() else pd.DataFrame()
        done = trials[trials["state"] == "complete"] if "state" in trials else trials
        best = f", best trial {done.iloc[0]['trial']}: {done.iloc[0]['value']:.4g}" if len(done) else ""
        lines.append(f"- [`{page.parent.name}`]({link}): {len(trials)} trials{best}")
    return [*lines, ""]
