"""Compare two benchmark run folders (BASE → NEW): one row per case present in either, a verdict per
row, the gated regressions, and a geometric mean of throughput ratios per device and phase.

``compare(base, new, thresholds)`` joins the folders on (phase, model, device, variant, batch size)
and returns a ``Comparison``; ``compare_page`` turns it into ``compare.md`` / ``compare.html``;
``mnist-bench compare BASE NEW`` (``cli/commands/compare.py``) writes them into NEW and exits 1 when
a gated metric regressed. The rules (docs/compare.md):

- **Verdict** (time): ``slower`` / ``faster`` when the per-image time differs significantly
  (``measure.significance``: Mann–Whitney p < 0.002 where n allows, else range or median ± IQR
  overlap) AND by more than ``min_effect_pct``; ``same`` otherwise. ``new`` / ``removed``: a row on one
  side only, the other run not asked for that case or listing it as skipped. ``failed``: NEW was asked
  for the case (its machine.json models × devices × variants) and neither ran it nor skipped it (the
  test errored), or NEW's row has a non-finite time, accuracy or training loss, or could not be read
  (skipped by ``runs.folder``: the note names the file and line); ``fixed``: the same in BASE, with NEW's
  row sound (a BASE row that could not be read makes the case ``new``).
- **Accuracy** (training rows, same steps per round and test images on both sides): a regression
  when NEW's accuracy is below ``min(floor, BASE's own accuracy)``, the floor being the 95% prediction
  interval's lower end of one more seed of BASE's eager fp32 (its band's mean and std over n seeds; the
  band's lowest seed in runs from before those were recorded; the band of eager retrained to the case's
  steps, ``ref_band_*``, for a case the budget cut) or more than
  ``acc_drop_pts`` below BASE's. With different steps the accuracies are not comparable: then only
  NEW's own band flag (vs eager retrained to the same steps in NEW) counts, where BASE had none.
- **Gate**: a row fails it when a gated metric regressed beyond ``fail_above_pct`` (time: verdict
  ``slower`` and per-image time × > 1 + fail_above; memory, compile: more than that and above an
  absolute floor; accuracy: the rule above) or when it newly ``failed``.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ...measure.between_runs import t_quantile
from ...measure.significance import significance
from ...runs.folder import SAMPLE_SOURCES, RunFolder, RunFolderError
from ...runs.keys import Key, case_key
from ...runs.noise_table import NoiseTable
from ...variants import BASELINE
from .noise_rule import Sides, between_runs, sides
from .thresholds import (
    DEFAULT_GATED,
    METRICS,
    Thresholds,
    gates_time,
    images_per_round,
    number,
    seconds_per_image,
    time_verdict,
    unequal_work,
)

__all__ = ["DEFAULT_GATED", "METRICS", "Comparison", "Thresholds", "compare", "seconds_per_image"]

VERDICTS = ("slower", "faster", "same", "new", "removed", "failed", "fixed")
MEMORY_FLOOR_MIB = 16.0  # peak RSS moves by a few MiB with allocator state; smaller changes are not findings
COMPILE_FLOOR_S = 0.5  # compile time is one cold measurement; eager cases read ~0.00 s


@dataclass(frozen=True)
class Comparison:
    """Rows (one dict per case), verdict counts, geometric means, and whether the gate failed."""

    base: RunFolder
    new: RunFolder
    thresholds: Thresholds
    rows: list[dict[str, Any]]
    source: str | None
    geomeans: list[dict[str, Any]] = field(default_factory=list)
    sides: Sides | None = None

    @property
    def noise(self) -> NoiseTable | None:
        return self.sides.table if self.sides else None

    @property
    def counts(self) -> dict[str, int]:
        found = Counter(r["verdict"] for r in self.rows)
        return {v: found[v] for v in VERDICTS if found[v]}

    @property
    def regressions(self) -> list[dict[str, Any]]:
        return [r for r in self.rows if r["regressions"]]

    @property
    def failed_gate(self) -> bool:
        return bool(self.regressions)


def _broken(row: dict[str, Any]) -> str:
    """Why a row is not a sound measurement ("" when it is): a non-finite time, accuracy or loss."""
    if not number(row, "median_s") > 0 or not images_per_round(row) > 0:
        return "no finite time"
    if row["phase"] == "train":
        if "test_acc_pct" in row and math.isnan(number(row, "test_acc_pct")):
            return "no finite test accuracy"
        if "train_loss" in row and math.isnan(number(row, "train_loss")):
            return "non-finite training loss"
    return ""


def _presence(key: Key, base: RunFolder, new: RunFolder) -> tuple[str, list[str]]:
    """Verdict and notes for a case with a row on one side only."""
    for side, run in (("NEW", new), ("BASE", base)):  # a row skipped as unreadable: failed in NEW, new in BASE
        if key in run.unreadable and key not in run.rows:
            return ("failed" if side == "NEW" else "new"), [f"{side}'s row could not be read "
                                                            f"({run.unreadable[key].say()})"]
    if key in new.rows:
        skipped = base.skip_reason(key[:4])
        if base.selected(key):
            return "fixed", ["BASE was asked for it and has no row (failed there)"]
        return "new", [f"skipped in BASE: {skipped}"] if skipped else []
    skipped = new.skip_reason(key[:4])
    if new.selected(key):
        return "failed", ["NEW was asked for it, did not skip it and has no row"]
    return "removed", [f"skipped in NEW: {skipped}"] if skipped else []


def _samples(run: RunFolder, source: str | None, key: Key, work: float) -> list[float] | None:
    values = run.samples.get(source, {}).get(key) if source else None
    return [v / work for v in values] if values else None


def _time(key: Key, b: dict[str, Any], n: dict[str, Any], cmp: _Context) -> dict[str, Any]:
    """Per-image time: medians, change, the test (against the run-to-run noise where it is known, else
    the rounds of each run) and the verdict."""
    wb, wn = images_per_round(b), images_per_round(n)
    mb, mn = number(b, "median_s") / wb, number(n, "median_s") / wn
    judged = between_runs(key, cmp.sides, cmp.th) if mb > 0 else None
    if judged is None:  # no run-to-run noise known: the rounds of each run are the samples
        sig = significance(_samples(cmp.base, cmp.source, key, wb), _samples(cmp.new, cmp.source, key, wn),
                           (mb, number(b, "iqr_s") / wb), (mn, number(n, "iqr_s") / wn), cmp.th.p_threshold)
        judged = {"ratio": mn / mb if mb > 0 else math.nan, "different": sig.different,  # a fixed row: no ratio
                  "test": sig.method, "p": sig.p, "noise_notes": [],
                  "n_base": sig.n[0] or number(b, "n"), "n_new": sig.n[1] or number(n, "n")}
    ratio, different = judged.pop("ratio"), judged["different"]
    verdict = time_verdict(ratio, different, cmp.th)
    out = {"verdict": verdict, "s_base": number(b, "median_s"), "s_new": number(n, "median_s"),
           "img_s_base": 1.0 / mb if mb > 0 else math.nan, "img_s_new": 1.0 / mn,
           "time_change_pct": 100.0 * (ratio - 1.0), "n_base": number(b, "n"), "n_new": number(n, "n"), **judged}
    unequal = unequal_work(_rows(cmp.sides.base, key), _rows(cmp.sides.new, key))
    out["noise_notes"] = out["noise_notes"] + ([unequal] if unequal else [])
    if verdict == "slower" and gates_time(different, ratio, cmp.th, unequal):
        out["regressions"] = [f"time {out['time_change_pct']:+.1f}%"]
    return out


def _rows(runs: Sequence[RunFolder], key: Key) -> list[dict[str, Any]]:
    return [run.rows[key] for run in runs if key in run.rows]


BAND_STATS = ("min", "max", "mean", "std")


def _band(run: RunFolder, row: dict[str, Any]) -> dict[str, float]:
    """Eager fp32's accuracy band behind a training row (min, max, mean, std over n seeds): its own
    ``ref_band_*`` when the budget cut it, else the eager row's band where eager ran the same steps per
    round; NaNs where there is none (mean and std are NaN in runs from before they were recorded)."""
    def read(source: dict[str, Any], prefix: str) -> dict[str, float]:
        return {**{s: number(source, f"{prefix}band_{s}_acc_pct") for s in BAND_STATS},
                "n": number(source, f"{prefix}band_n")}

    if not math.isnan(number(row, "ref_band_min_acc_pct")):
        return read(row, "ref_")
    eager = run.rows.get(("train", row["model"], row["device"], BASELINE, case_key(row)[4]))
    if eager is None or number(eager, "steps_per_round") != number(row, "steps_per_round"):
        return dict.fromkeys((*BAND_STATS, "n"), math.nan)
    return read(eager, "")


def _accuracy_floor(band: dict[str, float]) -> tuple[float, str]:
    """The lowest accuracy one more seed of BASE's eager fp32 would show, and how it was found: the 95%
    prediction interval's lower end, mean − t(0.975, n − 1) · std · √(1 + 1/n), where the band has its
    mean and std; else the band's lowest seed (older runs)."""
    mean, std, n = band["mean"], band["std"], band["n"]
    if not (math.isnan(mean) or math.isnan(std) or math.isnan(n)) and n >= 2:
        floor = mean - t_quantile(0.025, int(n) - 1) * std * math.sqrt(1 + 1 / n)
        return floor, (f"below BASE's eager seeds (95% prediction interval ≥ {floor:.2f}%: mean {mean:.2f} ± "
                       f"{std:.2f} over {n:.0f} seeds)")
    return band["min"], f"below BASE band ({band['min']:.2f}–{band['max']:.2f}%)"


def _comparable(b: dict[str, Any], n: dict[str, Any]) -> bool:
    return all(number(b, c) == number(n, c) or (math.isnan(number(b, c)) and math.isnan(number(n, c)))
               for c in ("steps_per_round", "test_images"))


def _accuracy(b: dict[str, Any], n: dict[str, Any], cmp: _Context) -> dict[str, Any]:
    """Test accuracy of a training row: BASE, NEW, the change, what it means and whether it regressed."""
    ab, an = number(b, "test_acc_pct"), number(n, "test_acc_pct")
    out: dict[str, Any] = {"acc_base": ab, "acc_new": an, "acc_delta_pts": an - ab}
    if math.isnan(ab) or math.isnan(an):
        return {**out, "accuracy": "–"}
    if not _comparable(b, n):
        steps = f"steps/round {number(b, 'steps_per_round'):.0f}→{number(n, 'steps_per_round'):.0f}"
        own = str(n.get("acc_band") or "") == "below eager band" and str(b.get("acc_band") or "") != "below eager band"
        text = f"not comparable ({steps})" + ("; NEW below its own eager band" if own else "")
        return {**out, "accuracy": text, "acc_regressed": own}
    floor, why = _accuracy_floor(_band(cmp.base, b))
    found = []
    if not math.isnan(floor) and an < min(floor, ab):
        found.append(why)
    if an < ab - cmp.th.acc_drop_pts:
        found.append(f"{an - ab:+.2f} pts")
    return {**out, "accuracy": "; ".join(found) or "ok", "acc_regressed": bool(found)}


def _single(b: dict[str, Any], n: dict[str, Any], column: str, floor: float, th: Thresholds
            ) -> tuple[float, float, float, str]:
    """BASE, NEW, change % and worse/better/"" for a single-valued lower-is-better metric."""
    vb, vn = number(b, column), number(n, column)
    change = 100.0 * (vn / vb - 1.0) if vb > 0 and not math.isnan(vn) else math.nan
    moved = abs(vn - vb) > floor
    worse = "worse" if moved and change > th.min_effect_pct else ("better" if moved and change < -th.min_effect_pct
                                                                  else "")
    return vb, vn, change, worse


def _memory_column(row: dict[str, Any]) -> dict[str, Any]:
    """CUDA max allocated where measured, else the CPU process's peak RSS (as the summary's table)."""
    cuda = number(row, "peak_allocated_mib")
    return {**row, "memory_mib": cuda if not math.isnan(cuda) else number(row, "peak_rss_mib")}


def _others(b: dict[str, Any], n: dict[str, Any], cmp: _Context) -> tuple[dict[str, Any], list[str]]:
    """Memory and compile time, with the gate's findings for those gated."""
    out, found = {}, []
    for metric, column, floor in (("memory", "memory_mib", MEMORY_FLOOR_MIB),
                                  ("compile", "compile_s", COMPILE_FLOOR_S)):
        vb, vn, change, worse = _single(_memory_column(b), _memory_column(n), column, floor, cmp.th)
        out |= {f"{metric}_base": vb, f"{metric}_new": vn, f"{metric}_change_pct": change, f"{metric}_moved": worse}
        if worse == "worse" and change > cmp.th.fail_above_pct and metric in cmp.th.gated:
            found.append(f"{metric} {change:+.1f}%")
    return out, found


@dataclass(frozen=True)
class _Context:
    base: RunFolder
    new: RunFolder
    th: Thresholds
    source: str | None
    sides: Sides


def _case(key: Key, cmp: _Context) -> dict[str, Any]:
    """One row of the comparison."""
    row: dict[str, Any] = dict(zip(("phase", "model", "device", "variant", "batch_size"), key, strict=True))
    row |= {"regressions": [], "notes": []}
    b, n = cmp.base.rows.get(key), cmp.new.rows.get(key)
    if b is None or n is None:
        verdict, notes = _presence(key, cmp.base, cmp.new)
        failed = verdict == "failed"
        return row | {"verdict": verdict, "notes": notes, "regressions": ["failed"] if failed else []}
    why_b, why_n = _broken(b), _broken(n)
    if why_n:
        return row | {"verdict": "failed", "notes": [f"NEW: {why_n}"] + ([f"BASE: {why_b}"] if why_b else []),
                      "regressions": [] if why_b else ["failed"]}
    row |= _time(key, b, n, cmp)
    if why_b:
        row |= {"verdict": "fixed", "notes": [f"BASE: {why_b}"]}
    if key[0] == "train":
        row |= _accuracy(b, n, cmp)
        if row.pop("acc_regressed", False) and "accuracy" in cmp.th.gated:
            row["regressions"] = [*row.get("regressions", []), f"accuracy {row['accuracy']}"]
    others, found = _others(b, n, cmp)
    row |= others | {"regressions": [*row.get("regressions", []), *found]}
    row["notes"] = row["notes"] + row.pop("noise_notes", []) + [
        note for side, r in (("BASE", b), ("NEW", n)) if (note := _noisy(side, r))]
    return row


def _noisy(side: str, row: dict[str, Any]) -> str:
    """Why the suite flagged a row noisy: its spread, or other processes beside it (cores)."""
    if str(row.get("noisy")) != "True":
        return ""
    others = number(row, "machine_busy_cores") - number(row, "process_cpu_util")
    spread = 100.0 * number(row, "iqr_s") / number(row, "median_s")
    why = [f"IQR {spread:.0f}% of median" if spread > 10 else "",
           f"other processes {others:.1f} cores" if others > 0.5 else ""]
    return f"noisy in {side}" + (f" ({', '.join(w for w in why if w)})" if any(why) else "")


def _keys(base: RunFolder, new: RunFolder) -> list[Key]:
    """Every case of either run: training first, then inference, each in BASE's order with NEW's own
    cases after (the suite's order: model, device, variant, batch)."""
    keys = list(dict.fromkeys([*base.rows, *new.rows]))
    return sorted(keys, key=lambda k: {"train": 0, "inference": 1}.get(k[0], 2))


def geomeans(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per device and phase (and per device over both phases): the geometric mean of NEW ÷ BASE
    throughput over the cases measured soundly on both sides (> 1: NEW faster)."""
    groups: dict[tuple[str, str], list[float]] = {}
    for r in rows:
        ratio = r.get("img_s_new", math.nan) / r.get("img_s_base", math.nan) if "img_s_base" in r else math.nan
        if r["verdict"] in ("same", "faster", "slower") and math.isfinite(ratio) and ratio > 0:
            groups.setdefault((r["device"], r["phase"]), []).append(ratio)
            groups.setdefault((r["device"], "all"), []).append(ratio)
    return [{"device": device, "phase": phase, "n": len(v), "ratio": float(np.exp(np.mean(np.log(v))))}
            for (device, phase), v in sorted(groups.items(), key=lambda kv: (kv[0][0], kv[0][1] == "all"))]


def sample_source(base: RunFolder, new: RunFolder) -> str | None:
    """The raw-sample source both folders have (rounds.csv first), or None: one clock on both sides."""
    return next((s for s in SAMPLE_SOURCES if s in base.samples and s in new.samples), None)


def compare(base: RunFolder | Sequence[RunFolder], new: RunFolder | Sequence[RunFolder],
            thresholds: Thresholds | None = None, noise: NoiseTable | None = None) -> Comparison:
    """Join BASE and NEW (``runs.folder.read_run``; each one run, or several runs of one code version,
    oldest first: the newest stands for its side in every column but time) case by case and judge every
    row (see the module's docstring); each time change against the run-to-run noise the runs and
    ``noise`` tell (``noise_rule``). Neither with a row: ``RunFolderError``."""
    th = thresholds or Thresholds()
    base_runs = [base] if isinstance(base, RunFolder) else list(base)
    new_runs = [new] if isinstance(new, RunFolder) else list(new)
    base, new = base_runs[-1], new_runs[-1]
    keys = _keys(base, new)
    if not keys:
        raise RunFolderError(f"nothing to compare: neither {base.resolved} nor {new.resolved} has a train or "
                             "inference row; fix: pass run folders from a benchmark session that ran cases")
    cmp = _Context(base, new, th, sample_source(base, new), sides(base_runs, new_runs, noise))
    rows = [_case(key, cmp) for key in keys]
    return Comparison(base, new, th, rows, cmp.source, geomeans(rows), cmp.sides)
